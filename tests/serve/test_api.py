"""The REST API against a real uvicorn on 127.0.0.1, over a store filled by real ingests, on SQLite and PostgreSQL.

The module's world is built in stages, and a follower polls ``/changes`` between them exactly as a downstream
system would: a scraped copy arrives before its original (the canonical must move), two halves of another story
arrive before the whole (two clusters must merge), then a republished and a spun copy and an unrelated article.
After every stage the follower's mirror must equal the canonical set the store holds.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from pipeline.serve.api import create_app, serve_in_thread
from pipeline.serve.cursors import decode_cursor
from pipeline.serve.queries import canonical_ids, mirror_from_events
from pipeline.settings import Settings
from pipeline.store import Store
from tests.support.admin import FakeAdmin
from tests.support.db import temporary_database
from tests.support.world import STAGES, ingest_files, write_pages


def clusters_now(store: Store) -> dict[int, int]:
    """article id → cluster id, as stored right now."""
    return {row.id: row.cluster_id for row in store.export_rows()}


class Follower:
    """A downstream system: polls /changes with the cursor it was last given, keeps a mirror of the canonicals."""

    def __init__(self, client: httpx.Client, cursor: str | None = None) -> None:
        self.client, self.cursor = client, cursor
        self.canonical: set[int] = set()
        self.events: list[dict[str, Any]] = []

    def poll(self, limit: int = 3) -> int:
        """Follow the feed to its end in small pages (so paging is exercised); returns events applied."""
        applied = 0
        while True:
            params = {"limit": limit} | ({"cursor": self.cursor} if self.cursor else {})
            r = self.client.get("/changes", params=params)
            assert r.status_code == 200, r.text
            body = r.json()
            ids = [e["id"] for e in body["events"]]
            assert ids == sorted(ids) and len(set(ids)) == len(ids)
            if self.events and ids:
                assert ids[0] > self.events[-1]["id"], "the feed repeated or went back"
            mirror_from_events(body["events"], self.canonical)
            self.events.extend(body["events"])
            applied += len(body["events"])
            self.cursor = body["next_cursor"]
            if not body["has_more"]:
                return applied


@dataclass
class World:
    url: str
    store: Store
    settings: Settings
    backend: str
    paths: dict[str, Path]
    ids: dict[str, int] = field(default_factory=dict)
    snapshots: list[tuple[str, set[int], set[int]]] = field(default_factory=list)
    clusters: dict[str, dict[int, int]] = field(default_factory=dict)
    cursors: dict[str, str | None] = field(default_factory=dict)
    follower: Follower | None = None

    def client(self, **kw: Any) -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=10, **kw)


def article_ids_by_name(store: Store, paths: dict[str, Path]) -> dict[str, int]:
    by_url = {row.url: row.id for row in store.export_rows()}
    return {name: by_url[p.resolve().as_uri()] for name, p in paths.items() if p.resolve().as_uri() in by_url}


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def world(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    """A served store built stage by stage, with a follower that polled the feed after every stage."""
    tmp = tmp_path_factory.mktemp(f"api-{request.param}")
    saved = {k: os.environ.pop(k) for k in list(os.environ) if k.startswith("REPRINT_")}
    try:
        for url in temporary_database(request.param, tmp):
            settings = Settings(database_url=url)
            store = Store(url)
            paths = write_pages(tmp)
            try:
                with serve_in_thread(create_app(store, settings)) as base:
                    w = World(base, store, settings, request.param, paths)
                    with w.client() as client:
                        w.follower = Follower(client)
                        for stage, names in STAGES:
                            ingest_files(store, settings, [paths[n] for n in names])
                            w.follower.poll()
                            w.snapshots.append((stage, set(w.follower.canonical), canonical_ids(store)))
                            w.clusters[stage] = clusters_now(store)
                            w.cursors[stage] = w.follower.cursor
                        w.ids = article_ids_by_name(store, paths)
                        w.follower.client = None  # type: ignore[assignment]
                    yield w
            finally:
                store.close()
    finally:
        os.environ.update(saved)


# --- the mirror -----------------------------------------------------------------------------------------------------
def test_world_has_the_expected_clusters(world: World) -> None:
    """Guard for the mirror test: the stages really produced a canonical move and a merge."""
    rows = world.store.article_rows(world.ids.values())
    ids = world.ids
    pier = {ids[n] for n in ("pier_original", "pier_scraped", "pier_spun", "pier_republished")}
    assert len({rows[i].cluster_id for i in pier}) == 1
    assert rows[ids["pier_original"]].is_canonical
    assert "scraped" in rows[ids["pier_scraped"]].flags
    assert "spun" in rows[ids["pier_spun"]].flags
    library = {ids[n] for n in ("library_first", "library_second", "library_whole")}
    assert len({rows[i].cluster_id for i in library}) == 1
    assert rows[ids["library_whole"]].is_canonical
    assert rows[ids["otters"]].is_canonical and rows[ids["otters"]].cluster_id not in {
        rows[i].cluster_id for i in pier | library}
    types = [e["type"] for e in world.follower.events]
    assert "canonical_changed" in types and "clusters_merged" in types and "canonical_status" in types


def test_mirror_equals_the_canonical_set_after_every_stage(world: World) -> None:
    stages = dict((name, (mirror, truth)) for name, mirror, truth in world.snapshots)
    for name, (mirror, truth) in stages.items():
        assert mirror == truth, f"after stage {name!r}: mirror {sorted(mirror)} != store {sorted(truth)}"
    ids = world.ids
    # the canonical moved from the scraped copy to the original
    assert ids["pier_scraped"] in stages["scraped first"][0]
    assert ids["pier_original"] in stages["original arrives"][0]
    assert ids["pier_scraped"] not in stages["original arrives"][0]
    # two clusters, one canonical each, then one
    first, second = ids["library_first"], ids["library_second"]
    before = world.clusters["two halves"]
    assert before[first] != before[second], "the two parts must start in two clusters for the merge to be tested"
    assert {first, second} <= stages["two halves"][0]
    assert not {first, second} & stages["whole links them"][0]
    assert ids["library_whole"] in stages["whole links them"][0]


def test_a_new_follower_and_a_resumed_one_agree_after_a_restart(world: World) -> None:
    """Cursors are durable: a fresh follower from the start, and one resumed with a cursor issued by another server
    process (the module's) against a new app instance, both end with the store's canonical set."""
    truth = canonical_ids(world.store)
    half = world.follower.events[len(world.follower.events) // 2]
    with serve_in_thread(create_app(world.store, world.settings)) as other, \
            httpx.Client(base_url=other, timeout=10) as client:
        fresh = Follower(client)
        fresh.poll(limit=1000)
        assert fresh.canonical == truth
        resumed = Follower(client, cursor=half["cursor"])
        resumed.canonical = mirror_from_events(e for e in world.follower.events if e["id"] <= half["id"])
        resumed.poll(limit=2)
        assert resumed.canonical == truth
        r = client.get("/changes", params={"cursor": fresh.cursor})
        assert r.json()["events"] == [] and r.json()["next_cursor"] == fresh.cursor
    assert decode_cursor(fresh.cursor, "e") == world.follower.events[-1]["id"]


# --- endpoints ------------------------------------------------------------------------------------------------------
def problem(r: httpx.Response, status: int) -> dict[str, Any]:
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    body = r.json()
    assert body["status"] == status and body["title"] and body["detail"] and body["type"].startswith("http")
    return body


def all_pages(client: httpx.Client, **params: Any) -> list[dict[str, Any]]:
    items, cursor = [], None
    while True:
        r = client.get("/articles", params=params | ({"cursor": cursor} if cursor else {}))
        assert r.status_code == 200, r.text
        items.extend(r.json()["items"])
        cursor = r.json()["next_cursor"]
        if cursor is None:
            return items


def test_articles_are_canonical_by_default_and_paginate_with_opaque_cursors(world: World) -> None:
    truth = canonical_ids(world.store)
    with world.client() as c:
        listed = all_pages(c, limit=2)
        assert [a["id"] for a in listed] == sorted(truth)
        assert all(a["canonical"] for a in listed)
        everything = all_pages(c, limit=3, canonical="any")
        assert sorted(a["id"] for a in everything) == sorted(world.ids.values())
        copies = all_pages(c, canonical="false")
        assert {a["id"] for a in copies} == set(world.ids.values()) - truth
        first = c.get("/articles", params={"limit": 1}).json()
        assert first["next_cursor"] and "=" not in first["next_cursor"] and str(first["items"][0]["id"]) not in (
            first["next_cursor"])


def test_article_filters(world: World) -> None:
    ids = world.ids
    with world.client() as c:
        spun = all_pages(c, flag="spun", canonical="any")
        assert ids["pier_spun"] in {a["id"] for a in spun} and all("spun" in a["flags"] for a in spun)
        scraped = all_pages(c, flag="scraped", canonical="any")
        assert ids["pier_scraped"] in {a["id"] for a in scraped}
        assert {a["id"] for a in all_pages(c, site="Coast Wire", canonical="any")} == {ids["pier_republished"]}
        by_title = {a["id"] for a in all_pages(c, q="eleven BRANCH", canonical="any")}
        assert by_title == {ids["library_first"], ids["library_whole"]}
        assert all_pages(c, q="100%_literal", canonical="any") == []
        since = {a["id"] for a in all_pages(c, published_since="2025-06-14", canonical="any")}
        assert since == {ids["pier_spun"], ids["pier_republished"]}
        assert len(all_pages(c, ingested_since="2000-01-01T00:00:00Z", canonical="any")) == len(ids)
        assert all_pages(c, ingested_since="2999-01-01T00:00:00+02:00", canonical="any") == []


def test_article_and_cluster_views(world: World) -> None:
    ids = world.ids
    with world.client() as c:
        art = c.get(f"/articles/{ids['pier_scraped']}").json()
        assert art["text"] and "scraped" in art["flags"] and art["evidence"]["scraped"]
        assert art["cluster"]["canonical_id"] == ids["pier_original"]
        assert set(art["cluster"]["member_ids"]) >= {ids["pier_original"], ids["pier_scraped"]}
        cluster = c.get(f"/clusters/{art['cluster_id']}").json()
        members = {m["id"]: m for m in cluster["members"]}
        assert members[ids["pier_original"]]["canonical"] and members[ids["pier_original"]]["similarity"] == 1.0
        spun = members[ids["pier_spun"]]
        assert spun["flags"] == ["spun"] and 0 < spun["similarity"] < 1 and spun["evidence"]["spun"]
        moves = [e for e in cluster["history"] if e["type"] == "canonical_changed"]
        assert moves[-1]["data"]["new"] == ids["pier_original"]
        assert any(e["data"].get("old") == ids["pier_scraped"] for e in moves)
        whole = c.get(f"/articles/{ids['library_whole']}").json()
        merged = c.get(f"/clusters/{whole['cluster_id']}").json()
        assert any(e["type"] == "clusters_merged" for e in merged["history"])
        gone = [e for e in merged["history"] if e["type"] == "clusters_merged"][0]["data"]["merged"][0]
        absorbed = c.get(f"/clusters/{gone}").json()
        assert absorbed["merged_into"] == merged["id"] and absorbed["members"] == []


def test_errors_are_problem_documents(world: World) -> None:
    with world.client() as c:
        problem(c.get("/articles/999999"), 404)
        problem(c.get("/clusters/999999"), 404)
        problem(c.get("/runs/999999"), 404)
        problem(c.get("/nowhere"), 404)
        problem(c.get("/articles/abc"), 422)
        problem(c.get("/articles", params={"limit": 0}), 422)
        problem(c.get("/articles", params={"flag": "plagiarised"}), 422)
        problem(c.get("/articles", params={"published_since": "yesterday"}), 422)
        body = problem(c.get("/articles", params={"cursor": "not-a-cursor!"}), 422)
        assert body["errors"][0]["loc"] == ["query", "cursor"]
        events_cursor = c.get("/changes", params={"limit": 1}).json()["next_cursor"]
        problem(c.get("/articles", params={"cursor": events_cursor}), 422)  # a cursor of another listing
        problem(c.get("/changes", params={"cursor": "ZTotMQ"}), 422)  # "e:-1"
        problem(c.post("/articles"), 405)


def test_runs_and_sources_are_visible(world: World) -> None:
    with world.client() as c:
        runs = c.get("/runs", params={"limit": 100}).json()["items"]
        assert len(runs) == sum(len(names) for _, names in STAGES)
        assert runs[0]["id"] > runs[-1]["id"] and not runs[0]["running"]
        assert runs[0]["pages"] == 1 and runs[0]["new_articles"] == 1 and runs[0]["errors"] == 0
        detail = c.get(f"/runs/{runs[0]['id']}").json()
        assert detail["error_list"] == [] or all(e["message"] for e in detail["error_list"])
        page = c.get("/runs", params={"limit": 2}).json()
        nxt = c.get("/runs", params={"limit": 2, "cursor": page["next_cursor"]}).json()
        assert [r["id"] for r in nxt["items"]] == [r["id"] for r in runs[2:4]]
        sources = {s["spec"]: s for s in c.get("/sources").json()}
        otters = sources[str(world.paths["otters"])]
        assert otters["pages"] == 1 and otters["new_articles"] == 1 and otters["last_run_at"]


def test_metrics(world: World) -> None:
    with world.client() as c:
        c.get("/articles")
        text = c.get("/metrics").text
    source = str(world.paths["otters"]).replace("\\", "\\\\")
    assert f'reprint_pages_fetched_total{{source="{source}"}} 1.0' in text
    assert f'reprint_pages_extracted_total{{source="{source}"}} 1.0' in text
    assert f"reprint_articles {float(len(world.ids))}" in text
    assert 'reprint_flagged_articles{flag="spun"} 1.0' in text
    assert "reprint_canonical_changes_total" in text and "reprint_clusters " in text
    assert 'reprint_api_request_seconds_count{method="GET",route="/articles",status="200"}' in text


def test_tokens_guard_reads_and_admin(world: World) -> None:
    closed = Settings(database_url=world.store.url, api_token="read-secret", admin_token="admin-secret")
    with serve_in_thread(create_app(world.store, closed)) as url, httpx.Client(base_url=url) as c:
        r = c.get("/articles")
        problem(r, 401)
        assert r.headers["www-authenticate"].startswith("Bearer")
        problem(c.get("/articles", headers={"Authorization": "Bearer wrong"}), 401)
        assert c.get("/articles", headers={"Authorization": "Bearer read-secret"}).status_code == 200
        assert c.get("/openapi.json").status_code == 200
        admin = {"Authorization": "Bearer admin-secret"}
        problem(c.get("/admin/dead-letters"), 401)
        problem(c.get("/admin/dead-letters", headers={"Authorization": "Bearer read-secret"}), 401)
        no_broker = problem(c.get("/admin/dead-letters", headers=admin), 503)
        assert "broker" in no_broker["detail"]
        problem(c.post("/admin/sources/rerun", headers=admin, json={"source": "x"}), 503)
    open_reads = Settings(database_url=world.store.url)
    with serve_in_thread(create_app(world.store, open_reads)) as url, httpx.Client(base_url=url) as c:
        problem(c.get("/admin/dead-letters", headers=admin), 403)  # no admin token configured: admin is off
    fake = FakeAdmin()
    with serve_in_thread(create_app(world.store, closed, admin=fake)) as url, httpx.Client(base_url=url) as c:
        assert c.get("/admin/dead-letters", headers=admin).json()[0]["id"] == "d1"
        r = c.post("/admin/sources/rerun", headers=admin, json={"source": "feed.xml"})
        assert r.status_code == 202 and r.json()["task_id"] == "task-1" and fake.reruns == ["feed.xml"]
        problem(c.post("/admin/sources/rerun", headers=admin, json={"source": ""}), 422)
        assert c.post("/admin/dead-letters/replay", headers=admin, json={"ids": None}).json() == {"replayed": 1}
        assert c.get("/admin/dead-letters", headers=admin).json() == []


def test_export_since_a_feed_cursor(world: World) -> None:
    """``reprint export --since CURSOR``: the records of articles changed after a /changes cursor, and the next."""
    import io
    import json

    from pipeline.serve.export import export_since

    everything = io.StringIO()
    n, cursor = export_since(world.store, everything, None)
    assert n == len(world.ids) and cursor == world.follower.cursor
    recent = io.StringIO()
    n, again = export_since(world.store, recent, world.cursors["whole links them"])
    urls = {json.loads(line)["url"] for line in recent.getvalue().splitlines()}
    assert again == cursor and n == len(urls)
    names = {name for name, path in world.paths.items() if path.resolve().as_uri() in urls}
    assert {"pier_republished", "pier_spun"} <= names
    assert not names & {"otters", "library_first", "library_second", "library_whole"}
    record = json.loads(recent.getvalue().splitlines()[0])
    assert {"url", "cluster_id", "canonical", "flags", "evidence"} <= set(record)
    nothing = io.StringIO()
    assert export_since(world.store, nothing, cursor) == (0, cursor) and nothing.getvalue() == ""
