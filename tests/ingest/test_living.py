"""Living articles, embedded, on SQLite and PostgreSQL: updates from a WARC with newer records, takedowns and
their tombstones, retention, and re-processing (unchanged code changes nothing; a changed extraction setting is
reported exactly; a run that stops is resumed). The mirror through every change is ``test_living_mirror.py``."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import pytest

import pipeline.ingest.reprocess as reprocess_module
from pipeline.ingest import reviews
from pipeline.ingest.living import allow, forget, prune
from pipeline.ingest.reprocess import run_reprocess
from pipeline.ingest.runner import run_ingest
from pipeline.records import Article
from pipeline.serve.export import export_jsonl
from pipeline.serve.queries import canonical_ids, list_changes, mirror_from_events
from pipeline.settings import Settings
from pipeline.store import Store
from tests.support.living import CORRECTION
from tests.support.pages import unrelated_page
from tests.support.warc import write_dated_pages
from tests.support.world import LIBRARY_FIRST, LIBRARY_SECOND, LIBRARY_TITLE, PIER, PIER_TITLE, page, scrape, spin

HOST = "https://news.example"


def _pier(paragraphs: list[str] = PIER) -> bytes:
    return page(PIER_TITLE, paragraphs, site="Westmere Herald", host="westmereherald.example", byline="Rosa Lindgren")


PAGES = {
    f"{HOST}/pier": _pier(),
    f"{HOST}/pier-scraped": page(PIER_TITLE, [scrape(p) for p in PIER], site="News Harvest", host="harvest.example",
                                 date="2025-06-13"),
    f"{HOST}/pier-spun": page(spin(PIER_TITLE), [spin(p) for p in PIER], site="Fresh Takes", host="fresh.example",
                              byline="Rosa Lindgren", date="2025-06-14"),
    f"{HOST}/library": page(LIBRARY_TITLE, LIBRARY_FIRST + LIBRARY_SECOND, site="Ashford Echo", host="echo.example",
                            byline="Tom Price", date="2025-05-01"),
    f"{HOST}/otters": unrelated_page(),
    # the second half of the library story: a part of it while the pages are read whole
    f"{HOST}/library-reaction": page("Ashford libraries: unions and campaigners react", LIBRARY_SECOND,
                                     site="Evening Digest", host="digest.example", date="2025-05-02"),
}


def _ingest(store: Store, path: Path) -> Any:
    summary = run_ingest([str(path)], store, Settings(database_url=store.url), progress=False)
    assert summary.ok, summary.notes
    return summary


def _export(store: Store) -> dict[str, dict[str, Any]]:
    out = io.StringIO()
    export_jsonl(store, out)
    return {row["url"]: row for row in map(json.loads, out.getvalue().splitlines())}


def _first_ingest(store: Store, tmp_path: Path) -> None:
    write_dated_pages(tmp_path / "first.warc.gz", [(u, b, "2025-06-15T08:00:00Z") for u, b in PAGES.items()])
    assert _ingest(store, tmp_path / "first.warc.gz").articles == len(PAGES)


# --- updates ----------------------------------------------------------------------------------------------------------
def test_a_warc_with_newer_records_updates_exactly_those_pages(store: Store, tmp_path: Path) -> None:
    _first_ingest(store, tmp_path)
    before = _export(store)
    _, cursor = list_changes(store, limit=100000)
    corrected = _pier([*PIER, CORRECTION])
    otters = unrelated_page().replace(b"canal basin", b"canal basin and the old mill race")
    write_dated_pages(tmp_path / "second.warc.gz", [
        (f"{HOST}/pier", corrected, "2025-06-16T08:00:00Z"),  # newer, other content: updated
        (f"{HOST}/otters", otters, "2025-06-16T09:00:00Z"),  # newer, other content: updated
        (f"{HOST}/library", PAGES[f"{HOST}/library"], "2025-06-16T10:00:00Z"),  # newer, same bytes: unchanged
        (f"{HOST}/pier-spun", PAGES[f"{HOST}/pier-spun"].replace(b"jetty", b"wharf"), "2025-06-01T00:00:00Z"),  # older
    ])
    summary = _ingest(store, tmp_path / "second.warc.gz")
    assert (summary.updated, summary.unchanged, summary.older, summary.articles) == (2, 1, 1, 0)
    after = _export(store)
    changed = {u for u in after if after[u]["text"] != before[u]["text"]}
    assert changed == {f"{HOST}/pier", f"{HOST}/otters"}
    assert CORRECTION in after[f"{HOST}/pier"]["text"] and "jetty" in after[f"{HOST}/pier-spun"]["text"]
    events, _ = list_changes(store, after=cursor, limit=1000)
    updated = [e for e in events if e["type"] == "article_updated"]
    assert {e["data"]["url"] for e in updated} == changed
    pier = next(e for e in updated if e["data"]["url"] == f"{HOST}/pier")
    assert pier["data"]["title"] == {"old": PIER_TITLE, "new": PIER_TITLE} and pier["data"]["changed"] == ["text"]
    assert pier["data"]["length"]["new"] == len(after[f"{HOST}/pier"]["text"])
    assert pier["data"]["text_hash"]["old"] != pier["data"]["text_hash"]["new"]
    # the corrected original is still its cluster's canonical; the old versions are kept, one each
    assert after[f"{HOST}/pier"]["canonical"] and after[f"{HOST}/pier"]["cluster_id"] == before[f"{HOST}/pier"][
        "cluster_id"]
    ids = {u: r["id"] for u, r in ((u, store.article_by_url(u)) for u in PAGES) for r in [{"id": r[0]}]}
    (version,) = store.versions(ids[f"{HOST}/pier"])
    assert version["text_length"] == len(before[f"{HOST}/pier"]["text"]) and version["reason"] == "update"
    assert version["fetched_at"].startswith("2025-06-15T08:00:00")
    assert store.versions(ids[f"{HOST}/library"]) == [] and store.versions(ids[f"{HOST}/pier-spun"]) == []
    # the same WARC again: nothing changes
    again = _ingest(store, tmp_path / "second.warc.gz")
    assert again.updated == 0 and again.unchanged == 3 and again.older == 1


def test_an_update_replaces_the_articles_index_entries(store: Store, tmp_path: Path) -> None:
    """The pier copy becomes the library story: it is found through its new text only, and stays found when a
    third version of the story arrives."""
    from pipeline.dedup.fingerprint import fingerprint
    from pipeline.dedup.index import StoreLSHIndex

    _first_ingest(store, tmp_path)
    spun_id = store.article_by_url(f"{HOST}/pier-spun")[0]  # type: ignore[index]
    old = fingerprint(store.articles([spun_id])[spun_id], 128)
    moved = page(LIBRARY_TITLE, LIBRARY_FIRST + LIBRARY_SECOND, site="Fresh Takes", host="fresh.example")
    write_dated_pages(tmp_path / "moved.warc.gz", [(f"{HOST}/pier-spun", moved, "2025-06-20T00:00:00Z")])
    assert _ingest(store, tmp_path / "moved.warc.gz").updated == 1
    index = StoreLSHIndex(store)
    new = fingerprint(store.articles([spun_id])[spun_id], 128)
    assert spun_id not in index.query(old) and spun_id in index.query(new)
    rows = _export(store)
    assert rows[f"{HOST}/pier-spun"]["cluster_id"] == rows[f"{HOST}/library"]["cluster_id"]
    assert rows[f"{HOST}/pier-spun"]["cluster_id"] != rows[f"{HOST}/pier"]["cluster_id"]


def test_reviews_survive_updates_and_reprocessing(store: Store, tmp_path: Path) -> None:
    _first_ingest(store, tmp_path)
    reviews.apply(store, "canonical", [f"{HOST}/pier-spun"], who="ed")
    reviews.apply(store, "separate", [f"{HOST}/pier-scraped"], who="ed")
    assert _export(store)[f"{HOST}/pier-spun"]["canonical"]
    write_dated_pages(tmp_path / "u.warc.gz", [
        (f"{HOST}/pier-spun", PAGES[f"{HOST}/pier-spun"].replace(b"jetty", b"wharf"), "2025-06-20T00:00:00Z"),
        (f"{HOST}/pier", _pier([*PIER, CORRECTION]), "2025-06-20T00:00:00Z")])
    assert _ingest(store, tmp_path / "u.warc.gz").updated == 2
    rows = _export(store)
    assert rows[f"{HOST}/pier-spun"]["canonical"] and not rows[f"{HOST}/pier"]["canonical"]
    assert rows[f"{HOST}/pier-spun"]["evidence"]["canonical"]["decided_by"] == "review"
    assert rows[f"{HOST}/pier-scraped"]["canonical"], "still kept out of its cluster"
    # a new copy of the separated page's text arrives: it joins the story, the separated page stays out
    copy = PAGES[f"{HOST}/pier-scraped"].replace(b"News Harvest", b"Copy Farm")
    write_dated_pages(tmp_path / "c.warc.gz", [(f"{HOST}/copy", copy, "2025-06-21T00:00:00Z")])
    _ingest(store, tmp_path / "c.warc.gz")
    rows = _export(store)
    assert rows[f"{HOST}/copy"]["cluster_id"] == rows[f"{HOST}/pier"]["cluster_id"]
    assert rows[f"{HOST}/pier-scraped"]["cluster_id"] not in {r["cluster_id"] for u, r in rows.items()
                                                              if u != f"{HOST}/pier-scraped"}
    report = run_reprocess(store, Settings(database_url=store.url), progress=False)
    assert not report.changed and _export(store) == rows


# --- takedowns and retention ------------------------------------------------------------------------------------------
def test_forget_removes_the_page_keeps_a_tombstone_and_blocks_re_ingest(store: Store, tmp_path: Path) -> None:
    _first_ingest(store, tmp_path)
    events, cursor = list_changes(store, limit=100000)
    mirror = mirror_from_events(events)
    pier_id = store.article_by_url(f"{HOST}/pier")[0]  # type: ignore[index]
    done = forget(store, f"{HOST}/pier", reason="legal request", who="ed")
    assert done["forgotten"] and done["article_id"] == pier_id
    events, cursor = list_changes(store, after=cursor, limit=1000)
    assert events[0]["type"] == "article_removed" and events[0]["data"]["canonical"] is True
    assert mirror_from_events(events, mirror) == canonical_ids(store) and pier_id not in mirror
    rows = _export(store)
    assert f"{HOST}/pier" not in rows
    story = [rows[u] for u in (f"{HOST}/pier-scraped", f"{HOST}/pier-spun")]
    assert story[0]["cluster_id"] == story[1]["cluster_id"] and sum(r["canonical"] for r in story) == 1
    assert store.stored_page(f"{HOST}/pier") is None and store.signatures_of([pier_id]) == {}
    assert store.articles([pier_id]) == {} and store.versions(pier_id) == []
    tomb = store.tombstone(f"{HOST}/pier")
    assert tomb["reason"] == "legal request" and tomb["who"] == "ed" and not tomb["allowed"]
    # forgetting twice is a no-op: no event, nothing changed
    assert forget(store, f"{HOST}/pier", who="ed")["already"]
    assert list_changes(store, after=cursor, limit=10)[0] == []
    with pytest.raises(LookupError):
        forget(store, f"{HOST}/never-stored", who="ed")
    # the URL is not ingested again
    summary = _ingest(store, tmp_path / "first.warc.gz")
    assert summary.forgotten == 1 and summary.articles == 0 and f"{HOST}/pier" not in _export(store)
    # until it is allowed explicitly
    assert allow(store, f"{HOST}/pier")["allowed"]
    with pytest.raises(LookupError):
        allow(store, f"{HOST}/never-stored")
    assert _ingest(store, tmp_path / "first.warc.gz").articles == 1
    rows = _export(store)
    assert rows[f"{HOST}/pier"]["canonical"] and rows[f"{HOST}/pier"]["cluster_id"] == rows[f"{HOST}/pier-spun"][
        "cluster_id"]


def test_prune_drops_old_html_and_reprocessing_skips_those_pages(store: Store, tmp_path: Path) -> None:
    _first_ingest(store, tmp_path)
    write_dated_pages(tmp_path / "fresh.warc.gz", [(f"{HOST}/fresh", page("A fresh story", LIBRARY_SECOND,
                                                                       site="Now", host="now.example"),
                                                    "2099-01-01T00:00:00Z")])
    _ingest(store, tmp_path / "fresh.warc.gz")
    before = _export(store)
    done = prune(store, 30)
    assert done["pages"] == len(PAGES) and done["bytes"] > 0
    assert prune(store, 30)["pages"] == 0, "pruning twice drops nothing more"
    with pytest.raises(ValueError):
        prune(store, -1)
    fresh_page = store.stored_page(f"{HOST}/fresh")[0]  # type: ignore[index]
    pier_page = store.stored_page(f"{HOST}/pier")[0]  # type: ignore[index]
    assert store.page_html(pier_page) == b"" and store.page_html(fresh_page).startswith(b"<!DOCTYPE")
    rows = _export(store)
    assert rows == before, "text, clusters and flags stay"
    report = run_reprocess(store, Settings(database_url=store.url), progress=False)
    assert report.pruned == len(PAGES) and report.unchanged == 1 and not report.changed
    # an unchanged re-fetch is still a no-op (the content hash stays)
    assert _ingest(store, tmp_path / "first.warc.gz").unchanged == len(PAGES)


# --- re-processing ----------------------------------------------------------------------------------------------------
def _state(store: Store) -> tuple[Any, ...]:
    """Everything a re-processing must leave alone when nothing changed: articles, clusters, relations, events."""
    from sqlalchemy import text

    with store.engine.connect() as c:
        return tuple(tuple(map(tuple, c.execute(text(q)).all())) for q in (
            "SELECT id, cluster_id, is_canonical, CAST(flags AS TEXT), CAST(evidence AS TEXT), similarity, title, "
            "text, updated_at FROM articles ORDER BY id",
            "SELECT id, canonical_id, size, merged_into, updated_at FROM clusters ORDER BY id",
            "SELECT a_id, b_id, relation, similarity, CAST(data AS TEXT) FROM edges ORDER BY a_id, b_id",
            "SELECT id, type FROM events ORDER BY id"))


def test_reprocessing_with_unchanged_code_changes_nothing(store: Store, tmp_path: Path) -> None:
    _first_ingest(store, tmp_path)
    before = _state(store)
    report = run_reprocess(store, Settings(database_url=store.url), progress=False, batch=2)
    assert report.pages == len(PAGES) and report.unchanged == len(PAGES) and not report.changed
    assert _state(store) == before
    assert store.reprocess_checkpoint(reprocess_module.options_key({"source": None, "since": None})) is None


def _lead_only(real: Any) -> Any:
    """A deliberate change of extraction: keep the first three paragraphs (the title and two) of every page."""

    def extract(page: Any, settings: Any) -> tuple[Article, list[tuple[str, str, str]]]:
        article, warnings = real(page, settings)
        kept = article.paragraphs[:3]
        text = "\n\n".join(kept)
        links = tuple(link for link in article.links if link.start < len(text))
        return Article(**{**{f: getattr(article, f) for f in article.__dataclass_fields__}, "paragraphs": kept,
                          "text": text, "links": links}), warnings

    return extract


def test_reprocessing_after_an_extraction_change_reports_exactly_what_moved(store: Store, tmp_path: Path,
                                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    _first_ingest(store, tmp_path)
    before = _export(store)
    events, cursor = list_changes(store, limit=100000)
    mirror = mirror_from_events(events)
    monkeypatch.setattr(reprocess_module, "extract_page", _lead_only(reprocess_module.extract_page))
    report = run_reprocess(store, Settings(database_url=store.url), progress=False, batch=2)
    after = _export(store)
    events, _ = list_changes(store, after=cursor, limit=10000)
    assert mirror_from_events(events, mirror) == canonical_ids(store)
    text_changed = {u for u in after if after[u]["text"] != before[u]["text"]}
    assert report.text_changed == len(text_changed) == len(report.changed_urls) > 0
    assert set(report.changed_urls) == text_changed
    assert report.text_changed == sum(e["type"] == "article_updated" for e in events)

    moved = {u for u in after if after[u]["cluster_id"] != before[u]["cluster_id"]}
    assert report.cluster_moves == len(moved)
    canonical_before = {r["cluster_id"]: u for u, r in before.items() if r["canonical"]}
    canonical_after = {r["cluster_id"]: u for u, r in after.items() if r["canonical"]}
    assert report.canonical_changes == sum(canonical_before.get(c) != u for c, u in canonical_after.items())
    gained: dict[str, int] = {}
    lost: dict[str, int] = {}
    for u in after:
        for f in set(after[u]["flags"]) - set(before[u]["flags"]):
            gained[f] = gained.get(f, 0) + 1
        for f in set(before[u]["flags"]) - set(after[u]["flags"]):
            lost[f] = lost.get(f, 0) + 1
    assert dict(report.flags_gained) == gained and dict(report.flags_lost) == lost
    # the second half of the library story no longer shares text with the lead of the whole: it leaves
    assert moved == {f"{HOST}/library-reaction"} and after[f"{HOST}/library-reaction"]["canonical"]
    # the same setting again: nothing more moves
    again = run_reprocess(store, Settings(database_url=store.url), progress=False)
    assert not again.changed and _export(store) == after


def test_a_reprocessing_that_stops_is_resumed(store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _first_ingest(store, tmp_path)
    real = reprocess_module.reprocess_pages
    calls = {"n": 0}

    def crash_on_the_third_batch(*args: Any, **kwargs: Any) -> Any:
        calls["n"] += 1
        if calls["n"] == 3:
            raise KeyboardInterrupt("the operator pressed Ctrl-C")
        return real(*args, **kwargs)

    monkeypatch.setattr(reprocess_module, "reprocess_pages", crash_on_the_third_batch)
    monkeypatch.setattr(reprocess_module, "extract_page", _lead_only(reprocess_module.extract_page))
    with pytest.raises(KeyboardInterrupt):
        run_reprocess(store, Settings(database_url=store.url), progress=False, batch=2)
    key = reprocess_module.options_key({"source": None, "since": None})
    last, counts = store.reprocess_checkpoint(key)  # type: ignore[misc]
    assert counts["pages"] == 4 and last == sorted(i for i, in _page_ids(store))[3]
    monkeypatch.setattr(reprocess_module, "reprocess_pages", real)
    report = run_reprocess(store, Settings(database_url=store.url), progress=False, batch=2)
    assert report.resumed_at == last and report.pages == len(PAGES)
    assert store.reprocess_checkpoint(key) is None
    # every page was re-extracted exactly once across the two runs
    rows = _export(store)
    assert all(len(r["text"].split("\n\n")) <= 3 for r in rows.values())
    assert sum(len(store.versions(store.article_by_url(u)[0])) for u in PAGES) == report.text_changed  # type: ignore[index]


def _page_ids(store: Store) -> list[tuple[int]]:
    from sqlalchemy import text

    with store.engine.connect() as c:
        return [tuple(r) for r in c.execute(text("SELECT id FROM pages")).all()]


def test_reprocessing_one_source_since_a_date(store: Store, tmp_path: Path) -> None:
    from datetime import UTC, datetime

    _first_ingest(store, tmp_path)
    write_dated_pages(tmp_path / "later.warc.gz", [(f"{HOST}/late", page("Late story", LIBRARY_SECOND, site="L",
                                                                       host="l.example"), "2025-07-01T00:00:00Z")])
    _ingest(store, tmp_path / "later.warc.gz")
    settings = Settings(database_url=store.url)
    assert run_reprocess(store, settings, source=str(tmp_path / "later.warc.gz"), progress=False).pages == 1
    assert run_reprocess(store, settings, since=datetime(2025, 6, 20, tzinfo=UTC), progress=False).pages == 1
    assert run_reprocess(store, settings, progress=False).pages == len(PAGES) + 1
    with pytest.raises(LookupError):
        run_reprocess(store, settings, source="never-ingested.warc", progress=False)


def test_a_re_fetch_after_an_etag_change_updates_the_article(store: Store, http_server: Any, tmp_path: Path) -> None:
    """The page is asked for conditionally; while its ETag stands it is a 304 (unchanged), and once the server has a
    new version it answers 200 with other content, which updates the stored article."""
    from tests.support.http import Response

    version = {"etag": '"v1"', "body": _pier()}

    def answer(request: Any) -> Response:
        if request.headers.get("if-none-match") == version["etag"]:
            return Response(304, b"", {"ETag": version["etag"]})
        return Response(200, version["body"], {"ETag": version["etag"]}, "text/html; charset=utf-8")

    http_server.handle("/pier", answer)
    settings = Settings(database_url=store.url, fetch_allow_networks=["127.0.0.1/32"], fetch_robots=False)
    url = http_server.url("/pier")
    listing = tmp_path / "urls.txt"  # a list of URLs: each is fetched, conditionally once stored
    listing.write_text(url + "\n")
    assert run_ingest([str(listing)], store, settings, progress=False).articles == 1
    assert run_ingest([str(listing)], store, settings, progress=False).unchanged == 1
    version.update(etag='"v2"', body=_pier([*PIER, CORRECTION]))
    summary = run_ingest([str(listing)], store, settings, progress=False)
    assert summary.updated == 1 and summary.ok
    assert CORRECTION in _export(store)[url]["text"]
    assert [r.headers.get("if-none-match") for r in http_server.requests if r.path == "/pier"] == [None, '"v1"',
                                                                                                  '"v1"']
    assert run_ingest([str(listing)], store, settings, progress=False).unchanged == 1
    assert http_server.requests[-1].headers.get("if-none-match") == '"v2"', "the new ETag is the one sent now"
