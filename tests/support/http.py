"""A real HTTP server on 127.0.0.1 for tests: per-path canned responses and misbehaviours.

Usage::

    from tests.support.http import http_server, loopback_settings  # http_server is a pytest fixture

    def test_something(http_server):
        http_server.route("/a", b"<html>...</html>")                       # static, text/html
        http_server.route("/feed", rss, content_type="application/rss+xml")
        http_server.redirect("/old", "/a")
        http_server.handle("/flaky", sequence(Response(503), Response(200, b"ok")))
        http_server.raw("/slow", drip(b"x" * 100, interval=1.0))           # write the socket yourself
        settings = loopback_settings()   # allow-lists 127.0.0.1/32, short timeouts, fast retries
        ... Fetcher(settings) ... http_server.url("/a") ... http_server.hits("/a")

Unregistered paths (``/robots.txt`` included) answer 404. Every request is recorded in ``requests``.
The server binds 127.0.0.1 on an ephemeral port and never anything else.
"""

from __future__ import annotations

import gzip
import sys
import threading
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from functools import lru_cache
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from pipeline.settings import Settings


@dataclass
class Response:
    """A canned answer. ``Content-Length`` is added; ``content_type`` unless headers set one."""

    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    content_type: str = "text/html; charset=utf-8"


@dataclass(frozen=True)
class Request:
    """What the server saw: method, path with query, lower-cased headers."""

    method: str
    path: str
    headers: dict[str, str]


ResponseFn = Callable[[Request], Response]
RawFn = Callable[[BaseHTTPRequestHandler, threading.Event], None]


class LoopbackServer:
    """Threaded ``http.server`` on 127.0.0.1:<ephemeral>; a context manager."""

    def __init__(self) -> None:
        self._routes: dict[str, tuple[str, Any]] = {}
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self.requests: list[Request] = []
        self._httpd = _Server(("127.0.0.1", 0), _make_handler(self))
        self.port: int = self._httpd.server_address[1]
        self.base_url = f"http://127.0.0.1:{self.port}"
        self._thread: threading.Thread | None = None

    # lifecycle
    def start(self) -> LoopbackServer:
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05})
        self._thread.daemon = True
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()
        self._httpd.shutdown()
        self._httpd.server_close()

    def __enter__(self) -> LoopbackServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # registration
    def url(self, path: str = "/") -> str:
        return self.base_url + path

    def route(
        self,
        path: str,
        body: bytes | str = b"",
        *,
        status: int = 200,
        content_type: str = "text/html; charset=utf-8",
        headers: dict[str, str] | None = None,
    ) -> None:
        """Answer ``path`` (exact, query included if given) with a fixed response."""
        data = body.encode() if isinstance(body, str) else body
        response = Response(status, data, dict(headers or {}), content_type)
        self.handle(path, lambda _request: response)

    def handle(self, path: str, fn: ResponseFn) -> None:
        """Answer ``path`` with whatever ``fn(request)`` returns (may keep state between calls)."""
        with self._lock:
            self._routes[path] = ("fn", fn)

    def raw(self, path: str, fn: RawFn) -> None:
        """Hand the socket to ``fn(handler, stopping)``: for slow, endless or broken responses."""
        with self._lock:
            self._routes[path] = ("raw", fn)

    def redirect(self, path: str, location: str, status: int = 302) -> None:
        self.route(path, b"", status=status, headers={"Location": location})

    # inspection
    def hits(self, path: str) -> int:
        with self._lock:
            return sum(1 for r in self.requests if r.path == path)

    def _lookup(self, path: str) -> tuple[str, Any] | None:
        with self._lock:
            return self._routes.get(path) or self._routes.get(path.split("?", 1)[0])

    def _record(self, request: Request) -> None:
        with self._lock:
            self.requests.append(request)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    allow_reuse_address = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Clients hanging up mid-response is what the misbehaviour tests are about: stay quiet."""
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


def _make_handler(server: LoopbackServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - quiet test output
            pass

        def _serve(self) -> None:
            request = Request(self.command, self.path, {k.lower(): v for k, v in self.headers.items()})
            server._record(request)
            found = server._lookup(self.path)
            try:
                if found is None:
                    self._send(Response(404, b"not found", content_type="text/plain"))
                elif found[0] == "raw":
                    self.close_connection = True
                    found[1](self, server._stopping)
                else:
                    self._send(found[1](request))
            except (BrokenPipeError, ConnectionResetError, ConnectionAbortedError):
                self.close_connection = True

        def _send(self, response: Response) -> None:
            self.send_response(response.status)
            names = {k.lower() for k in response.headers}
            if "content-type" not in names and response.content_type:
                self.send_header("Content-Type", response.content_type)
            for key, value in response.headers.items():
                self.send_header(key, value)
            if "content-length" not in names:
                self.send_header("Content-Length", str(len(response.body)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(response.body)

        do_GET = do_HEAD = do_POST = _serve

    return Handler


# ------------------------------------------------------------------------------- behaviours


def sequence(*responses: Response) -> ResponseFn:
    """Answer with each response in turn, then repeat the last one (e.g. 429, then 200)."""
    remaining = list(responses)
    lock = threading.Lock()

    def fn(_request: Request) -> Response:
        with lock:
            return remaining.pop(0) if len(remaining) > 1 else remaining[0]

    return fn


def _head(handler: BaseHTTPRequestHandler, headers: dict[str, str]) -> None:
    handler.send_response(200)
    for key, value in headers.items():
        handler.send_header(key, value)
    handler.send_header("Connection", "close")
    handler.end_headers()
    handler.wfile.flush()


def drip(body: bytes, interval: float = 1.0, content_type: str = "text/html") -> RawFn:
    """Send ``body`` one byte every ``interval`` seconds (a correct Content-Length, just slow)."""

    def fn(handler: BaseHTTPRequestHandler, stopping: threading.Event) -> None:
        _head(handler, {"Content-Type": content_type, "Content-Length": str(len(body))})
        for i in range(len(body)):
            if stopping.wait(interval):
                return
            handler.wfile.write(body[i : i + 1])
            handler.wfile.flush()

    return fn


def endless(chunk: bytes = b"<p>" + b"x" * 8189 + b"</p>", content_type: str = "text/html") -> RawFn:
    """Stream ``chunk`` forever without a Content-Length (until the client hangs up)."""

    def fn(handler: BaseHTTPRequestHandler, stopping: threading.Event) -> None:
        _head(handler, {"Content-Type": content_type})
        while not stopping.is_set():
            handler.wfile.write(chunk)

    return fn


@lru_cache(maxsize=4)
def gzip_bomb_bytes(decompressed_size: int) -> bytes:
    """A gzip member of ``decompressed_size`` zero bytes (about 1000:1)."""
    packer = zlib.compressobj(9, zlib.DEFLATED, 31)
    block = b"\0" * (1 << 20)
    parts = []
    left = decompressed_size
    while left > 0:
        parts.append(packer.compress(block[: min(left, len(block))]))
        left -= len(block)
    parts.append(packer.flush())
    return b"".join(parts)


def gzip_bomb(decompressed_size: int = 64 << 20, content_type: str = "text/html") -> ResponseFn:
    """A response whose Content-Encoding: gzip body inflates to ``decompressed_size`` bytes."""
    body = gzip_bomb_bytes(decompressed_size)
    response = Response(200, body, {"Content-Encoding": "gzip"}, content_type)
    return lambda _request: response


def gzipped(data: bytes) -> bytes:
    return gzip.compress(data, mtime=0)


# ---------------------------------------------------------------------------------- helpers


def loopback_settings(**overrides: Any) -> Settings:
    """Settings for talking to this server: 127.0.0.1/32 allow-listed, short timeouts, fast retries.

    Every fetch/discover field is set explicitly, so REPRINT_* environment variables do not leak in.
    """
    values: dict[str, Any] = {
        "fetch_allow_networks": ["127.0.0.1/32"],
        "fetch_deadline": 5.0,
        "fetch_connect_timeout": 2.0,
        "fetch_read_timeout": 2.0,
        "fetch_max_bytes": 10 * 1024 * 1024,
        "fetch_max_redirects": 5,
        "fetch_concurrency": 16,
        "fetch_per_host": 2,
        "fetch_max_retries": 2,
        "fetch_backoff": 0.01,
        "fetch_max_retry_after": 2.0,
        "fetch_robots": True,
        "fetch_robots_ttl": 3600.0,
        "fetch_robots_timeout": 2.0,
        "fetch_host_delay": 0.0,
        "fetch_max_crawl_delay": 10.0,
        "discover_max_sitemap_depth": 3,
        "discover_max_urls": 100_000,
    }
    values.update(overrides)
    return Settings(**values)


@pytest.fixture
def http_server() -> Iterator[LoopbackServer]:
    """A started LoopbackServer, stopped after the test."""
    with LoopbackServer() as server:
        yield server
