"""Living-articles benchmark: what an update costs against a new page, and what a re-processing costs against the
first ingest, on the dev corpus; and a re-processing after a deliberate change of an extraction setting, with
what it reports checked against the exports before and after.

    python benchmarks/living_bench.py [WARC] [--updates N] [--repeats N] [--setting-change]

1. **First ingest** of WARC into a fresh SQLite store (``run_ingest``, as ``reprint ingest`` runs it).
2. **Updates vs new pages.** N pages of the corpus get a corrected paragraph. A WARC of those N records under their
   own URLs, dated after the corpus, updates N stored articles; the same N records under new URLs are N new
   pages. Each is ingested into a copy of the store from step 1, taking turns, ``--repeats`` times: the figure is
   the median time per updated page over the median time per new page.
3. **Re-processing with unchanged code** (``run_reprocess``) of a copy of the store from step 1, against the first
   ingest's time; it must change nothing (articles, clusters, relations and events compared before and after).
4. With ``--setting-change``: a re-processing after trafilatura's ``favor_precision`` is switched on, and its
   report compared with the two exports (text changed, cluster moves, canonical changes, flags gained / lost).

Reads ../shared/eval/dev/corpus.warc.gz by default.
"""

from __future__ import annotations

import argparse
import io
import json
import re
import shutil
import statistics
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

from pipeline.ingest.reprocess import run_reprocess
from pipeline.ingest.runner import run_ingest
from pipeline.serve.export import export_jsonl
from pipeline.settings import Settings
from pipeline.store import Store

DEFAULT = Path(__file__).resolve().parents[2] / "shared" / "eval" / "dev" / "corpus.warc.gz"
CORRECTION = (b"<p>Correction: an earlier version of this article misstated a figure; it has been corrected, "
              b"and the editors regret the error.</p>")
PARAGRAPH_END = re.compile(rb"</p>", re.I)


def _records(path: Path) -> list[tuple[str, bytes, str, str]]:
    """(uri, payload, content type, WARC-Date) of every HTML response record."""
    from warcio.archiveiterator import ArchiveIterator

    out = []
    with path.open("rb") as fh:
        for record in ArchiveIterator(fh):
            if record.rec_type != "response" or record.http_headers is None:
                continue
            ctype = record.http_headers.get_header("Content-Type") or ""
            if "html" not in ctype.lower() or record.http_headers.get_statuscode() != "200":
                continue
            out.append((record.rec_headers.get_header("WARC-Target-URI"), record.content_stream().read(), ctype,
                        record.rec_headers.get_header("WARC-Date")))
    return out


def _write_warc(path: Path, records: list[tuple[str, bytes, str, str]]) -> None:
    from warcio.statusandheaders import StatusAndHeaders
    from warcio.warcwriter import WARCWriter

    buffer = io.BytesIO()
    writer = WARCWriter(buffer, gzip=True)
    for uri, body, ctype, date in records:
        http = StatusAndHeaders("200 OK", [("Content-Type", ctype), ("Content-Length", str(len(body)))],
                                protocol="HTTP/1.1")
        writer.write_record(writer.create_warc_record(uri, "response", payload=io.BytesIO(body), http_headers=http,
                                                      warc_headers_dict={"WARC-Date": date}))
    path.write_bytes(buffer.getvalue())


def _corrected(body: bytes) -> bytes | None:
    """The page with a correction paragraph after its third paragraph (None: it has too few)."""
    ends = list(PARAGRAPH_END.finditer(body))
    if len(ends) < 3:
        return None
    at = ends[2].end()
    return body[:at] + CORRECTION + body[at:]


def _export(store: Store) -> dict[str, dict[str, Any]]:
    out = io.StringIO()
    export_jsonl(store, out)
    return {row["url"]: row for row in map(json.loads, out.getvalue().splitlines())}


def _state(db: Path) -> tuple[Any, ...]:
    import sqlite3

    with sqlite3.connect(db) as c:
        return tuple(tuple(c.execute(q).fetchall()) for q in (
            "SELECT * FROM articles ORDER BY id", "SELECT * FROM clusters ORDER BY id",
            "SELECT * FROM edges ORDER BY a_id, b_id", "SELECT * FROM events ORDER BY id"))


def _copy(src: Path, dst: Path) -> Path:
    for suffix in ("", "-wal", "-shm"):
        if (src.parent / (src.name + suffix)).exists():
            shutil.copyfile(src.parent / (src.name + suffix), dst.parent / (dst.name + suffix))
    return dst


def _timed_ingest(db: Path, warc: Path) -> tuple[float, Any]:
    store = Store(f"sqlite:///{db}")
    try:
        started = time.perf_counter()
        summary = run_ingest([str(warc)], store, Settings(database_url=store.url), progress=False)
        return time.perf_counter() - started, summary
    finally:
        store.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("warc", nargs="?", type=Path, default=DEFAULT)
    parser.add_argument("--updates", type=int, default=100, help="pages updated (and pages added) per run")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--setting-change", action="store_true", help="also re-process after favor_precision")
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="living-bench-"))
    try:
        base = tmp / "base.db"
        first, summary = _timed_ingest(base, args.warc)
        print(f"first ingest: {summary.pages_seen} pages in {first:.2f}s ({1000 * first / summary.pages_seen:.1f} ms "
              f"a page), {summary.articles} articles")

        from pipeline.errors import ReprintError
        from pipeline.extract.extractor import extract
        from pipeline.records import Page

        records = _records(args.warc)
        chosen = []
        for uri, body, ctype, _date in records:
            fixed = _corrected(body)
            try:  # only pages whose extracted text the correction changes: each is a real update
                if fixed is None or extract(Page(uri, fixed, headers={"content-type": ctype}))[0].text == extract(
                        Page(uri, body, headers={"content-type": ctype}))[0].text:
                    continue
            except ReprintError:
                continue
            chosen.append((uri, fixed, ctype))
            if len(chosen) == args.updates:
                break
        later = "2099-01-01T00:00:00Z"
        _write_warc(tmp / "updates.warc.gz", [(u, b, c, later) for u, b, c in chosen])
        _write_warc(tmp / "new.warc.gz", [(u.replace("://", "://copy.", 1) if "://" in u else "new:" + u, b, c, later)
                                          for u, b, c in chosen])
        per_update, per_new = [], []
        counted = None
        for _ in range(args.repeats):
            for kind, target in (("update", per_update), ("new", per_new)):
                db = _copy(base, tmp / f"{kind}.db")
                seconds, result = _timed_ingest(db, tmp / ("updates.warc.gz" if kind == "update" else "new.warc.gz"))
                target.append(seconds / len(chosen))
                counted = (result.updated, result.unchanged) if kind == "update" else counted
        med_u, med_n = statistics.median(per_update), statistics.median(per_new)
        print(f"updates: {counted[0]} of {len(chosen)} pages updated, {counted[1]} unchanged" if counted else "")
        print(f"time per updated page {1000 * med_u:.1f} ms, per new page {1000 * med_n:.1f} ms: ratio "
              f"{med_u / med_n:.2f} (medians of {args.repeats})")

        db = _copy(base, tmp / "reprocess.db")
        before = _state(db)
        store = Store(f"sqlite:///{db}")
        try:
            started = time.perf_counter()
            report = run_reprocess(store, Settings(database_url=store.url), progress=False)
            seconds = time.perf_counter() - started
        finally:
            store.close()
        same = _state(db) == before
        print(f"reprocess (unchanged code): {report.pages} pages in {seconds:.2f}s, {seconds / first:.2f} of the first "
              f"ingest; changed nothing: {same and not report.changed}")

        if args.setting_change:
            _setting_change(base, tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _setting_change(base: Path, tmp: Path) -> None:
    """Re-process with trafilatura's favor_precision on; check the report against the exports."""
    import trafilatura

    import pipeline.extract.extractor as extractor

    db = _copy(base, tmp / "setting.db")
    store = Store(f"sqlite:///{db}")
    real = trafilatura.bare_extraction

    def precise(*args: Any, **kwargs: Any) -> Any:
        kwargs.setdefault("favor_precision", not kwargs.get("favor_recall", False))
        return real(*args, **kwargs)

    try:
        before = _export(store)
        extractor.trafilatura.bare_extraction = precise  # type: ignore[attr-defined]
        try:
            report = run_reprocess(store, Settings(database_url=store.url), progress=False)
        finally:
            extractor.trafilatura.bare_extraction = real  # type: ignore[attr-defined]
        after = _export(store)
    finally:
        store.close()
    text = sum(after[u]["text"] != before[u]["text"] for u in after)
    moves = sum(after[u]["cluster_id"] != before[u]["cluster_id"] for u in after)
    was = {r["cluster_id"]: u for u, r in before.items() if r["canonical"]}
    canon = sum(was.get(r["cluster_id"]) != u for u, r in after.items() if r["canonical"])
    gained, lost = Counter(), Counter()
    for u in after:
        gained.update(set(after[u]["flags"]) - set(before[u]["flags"]))
        lost.update(set(before[u]["flags"]) - set(after[u]["flags"]))
    print(f"reprocess after favor_precision: text changed {report.text_changed} (exports: {text}), cluster moves "
          f"{report.cluster_moves} ({moves}), canonical changes {report.canonical_changes} ({canon}), flags gained "
          f"{dict(report.flags_gained)} ({dict(gained)}), lost {dict(report.flags_lost)} ({dict(lost)}), "
          f"relations changed {report.relations_changed}, {report.elapsed:.1f}s")
    exact = (report.text_changed, report.cluster_moves, report.canonical_changes, dict(report.flags_gained),
             dict(report.flags_lost)) == (text, moves, canon, dict(gained), dict(lost))
    print(f"report matches the exports: {exact}")


if __name__ == "__main__":
    main()
