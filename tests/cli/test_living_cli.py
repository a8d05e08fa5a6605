"""The living-article commands: ``review …``, ``forget``, ``tombstones …``, ``prune`` and ``reprocess``, on SQLite
and PostgreSQL. Bad input (an unknown URL, merging a page with itself, undoing twice, an unknown review, a bad
flag or date) is one line on stderr, exit code 2, and changes nothing; forgetting twice is a no-op."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text

from pipeline.store import Store, make_engine
from tests.support.cli import cli
from tests.support.world import write_pages

pytestmark = pytest.mark.usefixtures("reprint_env")


def _world(tmp_path: Path, db_url: str) -> dict[str, str]:
    folder = tmp_path / "world"
    folder.mkdir()
    paths = write_pages(folder)
    assert cli("ingest", str(folder), "--db", db_url, "--no-progress").exit_code == 0
    return {name: p.resolve().as_uri() for name, p in paths.items()}


def _state(db_url: str) -> tuple[Any, ...]:
    """Everything a refused command must leave as it was."""
    engine = make_engine(db_url)
    try:
        with engine.connect() as c:
            return tuple(tuple(map(tuple, c.execute(text(q)).all())) for q in (
                "SELECT id, cluster_id, is_canonical, CAST(flags AS TEXT), CAST(evidence AS TEXT) FROM articles "
                "ORDER BY id", "SELECT id, canonical_id, size, updated_at FROM clusters ORDER BY id",
                "SELECT id, type FROM events ORDER BY id", "SELECT id, undone_at FROM reviews ORDER BY id",
                "SELECT url_key FROM tombstones ORDER BY url_key"))
    finally:
        engine.dispose()


def _refused(result: Any, needle: str) -> None:
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:") and needle in " ".join(result.stderr.split()), lines


def test_reviews_from_the_command_line(tmp_path: Path, db_url: str) -> None:
    urls = _world(tmp_path, db_url)
    done = cli("review", "canonical", urls["pier_spun"], "--note", "the editor's choice", "--who", "ed",
               "--db", db_url)
    assert done.exit_code == 0, done.output
    assert "review #1 (canonical) applied" in done.stdout
    rows = {r["url"]: r for r in map(json.loads, cli("export", "--db", db_url).stdout.splitlines())}
    assert rows[urls["pier_spun"]]["canonical"] and not rows[urls["pier_original"]]["canonical"]
    assert rows[urls["pier_spun"]]["evidence"]["canonical"]["review"] == 1
    flagged = cli("review", "flag", urls["otters"], "spun", "--on", "--db", db_url)
    assert flagged.exit_code == 0 and "(flag spun on)" in flagged.stdout
    merged = cli("review", "merge", urls["otters"], urls["pier_original"], "--db", db_url)
    assert merged.exit_code == 0, merged.output
    listed = [json.loads(line) for line in cli("review", "list", "--json", "--db", db_url).stdout.splitlines()]
    assert [(r["id"], r["kind"], r["undone"]) for r in listed] == [(1, "canonical", False), (2, "flag", False),
                                                                     (3, "merge", False)]
    assert listed[0]["who"] == "ed" and listed[0]["note"] == "the editor's choice"
    assert listed[1]["flag"] == "spun" and listed[1]["on"] is True
    assert cli("review", "undo", "1", "--db", db_url).exit_code == 0
    table = cli("review", "list", "--db", db_url).stdout
    assert "undone" in table and "in force" in table
    only = [json.loads(line) for line in cli("review", "list", "--url", urls["otters"], "--json", "--db",
                                             db_url).stdout.splitlines()]
    assert [r["id"] for r in only] == [2, 3]


def test_bad_review_input_is_refused_and_changes_nothing(tmp_path: Path, db_url: str) -> None:
    urls = _world(tmp_path, db_url)
    assert cli("review", "separate", urls["pier_scraped"], "--db", db_url).exit_code == 0
    assert cli("review", "undo", "1", "--db", db_url).exit_code == 0
    before = _state(db_url)
    _refused(cli("review", "canonical", "https://nowhere.example/story", "--db", db_url),
             "no stored article at https://nowhere.example/story")
    _refused(cli("review", "merge", urls["otters"], urls["otters"], "--db", db_url), "cannot be merged with itself")
    _refused(cli("review", "merge", urls["otters"], "https://nowhere.example/x", "--db", db_url), "no stored article")
    _refused(cli("review", "undo", "1", "--db", db_url), "review 1 was undone already")
    _refused(cli("review", "undo", "42", "--db", db_url), "no review 42")
    _refused(cli("review", "flag", urls["otters"], "spun", "--db", db_url), "say --on or --off")
    _refused(cli("review", "canonical", urls["otters"], "--note", "x" * 2001, "--db", db_url), "longer than")
    bad_flag = cli("review", "flag", urls["otters"], "sponsored", "--on", "--db", db_url)
    assert bad_flag.exit_code == 2 and "Traceback" not in bad_flag.output
    _refused(cli("forget", "https://nowhere.example/story", "--db", db_url), "no stored page")
    _refused(cli("tombstones", "allow", "https://nowhere.example/story", "--db", db_url), "never forgotten")
    _refused(cli("reprocess", "--since", "last tuesday", "--db", db_url), "bad value for --since")
    _refused(cli("reprocess", "--source", "nowhere.warc", "--db", db_url), "no source 'nowhere.warc'")
    assert _state(db_url) == before


def test_forget_prune_and_reprocess_from_the_command_line(tmp_path: Path, db_url: str) -> None:
    urls = _world(tmp_path, db_url)
    first = cli("forget", urls["otters"], "--reason", "publisher request", "--db", db_url)
    assert first.exit_code == 0 and "forgot" in first.stdout, first.output
    before = _state(db_url)
    again = cli("forget", urls["otters"], "--db", db_url)
    assert again.exit_code == 0 and "forgotten already" in again.stdout
    assert _state(db_url) == before, "forgetting twice is a no-op"
    stones = [json.loads(line) for line in cli("tombstones", "list", "--json", "--db", db_url).stdout.splitlines()]
    assert [(s["url"], s["reason"], s["allowed"]) for s in stones] == [(urls["otters"], "publisher request", False)]
    ingest = cli("ingest", str(tmp_path / "world"), "--db", db_url, "--no-progress")
    assert ingest.exit_code == 0 and "forgotten (skipped)" in ingest.stdout
    assert urls["otters"] not in cli("export", "--db", db_url).stdout
    report = json.loads(cli("reprocess", "--json", "--no-progress", "--db", db_url).stdout)
    assert report["pages"] == 7 and report["unchanged"] == 7 and report["text_changed"] == 0
    assert cli("tombstones", "allow", urls["otters"], "--db", db_url).exit_code == 0
    assert cli("ingest", str(tmp_path / "world"), "--db", db_url, "--no-progress").exit_code == 0
    assert urls["otters"] in cli("export", "--db", db_url).stdout
    pruned = cli("prune", "--html-older-than", "0", "--db", db_url)
    assert pruned.exit_code == 0 and "pruned the HTML of 8 page(s)" in pruned.stdout, pruned.output
    shown = cli("reprocess", "--no-progress", "--db", db_url)
    assert shown.exit_code == 0 and "skipped (HTML pruned)" in shown.stdout and "nothing changed" in shown.stdout
    refused = cli("prune", "--html-older-than", "-1", "--db", db_url)
    assert refused.exit_code == 2


def test_the_versions_of_an_updated_page_are_listed(tmp_path: Path, sqlite_url: str) -> None:
    urls = _world(tmp_path, sqlite_url)
    page = tmp_path / "world" / "otters.html"
    page.write_bytes(page.read_bytes().replace(b"canal basin", b"canal basin and the mill race"))
    updated = cli("ingest", str(page), "--db", sqlite_url, "--no-progress")
    assert updated.exit_code == 0 and "updated" in updated.stdout, updated.output
    store = Store(sqlite_url)
    try:
        article_id = store.article_by_url(urls["otters"])[0]  # type: ignore[index]
        (version,) = store.versions(article_id)
        assert version["version"] == 1 and version["reason"] == "update"
    finally:
        store.close()
