"""The web UI in a real Chromium (Debian's, driven by Playwright) against a real uvicorn on 127.0.0.1, over a
store filled by ingesting made-up news pages (tests/support/newsroom.py): the cluster list, a cluster with a spun
and a scraped copy (swaps and lost link texts marked), stored ``<script>`` shown and never run, forged POSTs
refused, sign-in, the review forms, the operations screen refreshing itself, and the pages without JavaScript.

The review forms are tested against a recording ``ReviewBackend`` (what each button sends), and for real against
the library's review store (``pipeline.ingest.reviews``): a copy made canonical shows on the page and on
``/changes``, and its undo puts the original back. A server without a review store says why and answers 503.
"""

from __future__ import annotations

import html
import re
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from pipeline.ingest.runner import run_ingest
from pipeline.serve.api import create_app, serve_in_thread
from pipeline.serve.queries import list_changes
from pipeline.serve.ui import mount_ui
from pipeline.serve.ui.auth import COOKIE
from pipeline.serve.ui.reviews import load_reviews
from pipeline.settings import Settings
from pipeline.store import Store
from tests.support.browser import Chromium, browser_problem, driver
from tests.support.db import under_ci
from tests.support.http import LoopbackServer
from tests.support.newsroom import ARRIVALS, TRAM_TITLE, XSS_TITLE, Newsroom, build_newsroom

ADMIN = "ui-browser-admin-token-4f9c2e"
TIMEOUT_MS = 10_000


@pytest.fixture(scope="module", autouse=True)
def _browser_available() -> None:
    problem = browser_problem()
    if problem:
        if under_ci():
            pytest.fail(f"the browser tests need Chromium and Playwright under CI: {problem}")
        pytest.skip(problem)


class Recorder:
    """A ``ReviewBackend`` that records what the forms ask for (the real review store is issue 12's)."""

    def __init__(self) -> None:
        self.calls: list[tuple[Any, ...]] = []
        self.reviews: list[dict[str, Any]] = []

    def apply(self, kind: str, urls: list[str], *, flag: str | None = None, on: bool | None = None, who: str,
              note: str | None) -> dict[str, Any]:
        self.calls.append(("apply", kind, list(urls), flag, on, who, note))
        if any(u.startswith("http://unknown.example") for u in urls):
            raise LookupError(f"no stored page at {urls[-1]}")
        review = {"id": len(self.reviews) + 1, "kind": kind, "urls": list(urls), "flag": flag, "on": on,
                  "who": who, "note": note, "at": "2025-06-20T10:00:00Z", "undone": False}
        self.reviews.append(review)
        return review

    def undo(self, review_id: int, *, who: str) -> dict[str, Any]:
        self.calls.append(("undo", review_id, who))
        review = self.reviews[review_id - 1]
        if review["undone"]:
            raise ValueError(f"review {review_id} is undone already")
        review["undone"] = True
        return review

    def list_reviews(self, *, url: str | None = None) -> list[dict[str, Any]]:
        return [r for r in self.reviews if url is None or url in r["urls"]]


@dataclass
class Servers:
    room: Newsroom
    base: str  # the app as `reprint serve` runs it (with the library's review store)
    review_base: str  # the UI alone over the same store, with a recording review backend
    recorder: Recorder
    unreviewed_base: str  # the app with no review store

    def cluster(self, name: str, member: str | None = None, base: str | None = None) -> str:
        path = f"{base or self.base}/ui/clusters/{self.room.clusters[name]}"
        return path + (f"?member={self.room.ids[member]}" if member else "")


@pytest.fixture(scope="module")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Servers]:
    tmp = tmp_path_factory.mktemp("ui-browser")
    url = f"sqlite:///{tmp / 'reprint.db'}"
    settings = Settings(database_url=url, admin_token=ADMIN)
    store = Store(url)
    try:
        room = build_newsroom(tmp, store, settings)
        recorder = Recorder()
        ui_only = FastAPI()
        mount_ui(ui_only, store, settings, reviews=recorder)
        without = create_app(store, settings, reviews_unavailable="operator reviews are not available on this "
                                                                    "server (no review store)")
        with serve_in_thread(create_app(store, settings)) as base, serve_in_thread(ui_only) as review_base, \
                serve_in_thread(without) as unreviewed_base:
            yield Servers(room, base, review_base, recorder, unreviewed_base)
    finally:
        store.close()


@pytest.fixture(scope="module")
def chromium() -> Iterator[Chromium]:
    with driver() as d:
        yield d


@pytest.fixture(scope="module")
def browser(chromium: Chromium) -> Iterator[Any]:
    with chromium.context(viewport={"width": 1280, "height": 900}) as ctx:
        ctx.set_default_timeout(TIMEOUT_MS)
        yield ctx


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    """A new tab with no cookies; dialogs (``alert``) are recorded and dismissed."""
    browser.clear_cookies()
    tab = browser.new_page()
    tab.dialogs = []
    tab.on("dialog", lambda d: (tab.dialogs.append(d.message), d.dismiss()))
    tab.console = []
    tab.on("console", lambda m: tab.console.append(m.text))
    try:
        yield tab
    finally:
        tab.close()


def in_thread(fn: Any, *args: Any, **kw: Any) -> None:
    """Run ``fn`` on another thread and wait: ingest runs its own event loop, and Playwright's sync API holds one
    on this thread."""
    failed: list[BaseException] = []

    def run() -> None:
        try:
            fn(*args, **kw)
        except BaseException as err:  # handed to the test's thread
            failed.append(err)

    worker = threading.Thread(target=run)
    worker.start()
    worker.join(60)
    if failed:
        raise failed[0]


def sign_in(page: Any, base: str, next_path: str = "/", token: str = ADMIN, name: str = "editor") -> None:
    page.goto(f"{base}/ui/login?next={next_path}")
    page.fill("#token", token)
    page.fill("#name", name)
    with page.expect_navigation():
        page.click("form.login button[type=submit]")


# --- reading ---------------------------------------------------------------------------------------------------------
def test_the_cluster_list_opens(servers: Servers, page: Any) -> None:
    page.goto(servers.base + "/")
    assert page.title() == "Clusters · reprint"
    rows = page.locator("table.clusters tbody tr")
    assert rows.count() == 2
    tram = rows.filter(has_text=TRAM_TITLE)
    assert tram.locator("td[data-label=Articles]").inner_text().startswith("3")
    assert tram.locator(".flag-spun").inner_text() == "spun 1"
    assert tram.locator(".flag-scraped").inner_text() == "scraped 1"
    page.select_option("#flag", "spun")  # the filter form, as a person uses it
    with page.expect_navigation():
        page.click("form.filters button[type=submit]")
    assert "flag=spun" in page.url
    assert page.locator("table.clusters tbody tr").count() == 1
    with page.expect_navigation():
        page.click(f"text={TRAM_TITLE}")
    assert page.locator("h1").inner_text() == TRAM_TITLE


def test_a_cluster_marks_the_spun_copys_swaps_and_the_scraped_copys_lost_link_texts(servers: Servers,
                                                                                      page: Any) -> None:
    room = servers.room
    page.goto(servers.cluster("tram_original"))
    members = page.locator("table.members tbody tr")
    assert members.count() == 3
    assert members.filter(has_text="Kelsford Post").locator(".flag-canonical").count() == 1
    for name in ("tram_original", "tram_scraped", "tram_spun"):  # links to the original URLs
        assert page.locator(f'table.members a[href="{room.url(name)}"]').count() == 1
    with page.expect_navigation():
        members.filter(has_text="Fresh Angle").locator("td[data-label=Member] a").click()
    assert f"member={room.ids['tram_spun']}" in page.url
    diff = page.locator("#diff .sbs")
    assert diff.is_visible()
    copy_swaps = diff.locator(".col").nth(1).locator("mark.swap")
    assert copy_swaps.count() >= 10
    abortive = copy_swaps.filter(has_text=re.compile(r"^abortive$")).first
    pair = abortive.get_attribute("data-pair")
    partner = diff.locator(".col").nth(0).locator(f'mark.swap[data-pair="{pair}"]')
    assert partner.inner_text() == "failed", "a swap is marked as a pair: the canonical's word and the copy's"
    assert page.locator("details.swaps").inner_text().count("→") >= 10
    assert "canonical changed" in page.locator("#history").inner_text()

    with page.expect_navigation():
        members.filter(has_text="Newsgrab").locator("td[data-label=Member] a").click()
    holes = page.locator("#diff .sbs .col").nth(1).locator("del.hole.lost-link")
    lost = {h.inner_text().removeprefix("LINK").removeprefix("link").strip() for h in holes.all()}
    assert lost >= {"regional transport grant", "children's hospital", "timetable of road closures",
                    "early autumn"}
    assert page.locator("#diff .sbs mark.orphan").count() >= 1
    canonical_side = page.locator("#diff .sbs .col").nth(0).locator("mark.lost-link")
    assert canonical_side.count() == holes.count(), "each lost link text is marked on the canonical too"


def test_a_narrow_screen_shows_the_diff_inline(servers: Servers, page: Any) -> None:
    page.set_viewport_size({"width": 375, "height": 800})
    page.goto(servers.cluster("tram_original", "tram_spun"))
    assert not page.locator("#diff .sbs").is_visible()
    inline = page.locator("#diff .inline-diff")
    assert inline.is_visible()
    pair = inline.locator("ins.swap").filter(has_text=re.compile(r"^abortive$")).first
    assert pair.evaluate("e => e.previousElementSibling.textContent") == "failed"
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= 375, f"the page scrolls sideways at 375 px ({width} px wide)"


def test_a_stored_script_shows_as_text_and_never_runs(servers: Servers, page: Any) -> None:
    for url in (servers.base + "/", servers.cluster("xss_original", "xss_copy")):
        page.goto(url)
        page.wait_for_load_state("load")
        assert page.evaluate("window.__reprintXss") is None
        assert page.locator("script").count() == 1, "htmx is the only script on the page"
        assert page.locator("img").count() == 0
    assert page.locator("h1").inner_text() == XSS_TITLE, "the title shows its <script> as text"
    assert "<script>window.__reprintXss = 1; alert('xss')</script>" in page.locator("#diff").inner_text()
    assert page.dialogs == []
    assert not [m for m in page.console if "Content Security Policy" in m], \
        "escaping, not the CSP, kept the script out"


def test_pages_work_without_javascript_and_from_the_keyboard(servers: Servers, chromium: Chromium) -> None:
    with chromium.context(viewport={"width": 1280, "height": 900}, java_script_enabled=False) as ctx:
        ctx.set_default_timeout(TIMEOUT_MS)
        page = ctx.new_page()
        page.goto(servers.cluster("tram_original"))
        page.keyboard.press("Tab")
        assert page.evaluate("document.activeElement.textContent") == "Skip to content"
        for _ in range(80):  # to the spun copy's link, by keyboard alone
            page.keyboard.press("Tab")
            focused = page.evaluate("[document.activeElement.tagName, document.activeElement.textContent]")
            if focused[0] == "A" and focused[1].startswith("Fresh Angle"):
                break
        else:
            pytest.fail("the spun copy's link cannot be reached with the Tab key")
        with page.expect_navigation():
            page.keyboard.press("Enter")
        assert f"member={servers.room.ids['tram_spun']}" in page.url
        assert page.locator("#diff .sbs mark.swap").count() >= 10
        page.goto(servers.base + "/ui/ops")
        assert page.locator('meta[http-equiv="refresh"]').count() == 1, "without JavaScript a meta refresh reloads"


# --- signing in, CSRF, reviews ---------------------------------------------------------------------------------------
def test_sign_in_sets_a_session_cookie_and_shows_what_an_admin_can_do(servers: Servers, page: Any) -> None:
    page.goto(servers.cluster("tram_original", "tram_spun", base=servers.unreviewed_base))
    assert page.locator("#review").count() == 0, "without signing in a page shows no actions"
    sign_in(page, servers.unreviewed_base, "/", token="not-the-token")
    assert "That token is not valid." in page.locator("main").inner_text()
    sign_in(page, servers.unreviewed_base, f"/ui/clusters/{servers.room.clusters['tram_original']}")
    cookie = next(c for c in page.context.cookies() if c["name"] == COOKIE)
    assert cookie["httpOnly"] and cookie["sameSite"] == "Strict" and ADMIN not in cookie["value"]
    assert page.evaluate("document.cookie") == "", "scripts cannot read the session"
    assert "Signed in as editor (admin)" in page.locator("header.top").inner_text()
    assert "Signed in." in page.locator(".notice").inner_text()
    # no review store on this server: the actions say why, and a POST answers 503 with the reason
    assert "Review actions are unavailable" in page.locator("#review").inner_text()
    assert page.locator("button", has_text="Make canonical").count() == 0
    csrf = page.locator("form[action='/ui/logout'] input[name=csrf]").get_attribute("value")
    r = page.context.request.post(servers.unreviewed_base + "/ui/review", form={
        "csrf": csrf, "kind": "canonical", "url": servers.room.url("tram_spun")})
    assert r.status == 503 and "operator reviews are not available" in html.unescape(r.text())
    with page.expect_navigation():
        page.click("text=Sign out")
    assert "Signed in as" not in page.locator("header.top").inner_text()


def test_a_post_without_the_csrf_token_is_refused(servers: Servers, page: Any,
                                                  http_server: LoopbackServer) -> None:
    recorder = servers.recorder
    before = len(recorder.calls)
    target = f"{servers.review_base}/ui/review"
    url = servers.room.url("tram_spun")
    # no session, no token
    r = httpx.post(target, data={"kind": "canonical", "url": url})
    assert r.status_code == 403
    sign_in(page, servers.review_base)
    session = next(c["value"] for c in page.context.cookies() if c["name"] == COOKIE)
    # the signed-in session's cookie, but no token or another session's token
    for form in ({"kind": "canonical", "url": url}, {"kind": "canonical", "url": url, "csrf": "forged"}):
        r = httpx.post(target, data=form, cookies={COOKIE: session})
        assert r.status_code == 403 and "CSRF token" in r.text
    # a page on another origin of the same site (the cookie goes along) and on another site (it does not)
    attack = (f'<form id="f" method="post" action="{target}"><input name="kind" value="canonical">'
              f'<input name="url" value="{html.escape(url)}"></form>'
              "<script>document.getElementById('f').submit()</script>").encode()
    http_server.route("/attack", attack)
    same_site, cross_site = http_server.url("/attack"), http_server.url("/attack").replace("127.0.0.1", "localhost")
    for origin, why in ((same_site, "CSRF token is missing"), (cross_site, "sent from another site")):
        with page.expect_navigation(url=target) as nav:
            page.goto(origin)
        assert nav.value.status == 403 and why in page.inner_text("main")
    assert len(recorder.calls) == before, "no forged request reached the review store"


def test_the_review_forms_call_the_review_interface(servers: Servers, page: Any) -> None:
    room, recorder = servers.room, servers.recorder
    start = len(recorder.calls)
    spun_url = room.url("tram_spun")
    page.goto(servers.cluster("tram_original", "tram_spun", base=servers.review_base))
    assert page.locator("#review form").count() == 0
    sign_in(page, servers.review_base, f"/ui/clusters/{room.clusters['tram_original']}?member={room.ids['tram_spun']}")
    review = page.locator("#review")
    page.fill("#note", "the original wording is this one, really")
    with page.expect_navigation():
        review.locator("button", has_text="Make canonical").click()
    assert recorder.calls[start] == ("apply", "canonical", [spun_url], None, None, "editor (web)",
                                     "the original wording is this one, really")
    assert page.locator(".notice").inner_text() == "Review #1 applied."
    assert "#review" in page.url
    with page.expect_navigation():
        page.locator("#review button", has_text="Remove flag “spun”").click()
    assert recorder.calls[-1] == ("apply", "flag", [spun_url], "spun", False, "editor (web)", None)
    page.fill("#other", room.url("xss_copy"))
    with page.expect_navigation():
        page.locator("#review form.merge button").click()
    assert recorder.calls[-1][:3] == ("apply", "merge", [spun_url, room.url("xss_copy")])
    rows = page.locator("#reviews tbody tr")
    assert rows.count() == 3
    with page.expect_navigation():
        page.locator("#reviews button", has_text="Undo #1").click()
    assert recorder.calls[-1] == ("undo", 1, "editor (web)")
    assert page.locator(".notice").inner_text() == "Review #1 undone."
    assert page.locator("#reviews tbody tr").first.locator("td[data-label=State]").inner_text() == "undone"
    # the review store's refusals come back as pages with its message
    page.fill("#other", "http://unknown.example/story")
    with page.expect_navigation() as nav:
        page.locator("#review form.merge button").click()
    assert nav.value.status == 404 and "no stored page at http://unknown.example/story" in page.inner_text("main")
    page.goto(f"{servers.review_base}/ui/reviews")
    assert page.locator("tbody tr").count() == 3


def test_making_a_copy_canonical_shows_on_the_page_and_on_changes(servers: Servers, page: Any) -> None:
    assert load_reviews(servers.room.store)[0] is not None, "the library's review store is found"
    room = servers.room
    cursor = list_changes(room.store, limit=100000)[1]
    sign_in(page, servers.base, f"/ui/clusters/{room.clusters['tram_original']}?member={room.ids['tram_spun']}")
    page.fill("#note", "the editor prefers this wording")
    with page.expect_navigation():
        page.locator("#review button", has_text="Make canonical").click()
    assert re.fullmatch(r"Review #\d+ applied\.", page.locator(".notice").inner_text())
    row = page.locator("table.members tbody tr").filter(has_text="Fresh Angle")
    assert row.locator(".flag-canonical").count() == 1
    original = page.locator("table.members tbody tr").filter(has_text=room.url("tram_original"))
    assert original.locator(".flag-canonical").count() == 0
    assert "the editor prefers this wording" in page.locator("#reviews").inner_text()
    events, cursor = list_changes(room.store, after=cursor)
    types = [e["type"] for e in events]
    assert types[0] == "review_applied" and events[0]["data"]["who"] == "editor (web)"
    assert any(e["type"] == "canonical_changed" and e["article_id"] == room.ids["tram_spun"] for e in events)
    # undone from the review list: the original is the canonical again, and /changes says so
    page.goto(f"{servers.base}/ui/reviews")
    with page.expect_navigation():
        page.locator("button", has_text="Undo #").first.click()
    assert page.locator("tbody tr").first.locator("td[data-label=State]").inner_text() == "undone"
    events, _ = list_changes(room.store, after=cursor)
    assert events[0]["type"] == "review_undone"
    assert any(e["type"] == "canonical_changed" and e["article_id"] == room.ids["tram_original"] for e in events)
    page.goto(servers.cluster("tram_original", "tram_spun"))
    original = page.locator("table.members tbody tr").filter(has_text=room.url("tram_original"))
    assert original.locator(".flag-canonical").count() == 1


# --- operations ------------------------------------------------------------------------------------------------------
def test_the_operations_screen_refreshes_itself(servers: Servers, page: Any) -> None:
    room = servers.room
    page.goto(servers.base + "/ui/ops")
    runs = page.locator("#ops table.runs tbody tr:not(.errors-row)")
    seen = runs.count()
    assert seen >= len(ARRIVALS)
    page.evaluate("window.__notReloaded = true")
    otters = str(room.paths["otters"])
    in_thread(room.ingest, "otters")  # a new run while the screen is open
    page.locator("#ops table.sources").filter(has_text=otters).wait_for(timeout=15_000)
    assert runs.count() == seen + 1
    assert page.evaluate("window.__notReloaded") is True, "refreshed in place (htmx), not reloaded"


def test_the_operations_screen_shows_run_errors(servers: Servers, page: Any, tmp_path: Path) -> None:
    missing = tmp_path / "gone.html"
    in_thread(run_ingest, [str(missing)], servers.room.store, servers.room.settings, progress=False)
    page.goto(servers.base + "/ui/ops")
    errors = page.locator("#ops ul.run-errors").first
    assert str(missing) in errors.inner_text()
