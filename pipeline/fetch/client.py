"""Fetch stage: URL → Page, with httpx, politely and defensively.

What a fetch guarantees:

- **SSRF guard.** Only http/https. Every host is resolved by reprint itself and the connection goes to
  the checked address (no second lookup an attacker could rebind), at every redirect hop: loopback,
  private, link-local (cloud metadata 169.254.169.254), multicast, reserved and other non-global
  addresses are refused with ``BlockedAddress`` unless allow-listed in ``fetch_allow_networks``
  (``REPRINT_FETCH_ALLOW_NETWORKS``: comma-separated ``CIDR`` or ``CIDR:PORT``, ``[v6CIDR]:PORT``).
- **Caps.** A wall-clock deadline over the whole redirect chain and body (``fetch_deadline``; queueing
  for politeness is not counted), inactivity timeouts, a body cap enforced on the *decompressed* bytes
  while streaming (a gzip bomb stops at ``fetch_max_bytes``), at most ``fetch_max_redirects`` hops,
  and only media types reprint can read (HTML, XML, feeds, JSON, text, gzip).
- **Retries** with exponential backoff and jitter on connect errors, 429 and 5xx, honouring
  ``Retry-After`` up to ``fetch_max_retry_after``; never on other 4xx.
- **Politeness.** robots.txt (protego, cached per host for ``fetch_robots_ttl``, fetched with its own
  ``fetch_robots_timeout``; disallowed → ``RobotsDisallowed``), a per-host concurrency cap, a per-host
  delay (``fetch_host_delay`` or the robots Crawl-delay, capped by ``fetch_max_crawl_delay``) and a
  global concurrency cap. The per-host rules live in a pluggable host gate (``pipeline.fetch.politeness``):
  in process by default, in Redis under Celery so they hold across all workers. The delay runs from
  the moment the previous request's headers were written (httpcore's ``trace`` hook tells the gate),
  so time spent between a slot's grant and the send (a connect, a busy scheduler) cannot shorten it.
- **Conditional GET.** ``etag`` / ``last_modified`` become If-None-Match / If-Modified-Since; a 304
  comes back as ``Page(status=304, body=b"")``.
- Bytes are **not** decoded to text here (extract does charsets); Content-Encoding *is* undone, and
  the Content-Encoding / Content-Length headers are dropped from ``Page.headers`` accordingly.

Proxies from the environment are ignored (``trust_env=False``): the guard has to see the real
destination. Deploy behind an egress proxy only if that proxy enforces the same policy.

Testing: loopback is blocked by default, so a test against a server on 127.0.0.1 needs
``Settings(fetch_allow_networks=["127.0.0.1/32"])`` (``tests.support.http.loopback_settings()`` builds
one with short timeouts). With an explicit ``transport=`` (e.g. ``httpx.MockTransport``) the transport
owns the connections, so the address guard is skipped (the scheme check and everything else stays).
"""

from __future__ import annotations

import asyncio
import email.utils
import ipaddress
import random
import socket
import ssl
import time
import zlib
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import urljoin, urlsplit

import anyio
import certifi
import httpcore
import httpx

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
from pipeline.fetch.politeness import HostGate, LocalHostGate, SlotHandle
from pipeline.fetch.robots import MAX_ROBOTS_BYTES, RobotsCache, RobotsRules, agent_token
from pipeline.records import Page
from pipeline.settings import Settings, get_settings
from pipeline.urls import host_key

REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
RETRY_STATUSES = frozenset({429})  # and every 5xx
ACCEPT = (
    "text/html,application/xhtml+xml,application/rss+xml,application/atom+xml,application/feed+json,"
    "application/xml;q=0.9,text/xml;q=0.9,application/json;q=0.8,text/plain;q=0.5,*/*;q=0.1"
)
# Media types reprint can use: pages, feeds, sitemaps (also gzipped), URL lists, robots.txt.
READABLE_TYPES = frozenset(
    {
        "application/xhtml+xml",
        "application/xml",
        "application/json",
        "application/gzip",
        "application/x-gzip",
        "application/octet-stream",
        "binary/octet-stream",
    }
)
_HOP_HEADERS = ("content-encoding", "content-length", "transfer-encoding")


# --------------------------------------------------------------------------------------------- SSRF


@dataclass(frozen=True, slots=True)
class AddressPolicy:
    """Which IP addresses may be connected to: global unicast, plus the allow-list."""

    allowed: tuple[tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, int | None], ...] = ()

    @classmethod
    def from_settings(cls, entries: Iterable[str]) -> AddressPolicy:
        parsed = []
        for entry in entries:
            network, port = entry, None
            if entry.startswith("["):
                network, _, rest = entry[1:].partition("]")
                port = int(rest[1:]) if rest.startswith(":") else None
            elif entry.count(":") == 1:
                network, _, port_text = entry.partition(":")
                port = int(port_text)
            parsed.append((ipaddress.ip_network(network, strict=False), port))
        return cls(tuple(parsed))

    def refusal(self, ip: str, port: int) -> str | None:
        """Why connecting to ``ip:port`` is refused, or None when it is fine."""
        try:
            addr = ipaddress.ip_address(ip.split("%", 1)[0])
        except ValueError:
            return f"{ip!r} is not an IP address"
        for network, allowed_port in self.allowed:
            if addr.version == network.version and addr in network and allowed_port in (None, port):
                return None
        if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
            addr = addr.ipv4_mapped
        if addr.is_loopback:
            kind = "loopback"
        elif addr.is_link_local:
            kind = "link-local (cloud metadata)"
        elif addr.is_multicast:
            kind = "multicast"
        elif addr.is_unspecified:
            kind = "unspecified"
        elif addr.is_private:
            kind = "private"
        elif not addr.is_global:
            kind = "reserved / non-global"
        else:
            return None
        return f"{kind} address {addr} port {port} is not in fetch_allow_networks"


Resolver = Callable[[str, int], Awaitable[list[str]]]
"""``(host, port) -> IP addresses``: replaces DNS for the guarded transport (benchmarks, split-horizon
setups). Its answers are checked by the SSRF guard exactly like DNS answers."""


class _GuardedBackend(httpcore.AsyncNetworkBackend):
    """Resolves the host itself, refuses blocked addresses, then connects to the checked IP."""

    def __init__(self, policy: AddressPolicy, resolver: Resolver | None = None) -> None:
        self._policy = policy
        self._resolver = resolver
        self._inner = httpcore.AnyIOBackend()

    async def _resolve(self, host: str, port: int) -> list[str]:
        if self._resolver is not None:
            return list(dict.fromkeys(await self._resolver(host, port)))
        infos = await anyio.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        return list(dict.fromkeys(str(info[4][0]) for info in infos))

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        try:
            with anyio.fail_after(timeout):
                addresses = await self._resolve(host, port)
        except TimeoutError as exc:
            raise httpcore.ConnectTimeout(f"resolving {host} timed out") from exc
        except (OSError, UnicodeError) as exc:  # UnicodeError: a host name IDNA refuses
            raise httpcore.ConnectError(f"cannot resolve {host}: {exc}") from exc
        for ip in addresses:  # one bad address refuses the host: no picking the good one by luck
            reason = self._policy.refusal(ip, port)
            if reason:
                raise BlockedAddress(f"refusing to connect to {host}: {reason}")
        last: Exception = httpcore.ConnectError(f"no address for {host}")
        for ip in addresses:
            try:
                return await self._inner.connect_tcp(ip, port, timeout, local_address, socket_options)
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                last = exc
        raise last

    async def connect_unix_socket(self, *args: object, **kwargs: object) -> httpcore.AsyncNetworkStream:
        raise BlockedAddress("unix sockets are not allowed")

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


class _GuardedTransport(httpx.AsyncHTTPTransport):
    """httpx's transport with the connection pool built on the guarded network backend."""

    def __init__(
        self, policy: AddressPolicy, *, max_connections: int, http2: bool = True, resolver: Resolver | None = None
    ) -> None:
        super().__init__(http2=http2, trust_env=False)
        # httpx has no public hook for the network backend; replacing its pool is the documented
        # httpcore way of passing one. tests/fetch/test_fetch.py fails loudly if this stops working.
        self._pool = httpcore.AsyncConnectionPool(
            ssl_context=ssl.create_default_context(cafile=certifi.where()),
            max_connections=max_connections,
            max_keepalive_connections=max_connections,
            keepalive_expiry=5.0,
            http1=True,
            http2=http2,
            network_backend=_GuardedBackend(policy, resolver),
        )


# ---------------------------------------------------------------------------------------- decoding


class _Decoder:
    """Undoes Content-Encoding incrementally; never produces more than ``room + 1`` bytes per call."""

    def __init__(self, encoding: str) -> None:
        self.encoding = encoding
        self._wbits = {"gzip": 31, "x-gzip": 31, "deflate": 15}.get(encoding)
        self._z = zlib.decompressobj(self._wbits) if self._wbits else None
        self._pending = b""
        self._started = False

    def feed(self, data: bytes, room: int) -> bytes:
        if self._z is None:
            return data
        self._pending += data
        out = bytearray()
        while self._pending and len(out) <= room:
            try:
                piece = self._z.decompress(self._pending, room + 1 - len(out))
            except zlib.error:
                if self.encoding == "deflate" and not self._started:  # raw deflate, no zlib header
                    self._wbits = -15
                    self._z = zlib.decompressobj(-15)
                    self._started = True
                    continue
                raise
            self._started = True
            out += piece
            if self._z.eof:  # a gzip stream may hold several members
                self._pending = self._z.unused_data
                self._z = zlib.decompressobj(self._wbits)
                if not self._pending.strip(b"\0"):
                    self._pending = b""
            else:
                self._pending = self._z.unconsumed_tail
                if not piece and not self._pending:
                    break
        return bytes(out)


def _decoders(content_encoding: str) -> list[_Decoder]:
    names = [part.strip().lower() for part in content_encoding.split(",") if part.strip()]
    decoders = []
    for name in reversed(names):  # encodings are listed in the order they were applied
        if name == "identity":
            continue
        if name not in ("gzip", "x-gzip", "deflate"):
            raise FetchError(f"unsupported content-encoding {name!r}")
        decoders.append(_Decoder(name))
    return decoders


def media_type(content_type: str) -> str:
    """``text/html`` of ``Text/HTML; charset=utf-8``."""
    return content_type.split(";", 1)[0].strip().lower()


def readable_type(content_type: str) -> bool:
    """Whether reprint can do anything with a response of this Content-Type (empty counts as yes)."""
    kind = media_type(content_type)
    if not kind or kind.startswith("text/") or kind in READABLE_TYPES:
        return True
    return kind.endswith(("+xml", "+json"))


# ----------------------------------------------------------------------------------------- fetcher


class _Retry(Exception):
    """Internal: this attempt failed in a way worth retrying; ``after`` is the server's wish."""

    def __init__(self, error: FetchError, after: float | None = None) -> None:
        super().__init__(str(error))
        self.error = error
        self.after = after


@dataclass
class _Budget:
    """What is left of the wall-clock deadline; time spent waiting for a slot is not charged."""

    remaining: float


def parse_retry_after(value: str | None, *, now: datetime | None = None) -> float | None:
    """Seconds to wait from a Retry-After header (delta-seconds or an HTTP date); None if absent/bad."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())


class Fetcher:
    """One httpx.AsyncClient plus the politeness state; use as ``async with Fetcher(settings) as f``."""

    def __init__(
        self,
        settings: Settings | None = None,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        gate: HostGate | None = None,
        resolver: Resolver | None = None,
    ) -> None:
        """``gate`` keeps the per-host caps and delays: in this process by default (``LocalHostGate``);
        under Celery a ``politeness.RedisHostGate`` so the limits hold across every worker.
        ``resolver`` replaces DNS (its addresses still pass the SSRF guard); ignored with ``transport``."""
        self.settings = settings or get_settings()
        self.gate: HostGate = gate or LocalHostGate()
        self._policy = AddressPolicy.from_settings(self.settings.fetch_allow_networks)
        self._transport = transport
        self._resolver = resolver
        self._guarded = transport is None
        self._client: httpx.AsyncClient | None = None
        self._global: asyncio.Semaphore | None = None
        self._robots = RobotsCache(self._fetch_robots, ttl=self.settings.fetch_robots_ttl)
        self._agent = agent_token(self.settings.user_agent)

    async def __aenter__(self) -> Fetcher:
        s = self.settings
        transport = self._transport or _GuardedTransport(
            self._policy, max_connections=max(s.fetch_concurrency * 2, 10), resolver=self._resolver
        )
        self._client = httpx.AsyncClient(
            transport=transport,
            follow_redirects=False,
            trust_env=False,
            timeout=httpx.Timeout(
                connect=s.fetch_connect_timeout,
                read=s.fetch_read_timeout,
                write=s.fetch_read_timeout,
                pool=None,
            ),
            headers={"user-agent": s.user_agent, "accept": ACCEPT, "accept-encoding": "gzip, deflate"},
        )
        self._global = asyncio.Semaphore(s.fetch_concurrency)
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    # ------------------------------------------------------------------ public

    async def fetch(self, url: str, *, etag: str | None = None, last_modified: str | None = None) -> Page:
        """GET ``url`` and return its Page (bytes undecoded, headers lower-cased).

        Raises FetchError subclasses: HTTPStatusError for 4xx/5xx after retries, BlockedAddress,
        RobotsDisallowed, DeadlineExceeded, ResponseTooLarge, TooManyRedirects, UnsupportedContentType.
        A 304 returns ``Page(status=304, body=b"")``.
        """
        if self._client is None:
            raise RuntimeError("use `async with Fetcher(...) as fetcher:` before fetching")
        headers: dict[str, str] = {}
        if etag:
            headers["if-none-match"] = etag
        if last_modified:
            headers["if-modified-since"] = last_modified
        attempt = 0
        while True:
            try:
                return await self._follow(url, headers)
            except _Retry as retry:
                if attempt >= self.settings.fetch_max_retries:
                    retry.error.retry_after = retry.after  # the server's wish, for a queue-level retry
                    raise retry.error from None
                if retry.after is not None:
                    delay = min(retry.after, self.settings.fetch_max_retry_after)
                else:
                    delay = self._backoff(attempt)
                attempt += 1
                await asyncio.sleep(delay)

    async def robots(self, url: str) -> RobotsRules:
        """The robots.txt rules of ``url``'s host (cached); discover reads its ``Sitemap:`` lines."""
        if self._client is None:
            raise RuntimeError("use `async with Fetcher(...) as fetcher:` before fetching")
        self._check_url(url)
        try:
            return await self._robots.rules(host_key(url))
        except _Retry as retry:
            raise retry.error from None

    # ------------------------------------------------------------------ internals

    def _backoff(self, attempt: int) -> float:
        base = self.settings.fetch_backoff * (2**attempt)
        return base / 2 + random.uniform(0, base / 2)  # "equal jitter": never 0, never in lockstep

    def _check_url(self, url: str) -> tuple[str, int]:
        """Scheme and literal-address checks that need no DNS; returns (host, port)."""
        try:
            parts = urlsplit(url)
            port = parts.port
            _ = httpx.URL(url).host  # what httpx would refuse later: control characters, bad IDNA labels
        except (ValueError, UnicodeError, httpx.InvalidURL) as exc:
            raise FetchError(f"invalid URL: {exc}", url=url) from None
        scheme = parts.scheme.lower()
        if scheme not in ("http", "https"):
            raise BlockedAddress(f"scheme {scheme or '(none)'!r} is not allowed, only http/https", url=url)
        host = parts.hostname
        if not host:
            raise FetchError("invalid URL: no host", url=url)
        if port is None:
            port = 443 if scheme == "https" else 80
        if self._guarded:
            try:
                ipaddress.ip_address(host.split("%", 1)[0])
            except ValueError:
                pass  # a name: resolved and checked when connecting
            else:
                reason = self._policy.refusal(host, port)
                if reason:
                    raise BlockedAddress(f"refusing to connect: {reason}", url=url)
        return host, port

    async def _follow(self, url: str, headers: dict[str, str]) -> Page:
        budget = _Budget(self.settings.fetch_deadline)
        current = url
        for _hop in range(self.settings.fetch_max_redirects + 1):
            self._check_url(current)
            crawl_delay = None
            if self.settings.fetch_robots and urlsplit(current).path != "/robots.txt":
                try:
                    rules = await self._robots.rules(host_key(current))
                except _Retry as retry:  # the host is unreachable: report it against this URL
                    raise _Retry(FetchError(retry.error.message, url=current)) from None
                if not rules.can_fetch(current, self._agent):
                    why = "disallowed by robots.txt" if rules.parser is not None else rules.reason
                    raise RobotsDisallowed(f"{why} for user agent {self._agent!r}", url=current)
                crawl_delay = rules.crawl_delay(self._agent)
            status, resp_headers, body = await self._exchange(current, headers, budget, crawl_delay)
            if status in REDIRECT_STATUSES:
                location = resp_headers.get("location", "").strip()
                if not location:
                    raise HTTPStatusError(f"HTTP {status} without a Location", url=current, status=status)
                current = urljoin(current, location)
                continue
            return Page(
                url=url,
                body=body,
                status=status,
                headers=resp_headers,
                fetched_at=datetime.now(UTC),
                final_url=current,
            )
        raise TooManyRedirects(f"more than {self.settings.fetch_max_redirects} redirects", url=url)

    @asynccontextmanager
    async def _slot(self, url: str, crawl_delay: float | None) -> AsyncIterator[SlotHandle]:
        """Per-host slot from the gate (with the host delay), then a global slot; yields the gate's
        handle, to be told when the request is sent (``_sent_hook``)."""
        assert self._global is not None
        capped = min(crawl_delay or 0.0, self.settings.fetch_max_crawl_delay)
        delay = max(self.settings.fetch_host_delay, capped)
        gate_slot = self.gate.slot(host_key(url), delay=delay, limit=self.settings.fetch_per_host)
        async with gate_slot as handle, self._global:
            yield handle

    async def _exchange(
        self, url: str, headers: dict[str, str], budget: _Budget, crawl_delay: float | None
    ) -> tuple[int, dict[str, str], bytes]:
        """One request/response under the deadline; body only for 2xx. Maps every httpx error."""
        assert self._client is not None
        async with self._slot(url, crawl_delay) as handle:
            started = time.monotonic()
            try:
                if budget.remaining <= 0:
                    raise TimeoutError
                async with asyncio.timeout(budget.remaining):
                    return await self._request(url, headers, handle)
            except TimeoutError:
                raise DeadlineExceeded(
                    f"no complete response within the {self.settings.fetch_deadline:g}s deadline", url=url
                ) from None
            except BlockedAddress as exc:
                raise BlockedAddress(exc.message, url=url) from None
            except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
                raise _Retry(FetchError(f"cannot connect: {exc or type(exc).__name__}", url=url)) from None
            except httpx.TimeoutException as exc:
                raise FetchError(f"timed out: {type(exc).__name__}", url=url) from None
            except (httpx.HTTPError, httpx.InvalidURL, UnicodeError, zlib.error) as exc:
                raise FetchError(f"{type(exc).__name__}: {exc}", url=url) from None
            finally:
                budget.remaining -= time.monotonic() - started

    async def _request(
        self, url: str, headers: dict[str, str], handle: SlotHandle
    ) -> tuple[int, dict[str, str], bytes]:
        assert self._client is not None
        request = self._client.build_request("GET", url, headers=headers, extensions=_sent_hook(handle))
        response = await self._client.send(request, stream=True)
        try:
            status = response.status_code
            resp_headers = {key.lower(): value for key, value in response.headers.items()}
            if status in REDIRECT_STATUSES or status == 304 or 100 <= status < 200 or status == 204:
                return status, _strip_hop(resp_headers), b""
            if status >= 400 or 300 <= status < 400:
                message = f"HTTP {status} {response.reason_phrase}".strip()
                error = HTTPStatusError(message, url=url, status=status)
                if status in RETRY_STATUSES or status >= 500:
                    raise _Retry(error, parse_retry_after(resp_headers.get("retry-after")))
                raise error
            content_type = resp_headers.get("content-type", "")
            if not readable_type(content_type):
                kind = media_type(content_type)
                raise UnsupportedContentType(f"unsupported content-type {kind!r}", url=url)
            body = await self._read_body(response, resp_headers, url, self.settings.fetch_max_bytes)
            return status, _strip_hop(resp_headers), body
        finally:
            await response.aclose()

    async def _read_body(
        self, response: httpx.Response, headers: dict[str, str], url: str, cap: int, *, truncate: bool = False
    ) -> bytes:
        """Stream the body, undoing Content-Encoding as it comes, stopping at ``cap`` decoded bytes
        (an error, or with ``truncate`` the first ``cap`` bytes)."""
        decoders = _decoders(headers.get("content-encoding", ""))
        declared = headers.get("content-length", "")
        if not truncate and not decoders and declared.isdigit() and int(declared) > cap:
            raise ResponseTooLarge(f"Content-Length {declared} is over the {cap}-byte cap", url=url)
        out = bytearray()
        async for raw in _raw_chunks(response):
            data = raw
            for decoder in decoders:
                data = decoder.feed(data, cap - len(out))
            out += data
            if len(out) > cap:
                if truncate:
                    return bytes(out[:cap])
                what = "decompressed body" if decoders else "body"
                raise ResponseTooLarge(f"{what} is over the {cap}-byte cap", url=url)
        return bytes(out)

    async def _fetch_robots(self, url: str) -> tuple[int, bytes]:
        """GET a robots.txt with its own timeout; (0, b"") on any failure (meaning: unreachable)."""
        assert self._client is not None and self._global is not None
        current = url
        budget = _Budget(self.settings.fetch_robots_timeout)
        try:
            for _hop in range(6):  # RFC 9309: follow at least five redirects
                self._check_url(current)
                # Under the host gate too, one slot per hop (robots.txt is a request to the host like any
                # other); the wait for the slot is outside the robots timeout, which is for the answers.
                async with self._slot(current, None) as handle:
                    if budget.remaining <= 0:
                        raise TimeoutError
                    started = time.monotonic()
                    try:
                        async with asyncio.timeout(budget.remaining):
                            request = self._client.build_request("GET", current, extensions=_sent_hook(handle))
                            response = await self._client.send(request, stream=True)
                            try:
                                location = response.headers.get("location")
                                if response.status_code in REDIRECT_STATUSES and location:
                                    current = urljoin(current, location.strip())
                                    continue
                                if not 200 <= response.status_code < 300:
                                    return response.status_code, b""
                                headers = {k.lower(): v for k, v in response.headers.items()}
                                body = await self._read_body(
                                    response, headers, current, MAX_ROBOTS_BYTES, truncate=True
                                )
                                return response.status_code, body
                            finally:
                                await response.aclose()
                    finally:
                        budget.remaining -= time.monotonic() - started
            return 0, b""
        except BlockedAddress as exc:
            raise BlockedAddress(exc.message, url=exc.url or current) from None
        except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
            # The host itself cannot be reached: report that (and retry), not a robots verdict.
            raise _Retry(FetchError(f"cannot connect: {exc or type(exc).__name__}", url=url)) from None
        except (TimeoutError, httpx.HTTPError, httpx.InvalidURL, UnicodeError, FetchError, zlib.error):
            return 0, b""


def _sent_hook(handle: SlotHandle) -> dict[str, object]:
    """Request extensions that tell the gate the moment the request headers are on the wire.

    httpcore calls ``trace`` around each step of a request; ``http11.send_request_headers.complete``
    (``http2.`` for HTTP/2) comes right after the request was written to the socket. A transport
    without httpcore (``MockTransport``) never calls it; the gate then counts the release as the send.
    No hook when the gate does not need to know (no delay): httpcore then skips its tracing altogether.
    """
    if not handle.waiting_for_send:
        return {}

    async def trace(event: str, _info: dict[str, object]) -> None:
        if event.endswith("send_request_headers.complete"):
            await handle.sent()

    return {"trace": trace}


async def _raw_chunks(response: httpx.Response) -> AsyncIterator[bytes]:
    """The body as it came off the wire; a response built in memory (MockTransport) is one chunk."""
    try:
        async for chunk in response.aiter_raw():
            yield chunk
    except httpx.StreamConsumed:
        yield response.content


def _strip_hop(headers: dict[str, str]) -> dict[str, str]:
    """Drop the headers that describe the wire encoding, which ``Page.body`` no longer has."""
    return {k: v for k, v in headers.items() if k not in _HOP_HEADERS}
