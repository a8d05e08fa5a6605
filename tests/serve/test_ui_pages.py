"""The web UI's pages over HTTP (a real uvicorn on 127.0.0.1), on SQLite and PostgreSQL: what each screen lists,
its filters and pagination, the cluster page and its diff, escaping, headers, the read-token gate, and that the
JSON API is unchanged. What a browser does with them is tests/serve/test_ui_browser.py."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date

import httpx
import pytest

from pipeline.serve.api import create_app, serve_in_thread
from pipeline.serve.ui import data
from pipeline.settings import Settings
from pipeline.store import Store
from tests.support.db import temporary_database
from tests.support.newsroom import ARRIVALS, TRAM_TITLE, Newsroom, build_newsroom

ADMIN = "ui-pages-admin-token-0123456789"


@dataclass
class Site:
    base: str
    room: Newsroom

    def get(self, path: str, **kw: object) -> httpx.Response:
        return httpx.get(self.base + path, timeout=10, **kw)  # type: ignore[arg-type]


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def site(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    tmp = tmp_path_factory.mktemp(f"ui-pages-{request.param}")
    for url in temporary_database(request.param, tmp):
        settings = Settings(database_url=url, admin_token=ADMIN)
        store = Store(url)
        try:
            room = build_newsroom(tmp, store, settings, ARRIVALS + ["otters"])
            with serve_in_thread(create_app(store, settings)) as base:
                yield Site(base, room)
        finally:
            store.close()


def cluster_links(page: str) -> list[int]:
    """The cluster ids a cluster-list page links to, in order."""
    return [int(m) for m in re.findall(r'href="/ui/clusters/(\d+)"', page)]


def test_the_list_shows_clusters_with_copies_and_their_flags(site: Site) -> None:
    room = site.room
    r = site.get("/")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    tram, xss, otters = room.clusters["tram_original"], room.clusters["xss_original"], room.clusters["otters"]
    assert set(cluster_links(r.text)) == {tram, xss}, "an article without copies is not listed by default"
    assert TRAM_TITLE in r.text and "Kelsford Post" in r.text
    row = r.text[r.text.index(f'/ui/clusters/{tram}"'):]
    row = row[:row.index("</tr>")]
    assert ">3<" in row and "spun 1" in row and "scraped 1" in row
    assert otters in cluster_links(site.get("/?singles=1").text)


@pytest.mark.parametrize(("query", "expect"), [
    ("flag=spun", ["tram"]), ("flag=scraped", ["tram"]), ("site=Quay+Wire", ["xss"]), ("site=Fresh+Angle", ["tram"]),
    ("q=TRAM+LINE", ["tram"]), ("q=festival", ["xss"]), ("q=nothing+like+this", []),
    ("since=2025-06-01", ["tram"]), ("until=2025-05-31", ["xss"]), ("since=2025-05-02&until=2025-05-02", ["xss"]),
    ("sort=biggest", ["tram", "xss"]), ("sort=flagged", ["tram", "xss"]), ("sort=newest", ["xss", "tram"]),
])
def test_the_list_filters_and_orders(site: Site, query: str, expect: list[str]) -> None:
    ids = {"tram": site.room.clusters["tram_original"], "xss": site.room.clusters["xss_original"]}
    r = site.get(f"/?{query}")
    assert r.status_code == 200
    assert cluster_links(r.text) == [ids[n] for n in expect]


def test_a_bad_filter_value_is_reported_not_an_error(site: Site) -> None:
    r = site.get("/?since=yesterday&page=x&flag=bogus&sort=sideways")
    assert r.status_code == 200
    assert "since: &#39;yesterday&#39; is not a date" in r.text
    assert len(cluster_links(r.text)) == 2


def test_the_list_paginates(site: Site) -> None:
    store = site.room.store
    first, more = data.list_clusters(store, data.ClusterQuery(sort="biggest", per_page=1))
    second, after = data.list_clusters(store, data.ClusterQuery(sort="biggest", per_page=1, page=2))
    assert more and not after
    assert [first[0]["id"], second[0]["id"]] == [site.room.clusters["tram_original"],
                                                 site.room.clusters["xss_original"]]


def test_members_paginate_in_id_order(site: Site) -> None:
    room = site.room
    cluster = room.clusters["tram_original"]
    seen, after = [], 0
    while True:
        page, after = data.list_members(room.store, cluster, after=after, limit=1)
        seen += [m["id"] for m in page]
        if after is None:
            break
    assert seen == sorted(room.ids[n] for n in ("tram_scraped", "tram_original", "tram_spun"))
    flagged, _ = data.list_members(room.store, cluster, flag="spun")
    assert [m["id"] for m in flagged] == [room.ids["tram_spun"]]
    assert data.member_before(room.store, cluster, seen[2], 1) == seen[0]
    assert data.member_before(room.store, cluster, seen[1], 1) is None


def test_the_cluster_page_shows_members_history_and_the_diff(site: Site) -> None:
    room = site.room
    cluster, spun = room.clusters["tram_original"], room.ids["tram_spun"]
    r = site.get(f"/ui/clusters/{cluster}?member={spun}")
    assert r.status_code == 200
    for name in ("tram_original", "tram_scraped", "tram_spun"):
        assert f'href="{room.url(name)}"' in r.text, "every member links to its original URL"
    assert re.search(r"Relation</dt><dd>spun<", r.text)
    pairs = re.findall(r'<mark class="swap" data-pair="(\d+)" id="([cm])\d+"', r.text)
    on_canonical = {n for n, side in pairs if side == "c"}
    on_copy = {n for n, side in pairs if side == "m"}
    assert len(on_copy) >= 10 and on_canonical == on_copy, "each swap is marked on both sides with one number"
    assert "canonical changed" in r.text, "the canonical moved from the scraped copy to the original"


def test_the_default_member_is_a_flagged_copy(site: Site) -> None:
    room = site.room
    r = site.get(f"/ui/clusters/{room.clusters['tram_original']}")
    chosen = re.search(r'<tr class="selected" aria-current="true">\s*<td data-label="Member">'
                       r'<a href="[^"]*member=(\d+)', r.text)
    assert chosen and int(chosen.group(1)) in {room.ids["tram_scraped"], room.ids["tram_spun"]}


def test_the_scraped_copy_shows_its_lost_link_texts(site: Site) -> None:
    room = site.room
    r = site.get(f"/ui/clusters/{room.clusters['tram_original']}?member={room.ids['tram_scraped']}")
    holes = re.findall(r'<del class="hole lost-link" title="[^"]*"><span class="tag">link</span> ([^<]*)</del>',
                       r.text)
    assert set(holes) >= {"regional transport grant", "children&#39;s hospital", "timetable of road closures",
                          "early autumn"}
    assert 'class="orphan"' in r.text, "the copy's 'report in .' is orphaned punctuation"
    assert "none (the canonical has “Ada Brennan”)" in r.text, "the byline the scraper dropped"


def test_stored_markup_is_escaped(site: Site) -> None:
    room = site.room
    for path in ("/", f"/ui/clusters/{room.clusters['xss_original']}?member={room.ids['xss_copy']}"):
        body = site.get(path).text
        assert "<script>window" not in body and "<img src=\"x\"" not in body
        assert "&lt;script&gt;window.__reprintXss = 1;" in body


def test_unknown_clusters_and_members(site: Site) -> None:
    room = site.room
    r = site.get("/ui/clusters/999999")
    assert r.status_code == 404 and "There is no cluster 999999" in r.text
    r = site.get(f"/ui/clusters/{room.clusters['tram_original']}?member={room.ids['xss_copy']}",
                 follow_redirects=False)
    assert r.status_code == 303, "a member of another cluster is followed to it"
    assert r.headers["location"].startswith(f"/ui/clusters/{room.clusters['xss_copy']}?member={room.ids['xss_copy']}")
    assert site.get(f"/ui/clusters/{room.clusters['tram_original']}?member=987654").status_code == 404


def test_operations_screen_shows_the_status_data(site: Site) -> None:
    r = site.get("/ui/ops")
    assert r.status_code == 200
    assert 'hx-trigger="every 5s"' in r.text and '<meta http-equiv="refresh"' in r.text
    assert "no broker is configured" in r.text
    for name in ARRIVALS:  # every source and its run
        assert str(site.room.paths[name]) in r.text
    fragment = site.get("/ui/ops", headers={"HX-Request": "true"})
    assert fragment.text.lstrip().startswith('<div id="ops"'), "htmx gets the refreshed part alone"


def test_pages_carry_a_content_security_policy(site: Site) -> None:
    for path in ("/", "/ui/ops", "/ui/login", f"/ui/clusters/{site.room.clusters['tram_original']}"):
        r = site.get(path)
        assert "script-src 'self'" in r.headers["content-security-policy"]
        assert r.headers["x-frame-options"] == "DENY"


def test_the_json_api_is_unchanged(site: Site) -> None:
    r = site.get("/articles")
    assert r.status_code == 200 and r.headers["content-type"] == "application/json"
    paths = site.get("/openapi.json").json()["paths"]
    assert not [p for p in paths if p == "/" or p.startswith("/ui")], "the UI is not part of the API's schema"
    r = site.get("/clusters/999999")
    assert r.status_code == 404 and r.headers["content-type"] == "application/problem+json"
    assert site.get("/ui/static/ui.css").status_code == 200


def test_a_read_token_puts_the_pages_behind_sign_in(site: Site) -> None:
    """With REPRINT_API_TOKEN set, the pages need a session too; the read token signs in, read-only."""
    room = site.room
    settings = Settings(database_url=room.settings.database_url, api_token="read-token-abc", admin_token=ADMIN)
    with serve_in_thread(create_app(room.store, settings)) as base, httpx.Client(base_url=base, timeout=10) as c:
        r = c.get("/?sort=biggest", follow_redirects=False)
        assert r.status_code == 303 and r.headers["location"] == "/ui/login?next=%2F%3Fsort%3Dbiggest"
        r = c.get("/ui/ops", headers={"HX-Request": "true"}, follow_redirects=False)
        assert r.status_code == 204 and r.headers["hx-redirect"].startswith("/ui/login?next="), \
            "a refresh by htmx is sent to the login page as a whole, not swapped into the screen"
        form = c.get("/ui/login")
        csrf = re.search(r'name="csrf" value="([^"]+)"', form.text).group(1)
        r = c.post("/ui/login", data={"csrf": csrf, "token": "read-token-abc", "next": "/"}, follow_redirects=False)
        assert r.status_code == 303
        page = c.get("/")
        assert page.status_code == 200 and TRAM_TITLE in page.text and "(read)" in page.text
        cluster = c.get(f"/ui/clusters/{room.clusters['tram_original']}")
        assert "Make canonical" not in cluster.text and "Review actions" not in cluster.text


def test_dates_in_the_cluster_query(site: Site) -> None:
    store = site.room.store
    rows, _ = data.list_clusters(store, data.ClusterQuery(since=date(2025, 6, 10), until=date(2025, 6, 10)))
    assert [r["id"] for r in rows] == [site.room.clusters["tram_original"]]
