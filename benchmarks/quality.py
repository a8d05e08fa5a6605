"""Detection quality: the dev scorer, order independence, the seeds, and same-event separation.

    python benchmarks/quality.py [--shared ../shared] [--skip-shuffle] [--matrix | --only-matrix] [--per-corpus N]

1. Ingests ../shared/eval/dev/corpus.warc.gz through the CLI, exports, and runs the scorer.
2. Writes the same records in a shuffled order to a new WARC, ingests it, and compares the two exports
   (clusters as sets of URLs, canonicals, flags): they must be identical.
3. Wraps the two seed pages as HTML on two sites: one cluster, 000 spun, 002 scraped and not spun.
4. Ingests the Helsinki articles (one summit, many outlets, real wire copies) and checks that no two
   pages whose word 3-gram Jaccard is below 0.1 share a cluster.
5. ``--matrix`` (or ``--only-matrix``): the robustness matrix. English news originals with a byline, a
   date, 250+ words and 3+ in-body links from ../shared/corpora (Fundus, AEB, Readability; ``--per-corpus``
   of each), each given three "Related:" blocks and two captioned pictures (``furnish``), are copied by
   the second copy-maker (tests/support/copymaker.py) with each transformation alone and every pair of
   them, at each strength. One cell is one ``reprint ingest`` of a WARC of the originals (at their own
   URLs) and their copies (on other sites), one copy per original, so no cluster has a third version to
   vote with, then ``reprint export``. Per cell: the share of copies grouped with their original, the
   share of copies whose original is their cluster's canonical, and precision / recall of the spun and
   scraped flags over originals and copies (recall over the copies the copy-maker says are spun /
   scraped).
"""

from __future__ import annotations

import argparse
import csv
import gzip
import html
import itertools
import json
import random
import subprocess
import sys
import tempfile
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from lxml import html as lxml_html

from pipeline.dedup.deduplicator import Deduplicator
from pipeline.extract.extractor import extract
from pipeline.records import Page
from pipeline.settings import Settings
from pipeline.store import Store
from pipeline.text import shingles, tokenize

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # tests.support.copymaker

from tests.support.copymaker import (  # noqa: E402
    STRENGTHS,
    TRANSFORMS,
    furnish,
    make_copy,
    read_story,
    running_text,
)


def run(cmd: list[str], **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, check=False, text=True, capture_output=True, **kwargs)


def ingest_and_export(source: Path, db: Path) -> Path:
    run(["reprint", "ingest", str(source), "--db", f"sqlite:///{db}", "--no-progress"])
    out = db.with_suffix(".jsonl")
    with out.open("w") as fh:
        subprocess.run(["reprint", "export", "--db", f"sqlite:///{db}"], check=True, stdout=fh)
    return out


def decisions(export: Path) -> dict[str, tuple]:
    rows = [json.loads(line) for line in export.open()]
    clusters: dict[object, set[str]] = defaultdict(set)
    for r in rows:
        clusters[r["cluster_id"]].add(r["url"])
    return {r["url"]: (frozenset(clusters[r["cluster_id"]]), r["canonical"], tuple(sorted(r["flags"]))) for r in rows}


def shuffled_warc(src: Path, dst: Path, seed: int) -> None:
    from warcio.archiveiterator import ArchiveIterator
    from warcio.warcwriter import WARCWriter

    with src.open("rb") as fh:
        records = []
        for rec in ArchiveIterator(fh):
            records.append((rec.rec_headers, rec.http_headers, rec.content_stream().read()))
    random.Random(seed).shuffle(records)
    with dst.open("wb") as out:
        writer = WARCWriter(out, gzip=True)
        for rec_headers, http_headers, body in records:
            import io

            record = writer.create_warc_record(
                rec_headers.get_header("WARC-Target-URI"), "response", payload=io.BytesIO(body),
                http_headers=http_headers,
            )
            writer.write_record(record)


def seeds(shared: Path, tmp: Path) -> dict:
    folder = tmp / "seeds"
    folder.mkdir()
    names = sorted((shared / "seeds").glob("*.txt"))
    for path in names:
        paragraphs = [p.strip() for p in path.read_text().split("\n\n") if p.strip()]
        body = "".join(f"<p>{html.escape(p)}</p>" for p in paragraphs[1:])
        title = html.escape(paragraphs[0])
        (folder / f"{path.stem}.html").write_text(
            f'<html lang="en"><head><title>{title}</title></head><body><article><h1>{title}</h1>'
            f"{body}</article></body></html>"
        )
    rows = {Path(r["url"]).stem: r for r in map(json.loads, ingest_and_export(folder, tmp / "seeds.db").open())}
    spun, scraped = rows[names[0].stem], rows[names[1].stem]
    return {
        "one_cluster": spun["cluster_id"] == scraped["cluster_id"],
        "000_flags": spun["flags"],
        "002_flags": scraped["flags"],
        "pass": spun["cluster_id"] == scraped["cluster_id"] and "spun" in spun["flags"]
        and "scraped" in scraped["flags"] and "spun" not in scraped["flags"],
    }


def helsinki(shared: Path, tmp: Path) -> dict:
    csv.field_size_limit(10**8)
    store = Store(f"sqlite:///{tmp / 'helsinki.db'}")
    dedup = Deduplicator(store, Settings())
    texts: dict[int, list[str]] = {}
    for path in sorted((shared / "corpora" / "helsinki").glob("*.csv")):
        for row in csv.DictReader(path.open()):
            paragraphs = [p.strip() for p in row["text"].split("###") if p.strip()]
            body = "".join(f"<p>{html.escape(p)}</p>" for p in paragraphs[1:])
            url = f"https://{row['publisher']}/{path.stem}/{row['id']}"
            page = Page(url, f"<html><head><title>{html.escape(paragraphs[0] if paragraphs else '')}</title>"
                        f"</head><body><article>{body}</article></body></html>".encode(),
                        headers={"content-type": "text/html; charset=utf-8"})
            try:
                article, _ = extract(page)
            except Exception:
                continue
            outcome = dedup.add(store.add_page(page, None), article)
            texts[outcome.article_id] = tokenize(article.text)
    clusters: dict[int, list[int]] = defaultdict(list)
    for row in store.export_rows():
        clusters[row.cluster_id].append(row.id)
    sets = {i: shingles(t, 3) for i, t in texts.items()}
    violations = []
    pairs = 0
    for members in clusters.values():
        for a, b in itertools.combinations(members, 2):
            pairs += 1
            inter = len(sets[a] & sets[b])
            union = len(sets[a] | sets[b]) or 1
            if inter / union < 0.1:
                violations.append((a, b, round(inter / union, 3)))
    multi = [m for m in clusters.values() if len(m) > 1]
    return {"articles": len(texts), "clusters": len(clusters), "clusters_with_copies": len(multi),
            "largest": max(map(len, multi), default=1), "same_cluster_pairs": pairs,
            "pairs_below_0.1": len(violations), "pass": not violations}


# --- the robustness matrix ------------------------------------------------------------------------------

def _read(path: Path) -> str:
    data = gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()
    return data.decode("utf-8", "replace")


def _english(page: str, declared: str | None = None) -> bool:
    lang = declared or lxml_html.document_fromstring(page).get("lang") or ""
    return lang.strip().lower().startswith("en")


def _page_url(page: str) -> str | None:
    tree = lxml_html.document_fromstring(page)
    for value in tree.xpath('//link[@rel="canonical"]/@href | //meta[@property="og:url"]/@content'):
        if value.strip().startswith("http"):
            return value.strip()
    return None


def matrix_originals(shared: Path, per_corpus: int) -> list[tuple[str, str, str]]:
    """(name, html, url) of English news originals: a byline, a date, 250+ body words, 3+ in-body links."""
    corpora = shared / "corpora"
    found: dict[str, list[tuple[str, str, str | None, str | None]]] = {"fundus": [], "aeb": [], "readability": []}
    for line in (corpora / "fundus" / "fundus_flat.jsonl").open():
        row = json.loads(line)
        path = corpora / "fundus" / row["html"].replace("tests/resources/parser/", "")
        if path.exists():
            found["fundus"].append((f"fundus-{path.name.split('.')[0]}", _read(path), row["url"], None))
    for key, row in sorted(json.loads((corpora / "aeb" / "ground-truth.json").read_text()).items()):
        path = corpora / "aeb" / "html" / f"{key}.html.gz"
        if path.exists():
            found["aeb"].append((f"aeb-{key[:12]}", _read(path), row.get("url"), None))
    for folder in sorted((corpora / "readability").iterdir()):
        meta = folder / "expected-metadata.json"
        if folder.name.startswith(("wikipedia", "wikia")):
            continue  # encyclopaedia pages, not news
        if (folder / "source.html").exists() and meta.exists():
            page = _read(folder / "source.html")
            lang = json.loads(meta.read_text()).get("lang")
            found["readability"].append((f"readability-{folder.name}", page, _page_url(page), lang))
    chosen: list[tuple[str, str, str]] = []
    for items in found.values():
        kept = 0
        for name, page, url, lang in items:
            if kept >= per_corpus:
                break
            try:
                if not _english(page, lang):
                    continue
                story = read_story(page)
            except Exception:
                continue
            words = sum(len(b.text.split()) for b in story.blocks if b.kind in ("p", "li"))
            links = sum(1 for b in story.blocks if running_text(b) for seg in b.segments if seg.href)
            if story.byline and story.published and words >= 250 and links >= 3:
                chosen.append((name, page, url or f"https://{name.split('-')[0]}.example/{name}"))
                kept += 1
    return chosen


def matrix_cells(transforms: tuple[str, ...] = TRANSFORMS) -> list[tuple[str, ...]]:
    return [(t,) for t in transforms] + list(itertools.combinations(transforms, 2))


SITES = ("dailywire-feed", "newsbeat-now", "topreads-hub", "the-aggregator", "headline-digest", "viral-daily")


def write_warc(path: Path, pages: list[tuple[str, str]]) -> None:
    """(url, html) pages as WARC response records, as a crawl would have stored them."""
    import io

    from warcio.statusandheaders import StatusAndHeaders
    from warcio.warcwriter import WARCWriter

    with path.open("wb") as out:
        writer = WARCWriter(out, gzip=True)
        for url, page in pages:
            headers = StatusAndHeaders("200 OK", [("Content-Type", "text/html; charset=utf-8")], protocol="HTTP/1.1")
            writer.write_record(writer.create_warc_record(url, "response", payload=io.BytesIO(page.encode()),
                                                          http_headers=headers))


def _cell(originals: list[tuple[str, str, str]], combo: tuple[str, ...], strength: str, tmp: Path) -> dict:
    name_ = f"{'+'.join(combo)}-{strength}"
    truth: dict[str, tuple[str, bool, bool]] = {}  # key (o / c + number) → (group, spun, scraped)
    urls: dict[str, str] = {}
    pages: list[tuple[str, str]] = []
    for k, (name, page, url) in enumerate(originals):
        site = f"{SITES[k % len(SITES)]}.example"
        copy = make_copy(page, combo, strength=strength, seed=name, site=site)
        urls[f"o{k:03d}"], urls[f"c{k:03d}"] = url, f"https://www.{site}/story/{k:03d}"
        pages += [(url, page), (urls[f"c{k:03d}"], copy.html)]
        truth[f"o{k:03d}"] = (name, False, False)
        truth[f"c{k:03d}"] = (name, copy.spun, copy.scraped)
    write_warc(tmp / f"{name_}.warc.gz", pages)
    export = ingest_and_export(tmp / f"{name_}.warc.gz", tmp / f"{name_}.db")
    by_url = {r["url"]: r for r in map(json.loads, export.open())}
    rows = {key: by_url[url] for key, url in urls.items() if url in by_url}
    out: dict = {"cell": "+".join(combo), "strength": strength, "copies": 0, "grouped": 0, "canonical": 0,
                 "missing": sorted(set(truth) - set(rows))}
    counts = {f: {"tp": 0, "fp": 0, "fn": 0} for f in ("spun", "scraped")}
    misses: dict[str, list[str]] = {"spun": [], "scraped": [], "false_spun": [], "false_scraped": []}
    for stem, (group, spun, scraped) in truth.items():
        row = rows.get(stem)
        flags = set(row["flags"]) if row else set()
        for flag, gold in (("spun", spun), ("scraped", scraped)):
            if gold and flag in flags:
                counts[flag]["tp"] += 1
            elif flag in flags:
                counts[flag]["fp"] += 1
                misses[f"false_{flag}"].append(group + ("" if stem.startswith("c") else " (original)"))
            elif gold:
                counts[flag]["fn"] += 1
                misses[flag].append(group)
        if stem.startswith("c"):
            out["copies"] += 1
            original = rows.get(f"o{stem[1:]}")
            if row and original and row["cluster_id"] == original["cluster_id"]:
                out["grouped"] += 1
                out["canonical"] += bool(original["canonical"] and not row["canonical"])
    for flag, c in counts.items():
        out[flag] = {**c, "precision": c["tp"] / (c["tp"] + c["fp"]) if c["tp"] + c["fp"] else None,
                     "recall": c["tp"] / (c["tp"] + c["fn"]) if c["tp"] + c["fn"] else None}
    out["misses"] = misses
    return out


def _f(x: float | None) -> str:
    return "  -  " if x is None else f"{x:.3f}".lstrip("0") if x < 1 else " 1.0 "


def print_matrix(cells: list[dict]) -> None:
    by = {(c["cell"], c["strength"]): c for c in cells}
    names = list(dict.fromkeys(c["cell"] for c in cells))
    strengths = [s for s in STRENGTHS if any(c["strength"] == s for c in cells)]
    head = " | ".join(f"{s:^36}" for s in strengths)
    print(f"{'':20} | {head}")
    print(f"{'':20} | " + " | ".join(f"{'grp':>5} {'can':>5} {'spunP':>5} {'spunR':>5} {'scrP':>5} {'scrR':>5}"
                                     for _ in strengths))
    for name in names:
        parts = []
        for s in strengths:
            c = by.get((name, s))
            if c is None:
                parts.append(" " * 36)
                continue
            n = c["copies"] or 1
            parts.append(f"{_f(c['grouped'] / n)} {_f(c['canonical'] / n)} {_f(c['spun']['precision'])} "
                         f"{_f(c['spun']['recall'])} {_f(c['scraped']['precision'])} {_f(c['scraped']['recall'])}")
        print(f"{name:20} | " + " | ".join(parts))
    low = [(c["cell"], c["strength"], k, c[k]["recall"]) for c in cells for k in ("spun", "scraped")
           if c[k]["recall"] is not None and c[k]["recall"] < 0.9]
    low += [(c["cell"], c["strength"], "grouped", c["grouped"] / c["copies"]) for c in cells
            if c["copies"] and c["grouped"] / c["copies"] < 0.9]
    print(f"cells with a recall under 0.9: {len(low)}")
    for cell, strength, what, value in low:
        print(f"  {cell} {strength} {what} {value:.3f}")


def robustness_matrix(shared: Path, tmp: Path, per_corpus: int, jobs: int,
                      transforms: tuple[str, ...] = TRANSFORMS, strengths: tuple[str, ...] = STRENGTHS) -> list[dict]:
    chosen = matrix_originals(shared, per_corpus)
    titles = [read_story(page).title for _name, page, _url in chosen]
    originals = []
    for k, (name, page, url) in enumerate(chosen):
        related = [(titles[(k + j) % len(titles)], f"https://related.example/story/{(k + j) % len(titles)}")
                   for j in (1, 2, 3)]
        originals.append((name, furnish(page, related, seed=name), url))
    share = ", ".join(f"{c} {sum(n.startswith(c) for n, *_ in originals)}" for c in ("fundus", "aeb", "readability"))
    print(f"== robustness matrix: {len(originals)} originals ({share}), one copy each per cell, "
          "in one WARC per cell through reprint ingest / reprint export")
    work = [(combo, s) for combo in matrix_cells(transforms) for s in strengths]
    with ThreadPoolExecutor(max_workers=jobs) as pool:
        cells = list(pool.map(lambda cs: _cell(originals, cs[0], cs[1], tmp), work))
    print_matrix(cells)
    return cells


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shared", type=Path, default=ROOT.parent / "shared")
    parser.add_argument("--skip-shuffle", action="store_true")
    parser.add_argument("--matrix", action="store_true", help="also print the robustness matrix")
    parser.add_argument("--only-matrix", action="store_true", help="print only the robustness matrix")
    parser.add_argument("--per-corpus", type=int, default=40, help="matrix originals taken from each corpus")
    parser.add_argument("--jobs", type=int, default=1, help="matrix cells ingested at once")
    parser.add_argument("--transforms", default=",".join(TRANSFORMS), help="matrix transformations (comma-separated)")
    parser.add_argument("--strengths", default=",".join(STRENGTHS), help="matrix strengths (comma-separated)")
    parser.add_argument("--matrix-json", type=Path, help="write the matrix cells, with the misses, to this file")
    args = parser.parse_args()
    dev = args.shared / "eval" / "dev"
    with tempfile.TemporaryDirectory() as name:
        tmp = Path(name)
        if args.matrix or args.only_matrix:
            cells = robustness_matrix(args.shared, tmp, args.per_corpus, args.jobs,
                                      tuple(args.transforms.split(",")), tuple(args.strengths.split(",")))
            if args.matrix_json:
                args.matrix_json.write_text(json.dumps(cells, indent=1))
            if args.only_matrix:
                return
        export = ingest_and_export(dev / "corpus.warc.gz", tmp / "dev.db")
        print("== scorer on the dev split")
        print(run([sys.executable, str(args.shared / "eval" / "score.py"), str(dev / "labels.jsonl"),
                   str(export)]).stdout)
        if not args.skip_shuffle:
            shuffled = tmp / "shuffled.warc.gz"
            shuffled_warc(dev / "corpus.warc.gz", shuffled, seed=20261123)
            other = ingest_and_export(shuffled, tmp / "shuffled.db")
            a, b = decisions(export), decisions(other)
            differ = [u for u in a if a[u] != b.get(u)]
            print(f"== order independence: {len(a)} pages, {len(differ)} differ after shuffling "
                  f"({'pass' if not differ and len(a) == len(b) else 'FAIL'})")
        print("== seeds:", json.dumps(seeds(args.shared, tmp)))
        print("== helsinki same-event separation:", json.dumps(helsinki(args.shared, tmp)))


if __name__ == "__main__":
    main()
