"""Fetcher against real HTTP servers on 127.0.0.1: the contract, caps, SSRF guard, retries, politeness."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
import zlib
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from pipeline.errors import (
    BlockedAddress,
    DeadlineExceeded,
    FetchError,
    HTTPStatusError,
    ResponseTooLarge,
    RobotsDisallowed,
    TooManyRedirects,
    UnsupportedContentType,
)
from pipeline.fetch.client import AddressPolicy, Fetcher, parse_retry_after
from pipeline.settings import Settings
from tests.support.http import (
    LoopbackServer,
    Request,
    Response,
    drip,
    endless,
    gzip_bomb,
    gzipped,
    loopback_settings,
    sequence,
)

PAGE = b"<html><head><title>t</title></head><body><p>caf\xe9</p></body></html>"  # latin-1 on purpose


@pytest.fixture
def server() -> Iterator[LoopbackServer]:
    with LoopbackServer() as running:
        yield running


def fetch(settings: Settings, url: str, **kwargs: str) -> object:
    async def go() -> object:
        async with Fetcher(settings) as fetcher:
            return await fetcher.fetch(url, **kwargs)

    return asyncio.run(go())


def fetch_error(settings: Settings, url: str) -> FetchError:
    with pytest.raises(FetchError) as caught:
        fetch(settings, url)
    return caught.value


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# ------------------------------------------------------------------------------------ the contract


def test_fetch_returns_bytes_and_lowercased_headers(server: LoopbackServer) -> None:
    server.route("/a", PAGE, content_type="text/html; charset=ISO-8859-1", headers={"X-Thing": "1"})
    page = fetch(loopback_settings(), server.url("/a"))
    assert page.status == 200
    assert page.body == PAGE  # charset not decoded here
    assert page.headers["content-type"] == "text/html; charset=ISO-8859-1"
    assert page.headers["x-thing"] == "1"
    assert all(key == key.lower() for key in page.headers)
    assert page.url == page.final_url == server.url("/a")
    assert page.fetched_at is not None and page.fetched_at.tzinfo is not None
    sent = [r for r in server.requests if r.path == "/a"][0]
    assert sent.headers["user-agent"] == Settings().user_agent


def test_redirects_followed_and_final_url_kept(server: LoopbackServer) -> None:
    server.route("/final", PAGE)
    server.redirect("/one", "/two", status=301)
    server.redirect("/two", server.url("/final"), status=307)
    page = fetch(loopback_settings(), server.url("/one"))
    assert page.url == server.url("/one")
    assert page.final_url == server.url("/final")
    assert page.body == PAGE


def test_redirect_limit(server: LoopbackServer) -> None:
    server.redirect("/loop", "/loop")
    error = fetch_error(loopback_settings(fetch_max_redirects=3), server.url("/loop"))
    assert isinstance(error, TooManyRedirects)
    assert server.hits("/loop") == 4


def test_404_is_http_status_error_without_retry(server: LoopbackServer) -> None:
    error = fetch_error(loopback_settings(), server.url("/missing"))
    assert isinstance(error, HTTPStatusError) and error.status == 404
    assert error.url == server.url("/missing")
    assert server.hits("/missing") == 1


def test_5xx_retried_then_reported(server: LoopbackServer) -> None:
    server.route("/broken", b"oops", status=503)
    error = fetch_error(loopback_settings(fetch_max_retries=2), server.url("/broken"))
    assert isinstance(error, HTTPStatusError) and error.status == 503
    assert server.hits("/broken") == 3


def test_5xx_then_success(server: LoopbackServer) -> None:
    server.handle("/flaky", sequence(Response(500), Response(502), Response(200, PAGE)))
    page = fetch(loopback_settings(fetch_max_retries=2), server.url("/flaky"))
    assert page.body == PAGE and server.hits("/flaky") == 3


def test_429_retry_after_is_waited_for(server: LoopbackServer) -> None:
    server.handle("/busy", sequence(Response(429, headers={"Retry-After": "1"}), Response(200, PAGE)))
    started = time.monotonic()
    page = fetch(loopback_settings(), server.url("/busy"))
    assert page.body == PAGE
    assert time.monotonic() - started >= 0.95


def test_retry_after_is_capped(server: LoopbackServer) -> None:
    server.handle("/busy", sequence(Response(429, headers={"Retry-After": "3600"}), Response(200, PAGE)))
    started = time.monotonic()
    fetch(loopback_settings(fetch_max_retry_after=0.2), server.url("/busy"))
    assert time.monotonic() - started < 2


def test_connect_error_retried_then_reported() -> None:
    port = free_port()
    started = time.monotonic()
    error = fetch_error(loopback_settings(fetch_max_retries=2, fetch_robots=False), f"http://127.0.0.1:{port}/")
    assert "cannot connect" in error.message
    assert time.monotonic() - started < 3


def test_conditional_get(server: LoopbackServer) -> None:
    def answer(request: Request) -> Response:
        if request.headers.get("if-none-match") == '"v1"':
            return Response(304, headers={"ETag": '"v1"'})
        return Response(200, PAGE, {"ETag": '"v1"', "Last-Modified": "Mon, 23 Nov 2026 10:00:00 GMT"})

    server.handle("/c", answer)
    first = fetch(loopback_settings(), server.url("/c"))
    assert first.status == 200 and first.headers["etag"] == '"v1"'
    again = fetch(loopback_settings(), server.url("/c"), etag='"v1"', last_modified=first.headers["last-modified"])
    assert again.status == 304 and again.body == b""
    sent = [r for r in server.requests if r.path == "/c"][-1]
    assert sent.headers["if-modified-since"] == "Mon, 23 Nov 2026 10:00:00 GMT"


def test_content_encoding_undone(server: LoopbackServer) -> None:
    server.route("/z", gzipped(PAGE), headers={"Content-Encoding": "gzip"})
    page = fetch(loopback_settings(), server.url("/z"))
    assert page.body == PAGE
    assert "content-encoding" not in page.headers and "content-length" not in page.headers


def test_unsupported_content_type(server: LoopbackServer) -> None:
    server.route("/img.png", b"\x89PNG....", content_type="image/png")
    assert isinstance(fetch_error(loopback_settings(), server.url("/img.png")), UnsupportedContentType)


# ------------------------------------------------------------------------------------------ caps


def test_endless_body_stops_at_size_cap(server: LoopbackServer) -> None:
    server.raw("/endless", endless())
    started = time.monotonic()
    error = fetch_error(loopback_settings(fetch_max_bytes=256 * 1024), server.url("/endless"))
    assert isinstance(error, ResponseTooLarge)
    assert time.monotonic() - started < 2


def test_declared_length_over_cap_refused_before_reading(server: LoopbackServer) -> None:
    server.route("/big", b"x" * 5000)
    assert isinstance(fetch_error(loopback_settings(fetch_max_bytes=1000), server.url("/big")), ResponseTooLarge)


def test_gzip_bomb_stops_at_decompressed_cap(server: LoopbackServer) -> None:
    server.handle("/bomb", gzip_bomb(64 << 20))
    started = time.monotonic()
    error = fetch_error(loopback_settings(fetch_max_bytes=1 << 20), server.url("/bomb"))
    assert isinstance(error, ResponseTooLarge) and "decompressed" in error.message
    assert time.monotonic() - started < 2


def test_slow_drip_hits_the_wall_clock_deadline(server: LoopbackServer) -> None:
    server.raw("/drip", drip(b"x" * 100, interval=0.3))  # never idle long enough for read timeout
    settings = loopback_settings(fetch_deadline=1.0, fetch_read_timeout=5.0)
    started = time.monotonic()
    error = fetch_error(settings, server.url("/drip"))
    assert isinstance(error, DeadlineExceeded)
    assert 0.9 <= time.monotonic() - started < 2.0


# ------------------------------------------------------------------------------------------- SSRF


def test_loopback_blocked_by_default(server: LoopbackServer) -> None:
    assert Settings.model_fields["fetch_allow_networks"].get_default(call_default_factory=True) == []
    server.route("/a", PAGE)
    error = fetch_error(loopback_settings(fetch_allow_networks=[]), server.url("/a"))
    assert isinstance(error, BlockedAddress) and "loopback" in error.message
    assert server.requests == []


def test_names_are_resolved_and_checked_before_connecting(server: LoopbackServer) -> None:
    server.route("/a", PAGE)
    error = fetch_error(loopback_settings(fetch_allow_networks=[]), f"http://localhost:{server.port}/a")
    assert isinstance(error, BlockedAddress) and "127.0.0.1" in error.message
    assert server.requests == []


def test_redirect_to_a_port_not_allow_listed_is_refused(server: LoopbackServer) -> None:
    with LoopbackServer() as other:
        other.route("/secret", b"internal")
        server.redirect("/go", other.url("/secret"))
        settings = loopback_settings(fetch_allow_networks=[f"127.0.0.1/32:{server.port}"])
        error = fetch_error(settings, server.url("/go"))
        assert isinstance(error, BlockedAddress)
        assert f"port {other.port}" in error.message and error.url == other.url("/secret")
        assert other.requests == []  # refused before connecting (not even robots.txt)


@pytest.mark.parametrize(
    "target",
    ["http://169.254.169.254/latest/meta-data/", "http://10.0.0.1/", "http://[::1]/", "file:///etc/passwd"],
)
def test_redirect_to_internal_targets_refused(server: LoopbackServer, target: str) -> None:
    server.redirect("/go", target)
    error = fetch_error(loopback_settings(), server.url("/go"))
    assert isinstance(error, BlockedAddress)


def test_address_policy() -> None:
    policy = AddressPolicy.from_settings(["10.1.0.0/16", "127.0.0.1/32:8080", "[::1]/128:80"])
    assert policy.refusal("93.184.216.34", 80) is None
    assert policy.refusal("10.1.2.3", 80) is None
    assert "private" in (policy.refusal("10.2.0.1", 80) or "")
    assert policy.refusal("127.0.0.1", 8080) is None
    assert "loopback" in (policy.refusal("127.0.0.1", 8081) or "")
    assert "link-local" in (policy.refusal("169.254.169.254", 80) or "")
    assert policy.refusal("::1", 80) is None
    assert "loopback" in (policy.refusal("::ffff:127.0.0.1", 80) or "")
    assert policy.refusal("0.0.0.0", 80)
    assert policy.refusal("224.0.0.1", 80)


def test_allow_networks_from_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REPRINT_FETCH_ALLOW_NETWORKS", "127.0.0.1/32, 10.0.0.0/8:8080")
    assert Settings().fetch_allow_networks == ["127.0.0.1/32", "10.0.0.0/8:8080"]
    monkeypatch.setenv("REPRINT_FETCH_ALLOW_NETWORKS", "not-a-network")
    with pytest.raises(ValueError):
        Settings()


def test_custom_transport_skips_address_guard() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/robots.txt":
            return httpx.Response(404)
        return httpx.Response(200, content=PAGE, headers={"content-type": "text/html"})

    async def go() -> object:
        async with Fetcher(Settings(), transport=httpx.MockTransport(handler)) as fetcher:
            return await fetcher.fetch("http://example.com/story")

    assert asyncio.run(go()).body == PAGE


# ------------------------------------------------------------------------------------- politeness


def test_robots_disallow_is_not_fetched(server: LoopbackServer) -> None:
    server.route("/robots.txt", "User-agent: *\nDisallow: /private\n", content_type="text/plain")
    server.route("/private/a", PAGE)
    server.route("/public", PAGE)

    async def go() -> None:
        async with Fetcher(loopback_settings()) as fetcher:
            with pytest.raises(RobotsDisallowed, match="robots.txt"):
                await fetcher.fetch(server.url("/private/a"))
            assert (await fetcher.fetch(server.url("/public"))).body == PAGE
            await fetcher.fetch(server.url("/public"))

    asyncio.run(go())
    assert server.hits("/private/a") == 0
    assert server.hits("/robots.txt") == 1  # cached per host


def test_robots_for_our_agent_only(server: LoopbackServer) -> None:
    server.route("/robots.txt", "User-agent: reprint\nDisallow: /\n\nUser-agent: *\nAllow: /\n")
    server.route("/a", PAGE)
    assert isinstance(fetch_error(loopback_settings(), server.url("/a")), RobotsDisallowed)
    assert fetch(loopback_settings(fetch_robots=False), server.url("/a")).body == PAGE


def test_robots_unreachable_means_disallow(server: LoopbackServer) -> None:
    server.route("/robots.txt", b"down", status=503)
    server.route("/a", PAGE)
    error = fetch_error(loopback_settings(), server.url("/a"))
    assert isinstance(error, RobotsDisallowed) and "unreachable" in error.message
    assert server.hits("/a") == 0


def test_robots_timeout_is_its_own(server: LoopbackServer) -> None:
    server.raw("/robots.txt", drip(b"User-agent: *\nAllow: /\n", interval=0.5, content_type="text/plain"))
    server.route("/a", PAGE)
    started = time.monotonic()
    error = fetch_error(loopback_settings(fetch_robots_timeout=0.5), server.url("/a"))
    assert isinstance(error, RobotsDisallowed)
    assert time.monotonic() - started < 1.5


def test_crawl_delay_is_honoured_and_capped(server: LoopbackServer) -> None:
    server.route("/robots.txt", "User-agent: *\nCrawl-delay: 60\n", content_type="text/plain")
    server.route("/a", PAGE)

    async def go() -> float:
        async with Fetcher(loopback_settings(fetch_max_crawl_delay=0.3)) as fetcher:
            started = time.monotonic()
            await asyncio.gather(*(fetcher.fetch(server.url("/a")) for _ in range(3)))
            return time.monotonic() - started

    elapsed = asyncio.run(go())
    assert 0.55 <= elapsed < 2.0  # three requests, 0.3 s apart, not 60 s


def _concurrency_probe(server: LoopbackServer, path: str, counter: dict[str, int], lock: threading.Lock) -> None:
    def answer(_request: Request) -> Response:
        with lock:
            counter["now"] += 1
            counter["max"] = max(counter["max"], counter["now"])
        time.sleep(0.15)
        with lock:
            counter["now"] -= 1
        return Response(200, PAGE)

    server.handle(path, answer)


def test_per_host_and_global_concurrency_caps(server: LoopbackServer) -> None:
    counter, lock = {"now": 0, "max": 0}, threading.Lock()
    for i in range(6):
        _concurrency_probe(server, f"/p{i}", counter, lock)

    async def go(settings: Settings) -> None:
        async with Fetcher(settings) as fetcher:
            await asyncio.gather(*(fetcher.fetch(server.url(f"/p{i}")) for i in range(6)))

    asyncio.run(go(loopback_settings(fetch_per_host=2, fetch_concurrency=10)))
    assert counter["max"] == 2
    counter["max"] = 0
    asyncio.run(go(loopback_settings(fetch_per_host=5, fetch_concurrency=1)))
    assert counter["max"] == 1


# ------------------------------------------------------------------------------------------ units


def test_parse_retry_after() -> None:
    now = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)
    assert parse_retry_after("120") == 120
    assert parse_retry_after((now + timedelta(seconds=30)).strftime("%a, %d %b %Y %H:%M:%S GMT"), now=now) == 30
    assert parse_retry_after("Mon, 01 Jan 2001 00:00:00 GMT", now=now) == 0
    assert parse_retry_after("soon") is None and parse_retry_after(None) is None


def test_fetch_outside_context_is_a_clear_error() -> None:
    with pytest.raises(RuntimeError, match="async with"):
        asyncio.run(Fetcher(Settings()).fetch("http://example.com/"))


@pytest.mark.parametrize(
    "url",
    ["http://[bad/", "http://ex\x00ample.com/", "https://xn--invalid-.com/", "http:///nohost", "ftp://a.example/"],
)
def test_bad_urls_are_fetch_errors(url: str) -> None:
    error = fetch_error(loopback_settings(fetch_max_retries=0), url)
    assert error.url == url


def test_unreachable_host_is_a_connect_error_not_a_robots_verdict() -> None:
    error = fetch_error(loopback_settings(fetch_max_retries=0), f"http://127.0.0.1:{free_port()}/story")
    assert not isinstance(error, RobotsDisallowed) and "cannot connect" in error.message
    assert error.url.endswith("/story")


@pytest.mark.parametrize("encoding", ["deflate", "deflate-raw", "gzip-members"])
def test_other_content_encodings(server: LoopbackServer, encoding: str) -> None:
    if encoding == "deflate":
        body, header = zlib.compress(PAGE), "deflate"
    elif encoding == "deflate-raw":
        packer = zlib.compressobj(6, zlib.DEFLATED, -15)
        body, header = packer.compress(PAGE) + packer.flush(), "deflate"
    else:
        body, header = gzipped(PAGE[:20]) + gzipped(PAGE[20:]), "gzip"
    server.route("/e", body, headers={"Content-Encoding": header})
    assert fetch(loopback_settings(), server.url("/e")).body == PAGE


def test_unknown_content_encoding(server: LoopbackServer) -> None:
    server.route("/br", b"\x0b\x02\x80hello\x03", headers={"Content-Encoding": "br"})
    assert "content-encoding" in fetch_error(loopback_settings(), server.url("/br")).message


def test_one_private_address_among_public_ones_refuses_the_host(monkeypatch: pytest.MonkeyPatch) -> None:
    """DNS answers mixing a public and a loopback address (a rebinding setup) are refused outright,
    and the address connected to is the one checked: the name is never resolved a second time."""
    lookups: list[str] = []

    async def fake_getaddrinfo(host: str, port: int, **_kw: object) -> list[tuple[object, ...]]:
        lookups.append(host)
        return [
            (socket.AF_INET, socket.SOCK_STREAM, 6, "", ("93.184.216.34", port)),
            (socket.AF_INET, socket.SOCK_STREAM, 6, "", ("127.0.0.1", port)),
        ]

    monkeypatch.setattr("pipeline.fetch.client.anyio.getaddrinfo", fake_getaddrinfo)
    error = fetch_error(loopback_settings(fetch_allow_networks=[], fetch_robots=False), "http://rebind.example/")
    assert isinstance(error, BlockedAddress) and "127.0.0.1" in error.message
    assert lookups == ["rebind.example"]


def test_resolver_override_is_checked_by_the_guard(server: LoopbackServer) -> None:
    """A resolver hook (how the benchmark serves 50 host names from 127.0.0.x) replaces DNS, and what
    it answers goes through the same address policy as DNS answers."""
    server.route("/a", PAGE)
    asked: list[str] = []

    async def resolver(host: str, port: int) -> list[str]:
        asked.append(host)
        return ["127.0.0.1"]

    async def go(settings: Settings) -> object:
        async with Fetcher(settings, resolver=resolver) as fetcher:
            return await fetcher.fetch(f"http://site.bench.test:{server.port}/a")

    page = asyncio.run(go(loopback_settings(fetch_robots=False)))
    assert page.status == 200 and page.body == PAGE and asked == ["site.bench.test"]
    asked.clear()
    with pytest.raises(BlockedAddress):
        asyncio.run(go(loopback_settings(fetch_robots=False, fetch_allow_networks=[])))
    assert asked == ["site.bench.test"] and server.hits("/a") == 1
