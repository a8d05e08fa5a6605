"""The living-article endpoints against a real uvicorn, on SQLite and PostgreSQL: ``GET /articles/{id}/versions``,
and the admin routes ``/admin/reviews`` (apply, list, undo), ``/admin/forget`` and ``/admin/tombstones``: admin
token required; an unknown URL or review is a 404 and an impossible request a 422 (problem+json), and neither
changes anything; a forgotten article is gone from every read."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from pipeline.ingest.runner import run_ingest
from pipeline.serve.api import create_app, serve_in_thread
from pipeline.settings import Settings
from pipeline.store import Store
from tests.support.world import STAGES, ingest_files, write_pages

ADMIN = "living-admin-token"


class Served:
    def __init__(self, base: str, store: Store, settings: Settings, paths: dict[str, Path]) -> None:
        self.base, self.store, self.settings, self.paths = base, store, settings, paths

    def url(self, name: str) -> str:
        return self.paths[name].resolve().as_uri()

    def id(self, name: str) -> int:
        return self.store.article_by_url(self.url(name))[0]  # type: ignore[index]

    def admin(self, method: str, path: str, **kw: Any) -> httpx.Response:
        return httpx.request(method, self.base + path, headers={"Authorization": f"Bearer {ADMIN}"}, timeout=20, **kw)

    def events(self) -> list[dict[str, Any]]:
        return httpx.get(self.base + "/changes", params={"limit": 1000}, timeout=10).json()["events"]


@pytest.fixture
def served(db_url: str, tmp_path: Path) -> Iterator[Served]:
    store = Store(db_url)
    settings = Settings(database_url=db_url, admin_token=ADMIN)
    paths = write_pages(tmp_path)
    ingest_files(store, settings, [paths[n] for _, names in STAGES for n in names])
    try:
        with serve_in_thread(create_app(store, settings)) as base:
            yield Served(base, store, settings, paths)
    finally:
        store.close()


def test_versions_of_an_updated_article(served: Served) -> None:
    otters = served.id("otters")
    first = httpx.get(f"{served.base}/articles/{otters}/versions").json()
    assert first["versions"] == [] and first["current"]["version"] == 1 and first["url"] == served.url("otters")
    path = served.paths["otters"]
    path.write_bytes(path.read_bytes().replace(b"canal basin", b"canal basin and the old mill race"))
    assert run_ingest([str(path)], served.store, served.settings, progress=False).updated == 1
    body = httpx.get(f"{served.base}/articles/{otters}/versions").json()
    (old,) = body["versions"]
    assert old["version"] == 1 and old["reason"] == "update" and old["text_length"] == first["current"][
        "text_length"] and old["text_hash"] == first["current"]["text_hash"]
    assert body["current"]["version"] == 2 and body["current"]["text_hash"] != old["text_hash"]
    article = httpx.get(f"{served.base}/articles/{otters}").json()
    assert "mill race" in article["text"], "the API serves the current version"
    missing = httpx.get(f"{served.base}/articles/999999/versions")
    assert missing.status_code == 404 and missing.headers["content-type"] == "application/problem+json"


def test_admin_reviews(served: Served) -> None:
    spun, original = served.url("pier_spun"), served.url("pier_original")
    anonymous = httpx.post(served.base + "/admin/reviews", json={"kind": "canonical", "url": spun})
    assert anonymous.status_code == 401
    made = served.admin("POST", "/admin/reviews", json={"kind": "canonical", "url": spun, "note": "api",
                                                        "who": "desk"})
    assert made.status_code == 201, made.text
    review = made.json()
    assert review["kind"] == "canonical" and review["who"] == "desk" and review["article_ids"] == [served.id(
        "pier_spun")] and review["changes"] > 0
    cluster = httpx.get(f"{served.base}/clusters/{review['cluster_id']}").json()
    assert cluster["canonical_id"] == served.id("pier_spun")
    assert any(e["type"] == "review_applied" and e["data"]["id"] == review["id"] for e in served.events())
    listed = served.admin("GET", "/admin/reviews", params={"url": spun}).json()
    assert [r["id"] for r in listed] == [review["id"]]
    undone = served.admin("POST", f"/admin/reviews/{review['id']}/undo", json={"who": "desk"})
    assert undone.status_code == 200 and undone.json()["undone"] and undone.json()["undone_by"] == "desk"
    assert httpx.get(f"{served.base}/clusters/{review['cluster_id']}").json()["canonical_id"] == served.id(
        "pier_original")
    # refusals: nothing changes
    before = (served.events(), served.admin("GET", "/admin/reviews").json())
    for body, status in (({"kind": "canonical", "url": "https://nowhere.example/x"}, 404),
                         ({"kind": "merge", "urls": [original, "https://nowhere.example/x"]}, 404),
                         ({"kind": "merge", "urls": [original, original]}, 422),
                         ({"kind": "merge", "urls": [original]}, 422),
                         ({"kind": "flag", "url": original, "flag": "spun"}, 422),
                         ({"kind": "flag", "url": original, "flag": "sponsored", "on": True}, 422),
                         ({"kind": "vote", "url": original}, 422)):
        r = served.admin("POST", "/admin/reviews", json=body)
        assert r.status_code == status, (body, r.text)
        assert r.headers["content-type"] == "application/problem+json" and r.json()["detail"]
    assert served.admin("POST", f"/admin/reviews/{review['id']}/undo").status_code == 422
    assert served.admin("POST", "/admin/reviews/424242/undo").status_code == 404
    assert (served.events(), served.admin("GET", "/admin/reviews").json()) == before


def test_admin_forget(served: Served) -> None:
    whole = served.id("library_whole")
    assert httpx.post(served.base + "/admin/forget", json={"url": served.url("library_whole")}).status_code == 401
    r = served.admin("POST", "/admin/forget", json={"url": served.url("library_whole"), "reason": "takedown"})
    assert r.status_code == 200 and r.json()["forgotten"] and r.json()["article_id"] == whole
    assert httpx.get(f"{served.base}/articles/{whole}").status_code == 404
    assert whole not in {a["id"] for a in httpx.get(f"{served.base}/articles", params={"canonical": "any",
                                                                                        "limit": 200}).json()["items"]}
    removed = [e for e in served.events() if e["type"] == "article_removed"]
    assert [(e["article_id"], e["data"]["reason"]) for e in removed] == [(whole, "takedown")]
    again = served.admin("POST", "/admin/forget", json={"url": served.url("library_whole")})
    assert again.status_code == 200 and again.json()["already"] and not again.json()["forgotten"]
    missing = served.admin("POST", "/admin/forget", json={"url": "https://nowhere.example/x"})
    assert missing.status_code == 404
    stones = served.admin("GET", "/admin/tombstones").json()
    assert [(s["url"], s["reason"]) for s in stones] == [(served.url("library_whole"), "takedown")]


def test_admin_routes_are_off_without_an_admin_token(db_url: str, tmp_path: Path) -> None:
    store = Store(db_url)
    try:
        with serve_in_thread(create_app(store, Settings(database_url=db_url))) as base:
            r = httpx.post(base + "/admin/reviews", json={"kind": "canonical", "url": "x"},
                           headers={"Authorization": "Bearer anything"})
            assert r.status_code == 403 and "REPRINT_ADMIN_TOKEN" in r.json()["detail"]
    finally:
        store.close()


def test_a_review_and_its_undo_show_in_the_clusters_history_at_once(served: Served) -> None:
    """The web UI keeps a cluster's history per (cluster, updated_at): a review, and its undo even when it changes
    no decision, must move updated_at so the page shows them."""
    from pipeline.serve.ui import data

    original = served.url("pier_original")
    cluster = served.store.article_by_url(original)[1]  # type: ignore[index]
    header = data.cluster_header(served.store, cluster)
    assert header is not None
    before = data.timeline(served.store, cluster, header["state"])
    made = served.admin("POST", "/admin/reviews", json={"kind": "canonical", "url": original}).json()
    assert made["changes"] == 0, "the original is the canonical already: the review changes no decision"
    header = data.cluster_header(served.store, cluster)
    shown = data.timeline(served.store, cluster, header["state"])  # type: ignore[index]
    assert [e["type"] for e in shown["events"]][len(before["events"]):] == ["review_applied"]
    served.admin("POST", f"/admin/reviews/{made['id']}/undo")
    header = data.cluster_header(served.store, cluster)
    shown = data.timeline(served.store, cluster, header["state"])  # type: ignore[index]
    assert [e["type"] for e in shown["events"]][len(before["events"]):] == ["review_applied", "review_undone"]
