"""Detection quality: the dev scorer, order independence, the seeds, and same-event separation.

    python benchmarks/quality.py [--shared ../shared] [--skip-shuffle]

1. Ingests ../shared/eval/dev/corpus.warc.gz through the CLI, exports, and runs the scorer.
2. Writes the same records in a shuffled order to a new WARC, ingests it, and compares the two exports
   (clusters as sets of URLs, canonicals, flags): they must be identical.
3. Wraps the two seed pages as HTML on two sites: one cluster, 000 spun, 002 scraped and not spun.
4. Ingests the Helsinki articles (one summit, many outlets, real wire copies) and checks that no two
   pages whose word 3-gram Jaccard is below 0.1 share a cluster.
"""

from __future__ import annotations

import argparse
import csv
import html
import itertools
import json
import random
import subprocess
import sys
import tempfile
from collections import defaultdict
from pathlib import Path

from pipeline.dedup.deduplicator import Deduplicator
from pipeline.extract.extractor import extract
from pipeline.records import Page
from pipeline.settings import Settings
from pipeline.store import Store
from pipeline.text import shingles, tokenize

ROOT = Path(__file__).resolve().parents[1]


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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shared", type=Path, default=ROOT.parent / "shared")
    parser.add_argument("--skip-shuffle", action="store_true")
    args = parser.parse_args()
    dev = args.shared / "eval" / "dev"
    with tempfile.TemporaryDirectory() as name:
        tmp = Path(name)
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
