"""Run reprint's source parsers over the real third-party corpora and print what they make of them.

    python benchmarks/parse_corpora.py [--root ../shared/corpora] [-v]

- feeds/ and sitemaps/: every file is sniffed the way ``discover`` sniffs a fetched document and goes
  to ``parse_feed``, ``parse_sitemap`` or (under robots/) ``parse_robots``. For the rss-parser feeds,
  whose expected parses are in test/output/*.json, the item counts are compared. Every sitemap
  ``<lastmod>`` goes through ``parse_lastmod`` (what a re-run skips unchanged URLs by); the unreadable
  ones are listed.
- warc/: every .warc/.arc(.gz) (and anything else there that claims to be one) goes through
  ``iter_warc``.

Nothing here is a pass/fail test; it is the table to look at after changing a parser.
"""

from __future__ import annotations

import argparse
import json
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from pipeline.errors import ReprintError
from pipeline.fetch.robots import parse_robots
from pipeline.records import Page
from pipeline.sources.discover import sniff
from pipeline.sources.feeds import parse_feed
from pipeline.sources.sitemaps import GZIP_MAGIC, gunzip_capped, parse_lastmod, parse_sitemap
from pipeline.sources.warc import iter_warc

DEFAULT_ROOT = Path(__file__).resolve().parents[2] / "shared" / "corpora"
MAX_BYTES = 50 * 1024 * 1024
WARC_NAMES = (".warc", ".warc.gz", ".arc", ".arc.gz", ".warc.lz4", ".gz.bad")


@dataclass
class Row:
    files: int = 0
    clean: int = 0  # parsed with no error or warning
    items: int = 0
    errors: Counter[str] = field(default_factory=Counter)
    seconds: float = 0.0


@dataclass
class FileResult:
    path: Path
    group: str
    items: int
    errors: list[ReprintError | str]
    lastmods: list[str] = field(default_factory=list)  # sitemap <lastmod> values as written


def parse_listing(path: Path) -> FileResult:
    """A feed, sitemap or robots.txt file, the way discover would treat it once fetched."""
    body = path.read_bytes()
    url = f"https://corpus.example/{path.name}"
    problems: list[ReprintError | str] = []
    if "/robots/" in path.as_posix():
        rules = parse_robots(body, ttl=0)
        return FileResult(path, "robots", len(rules.sitemaps()), [])
    try:
        if body[:2] == GZIP_MAGIC:
            body = gunzip_capped(body, MAX_BYTES, url=url)
        kind = sniff(body, "", url.removesuffix(".gz"))
        if kind == "feed":
            feed = parse_feed(body, url, "application/json" if path.suffix == ".json" else "")
            problems.extend(feed.warnings)
            return FileResult(path, "feeds", len(feed.entries), problems)
        if kind == "sitemap" or path.suffix in (".xml", ".txt", ".gz"):
            sitemap = parse_sitemap(body, url, max_bytes=MAX_BYTES)
            problems.extend(sitemap.warnings)
            lastmods = [entry.lastmod for entry in sitemap.entries if entry.lastmod]
            return FileResult(path, f"sitemaps ({sitemap.kind})", len(sitemap.entries), problems, lastmods)
        return FileResult(path, "not a listing", 0, [f"sniffed as {kind}"])
    except ReprintError as exc:
        group = "feeds" if path.suffix in (".rss", ".atom", ".json") or "feed" in path.name else "sitemaps (failed)"
        return FileResult(path, group, 0, [exc])


def parse_warc(path: Path) -> FileResult:
    pages, problems = 0, []
    for item in iter_warc(path, max_bytes=MAX_BYTES):
        if isinstance(item, Page):
            pages += 1
        else:
            problems.append(item)
    return FileResult(path, "warc", pages, problems)


def expected_items(path: Path) -> int | None:
    """Item count in rss-parser's expected output for this input feed, if there is one."""
    output = path.parent.parent / "output" / (path.stem + ".json")
    if "rss-parser" not in path.as_posix() or not output.exists():
        return None
    try:
        return len(json.loads(output.read_text(encoding="utf-8"))["feed"].get("items", []))
    except (ValueError, KeyError, TypeError):
        return None


def kind_of(problem: ReprintError | str) -> str:
    return problem.kind if isinstance(problem, ReprintError) else "warning"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", type=Path, default=DEFAULT_ROOT)
    parser.add_argument("-v", "--verbose", action="store_true", help="one line per file")
    args = parser.parse_args()
    root: Path = args.root

    listings = sorted(
        p
        for folder in ("feeds", "sitemaps")
        for p in (root / folder).rglob("*")
        if p.is_file() and "LICENSE" not in p.name and "/test/output/" not in p.as_posix()
    )
    warcs = sorted(p for p in (root / "warc").rglob("*") if p.is_file() and p.name.lower().endswith(WARC_NAMES))

    rows: dict[str, Row] = defaultdict(Row)
    results: list[FileResult] = []
    for path, parse in [(p, parse_listing) for p in listings] + [(p, parse_warc) for p in warcs]:
        started = time.perf_counter()
        result = parse(path)
        elapsed = time.perf_counter() - started
        results.append(result)
        row = rows[result.group]
        row.files += 1
        row.items += result.items
        row.clean += not result.errors
        row.seconds += elapsed
        row.errors.update(kind_of(p) for p in result.errors)

    print(f"corpora: {root}\n")
    header = f"{'group':<22} {'files':>5} {'clean':>5} {'items':>7} {'ms':>8}  errors by kind"
    print(header)
    print("-" * len(header))
    for group in sorted(rows):
        row = rows[group]
        kinds = ", ".join(f"{k} {n}" for k, n in row.errors.most_common()) or "-"
        print(f"{group:<22} {row.files:>5} {row.clean:>5} {row.items:>7} {row.seconds * 1000:>8.1f}  {kinds}")

    compared = [(r, expected_items(r.path)) for r in results if r.group == "feeds"]
    compared = [(r, n) for r, n in compared if n is not None]
    if compared:
        matching = sum(r.items == n for r, n in compared)
        print(f"\nrss-parser feeds: item count equals the expected parse in {matching}/{len(compared)} files")
        for result, expected in compared:
            if result.items != expected:
                print(f"  {result.path.name}: {result.items} items with a link, expected {expected} items")

    lastmods = [value for result in results for value in result.lastmods]
    unreadable = Counter(value for value in lastmods if parse_lastmod(value) is None)
    print(f"\nsitemap <lastmod>: {len(lastmods) - sum(unreadable.values())}/{len(lastmods)} readable "
          f"(in {sum(1 for r in results if r.lastmods)} sitemaps)")
    for value, count in unreadable.most_common(10):
        print(f"  unreadable: {value!r} x{count}")

    if args.verbose:
        print()
        for result in results:
            shown = "; ".join(str(p)[:140] for p in result.errors[:2]) or "ok"
            print(f"{result.group:<22} {result.items:>6}  {result.path.relative_to(root)}  {shown}")


if __name__ == "__main__":
    main()
