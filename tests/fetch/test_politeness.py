"""Host gates: per-host delay and concurrency, in process and shared across processes through Redis.

The cross-process test is the one that matters under Celery: two separate processes, each with its own
Fetcher and its own Redis client, fetch from one host with a 1 s delay; the server must never see two
requests closer together than the delay (robots.txt included).

How "the server sees" is measured matters. A timestamp taken by the server's handler thread after it
woke up and parsed the request carries that thread's scheduling delay, which on a loaded machine is tens
of milliseconds and differs from request to request; a check against such timestamps needs a tolerance
and still flakes. ``WireServer`` instead reads the kernel's receive timestamp of each request's first
segment (``SO_TIMESTAMPNS``, CLOCK_REALTIME, taken when loopback hands the segment over, inside the
sender's write), so the gaps it reports are the gaps on the wire. The gate in turn spaces requests from
the moment each was *sent* (see ``pipeline.fetch.politeness``), so a client stalled between its slot's grant
and its send cannot shorten a gap either. What is left is clock granularity: the Redis gate computes in
the whole microseconds of ``TIME``, so the check allows ``CLOCK_GRANULARITY`` and nothing else.
"""

from __future__ import annotations

import asyncio
import contextlib
import multiprocessing
import os
import socket
import struct
import sys
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
import redis

from pipeline.fetch.client import Fetcher
from pipeline.fetch.politeness import LocalHostGate
from pipeline.shared.host_gate import RedisHostGate
from tests.support.http import loopback_settings
from tests.support.shared_redis import connect_or_skip, key_prefix

REDIS_HOST = os.environ.get("REPRINT_TEST_REDIS_HOST", "127.0.0.1")
REDIS_PORT = int(os.environ.get("REPRINT_TEST_REDIS_PORT", "6379"))
REDIS_URL = f"redis://{REDIS_HOST}:{REDIS_PORT}/0"
PAGE = b"<html><body><p>polite</p></body></html>"
PAGES_PER_WORKER = 10
SO_TIMESTAMPNS = 35  # Linux (asm-generic); SCM_TIMESTAMPNS has the same value
CLOCK_GRANULARITY = 2e-6  # Redis TIME is whole µs; the kernel stamp is ns, read back as a float

needs_linux = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="kernel receive timestamps: Linux")


@pytest.fixture(scope="module")
def redis_client() -> Iterator[redis.Redis]:
    client = connect_or_skip(REDIS_URL)
    yield client
    client.close()


@pytest.fixture
def prefix(redis_client: redis.Redis) -> Iterator[str]:
    with key_prefix(redis_client) as name:
        yield name


class WireServer:
    """A minimal HTTP/1.1 server on 127.0.0.1 that logs each request with the kernel's receive time.

    Keep-alive, GET only, fixed bodies per path (404 otherwise). ``arrivals`` holds (kernel receive
    time, path, handler time); the handler time (when this code got to run) is kept only to show, in a
    failure message, how much the scheduler would have skewed a user-space measurement.
    """

    def __init__(self) -> None:
        self.routes: dict[str, tuple[bytes, str]] = {}
        self.arrivals: list[tuple[float, str, float]] = []
        self.lock = threading.Lock()
        self.listener = socket.create_server(("127.0.0.1", 0))
        # Set on the listener, so accepted sockets inherit it and the kernel's timestamping stays
        # switched on for the server's whole life (switching it on is deferred to a kernel workqueue).
        self.listener.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
        self.base_url = f"http://127.0.0.1:{self.listener.getsockname()[1]}"
        self.conns: list[socket.socket] = []

    def serve(self, path: str, body: bytes, content_type: str = "text/html") -> None:
        self.routes[path] = (body, content_type)

    def __enter__(self) -> WireServer:
        self._wait_for_timestamps()
        threading.Thread(target=self._accept, daemon=True).start()
        return self

    def _wait_for_timestamps(self, timeout: float = 10.0) -> None:
        """Until the kernel stamps received segments (a loaded machine runs its workqueue late)."""
        deadline = time.monotonic() + timeout
        with socket.create_server(("127.0.0.1", 0)) as probe:
            probe.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
            while time.monotonic() < deadline:
                with socket.create_connection(probe.getsockname()) as client, probe.accept()[0] as conn:
                    client.sendall(b"x")
                    _data, ancillary, _flags, _addr = conn.recvmsg(16, socket.CMSG_SPACE(16))
                    if _stamp(ancillary):
                        return
                time.sleep(0.05)
        pytest.fail("the kernel does not timestamp received TCP segments (SO_TIMESTAMPNS)")

    def __exit__(self, *exc: object) -> None:
        self.listener.close()
        with self.lock:
            for conn in self.conns:
                with contextlib.suppress(OSError):
                    conn.shutdown(socket.SHUT_RDWR)
                conn.close()

    def gaps(self) -> list[float]:
        times = sorted(t for t, _, _ in self.arrivals)
        return [b - a for a, b in zip(times, times[1:], strict=False)]

    def handler_gaps(self) -> list[float]:
        times = sorted(t for _, _, t in self.arrivals)
        return [b - a for a, b in zip(times, times[1:], strict=False)]

    def paths(self) -> list[str]:
        return [path for _, path, _ in sorted(self.arrivals)]

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return
            conn.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
            with self.lock:
                self.conns.append(conn)
            threading.Thread(target=self._connection, args=(conn,), daemon=True).start()

    def _connection(self, conn: socket.socket) -> None:
        buffer, stamp = b"", 0.0
        with contextlib.suppress(OSError):
            while True:
                data, ancillary, _flags, _addr = conn.recvmsg(65536, socket.CMSG_SPACE(16))
                if not data:
                    return
                if not buffer:  # the first bytes of a request: their receive time is its arrival
                    stamp = _stamp(ancillary)
                buffer += data
                while b"\r\n\r\n" in buffer:
                    head, buffer = buffer.split(b"\r\n\r\n", 1)
                    path = head.split(b"\r\n", 1)[0].split(b" ")[1].decode()
                    with self.lock:
                        self.arrivals.append((stamp, path, time.time()))
                    body, kind = self.routes.get(path, (b"not found", "text/plain"))
                    status = "200 OK" if path in self.routes else "404 Not Found"
                    conn.sendall(f"HTTP/1.1 {status}\r\nContent-Type: {kind}\r\n"
                                 f"Content-Length: {len(body)}\r\n\r\n".encode() + body)


def _stamp(ancillary: list[tuple[int, int, bytes]]) -> float:
    """The SCM_TIMESTAMPNS receive time (CLOCK_REALTIME seconds) of a recvmsg, 0.0 if absent."""
    size = struct.calcsize("@ll")  # struct timespec: two C longs
    for level, kind, raw in ancillary:
        if level == socket.SOL_SOCKET and kind == SO_TIMESTAMPNS and len(raw) >= size:
            sec, nsec = struct.unpack("@ll", raw[:size])
            return sec + nsec / 1e9
    return 0.0


def _worker(base_url: str, prefix: str, name: str, start: Any, results: Any) -> None:
    """One 'worker machine': its own process, Fetcher, Redis client; fetches its pages concurrently."""
    settings = loopback_settings(fetch_host_delay=1.0, fetch_per_host=2, redis_url=REDIS_URL, redis_prefix=prefix)

    async def go() -> int:
        gate = RedisHostGate.from_settings(settings)
        try:
            async with Fetcher(settings, gate=gate) as fetcher:
                pages = await asyncio.gather(
                    *(fetcher.fetch(f"{base_url}/{name}/{i}") for i in range(PAGES_PER_WORKER))
                )
                return sum(1 for page in pages if page.status == 200)
        finally:
            await gate.aclose()

    start.wait(timeout=30)  # both processes begin together, so their requests compete for the host
    try:
        results.put((name, asyncio.run(go())))
    except Exception as exc:  # noqa: BLE001 - report to the parent instead of dying silently
        results.put((name, repr(exc)))


def spacing_report(server: WireServer) -> str:
    return (f"wire gaps {[round(g, 6) for g in sorted(server.gaps())[:3]]}, "
            f"handler-thread gaps {[round(g, 4) for g in sorted(server.handler_gaps())[:3]]}")


@needs_linux
def test_two_processes_share_the_host_delay_through_redis(redis_client: redis.Redis, prefix: str) -> None:
    with WireServer() as server:
        server.serve("/robots.txt", b"User-agent: *\nAllow: /\n", content_type="text/plain")
        for name in ("a", "b"):
            for i in range(PAGES_PER_WORKER):
                server.serve(f"/{name}/{i}", PAGE)
        ctx = multiprocessing.get_context("spawn")  # no fork of a process that runs server threads
        start, results = ctx.Barrier(2), ctx.Queue()
        procs = [ctx.Process(target=_worker, args=(server.base_url, prefix, n, start, results)) for n in "ab"]
        for proc in procs:
            proc.start()
        try:
            outcome = dict(results.get(timeout=60) for _ in procs)
        finally:
            for proc in procs:
                proc.join(timeout=10)
                if proc.is_alive():
                    proc.kill()
    assert outcome == {"a": PAGES_PER_WORKER, "b": PAGES_PER_WORKER}
    paths = server.paths()
    assert paths.count("/robots.txt") == 2  # one per process: each has its own robots cache
    assert len(paths) == 2 * PAGES_PER_WORKER + 2
    assert all(stamp > 0 for stamp, _, _ in server.arrivals), "no kernel receive timestamps"
    # On the wire, no two requests closer than the delay: no tolerance beyond the clocks' granularity.
    assert min(server.gaps()) >= 1.0 - CLOCK_GRANULARITY, spacing_report(server)
    # The two processes really competed (not one after the other): their requests interleave on the wire.
    owners = [path.split("/")[1] for path in paths if path != "/robots.txt"]
    first_b, last_a = owners.index("b"), len(owners) - 1 - owners[::-1].index("a")
    first_a, last_b = owners.index("a"), len(owners) - 1 - owners[::-1].index("b")
    assert first_b < last_a and first_a < last_b, paths
    # Nothing is left in flight or mid-send, and the host's keys expire on their own.
    next_key, inflight_key, sending_key = RedisHostGate(REDIS_URL, prefix, lease=1).keys(server.base_url)
    assert redis_client.zcard(inflight_key) == 0
    assert not redis_client.exists(sending_key)
    assert 0 < redis_client.pttl(next_key) <= 61_000


async def peak_holders(gate: Any, *, holders: int, limit: int, hold: float) -> int:
    """The most of ``holders`` tasks that were inside ``gate``'s slot for one host at the same time."""
    now = peak = 0

    async def one() -> None:
        nonlocal now, peak
        async with gate.slot("http://h.test:80", delay=0, limit=limit):
            now += 1
            peak = max(peak, now)
            await asyncio.sleep(hold)
            now -= 1

    await asyncio.gather(*(one() for _ in range(holders)))
    return peak


def test_redis_gate_caps_concurrency_and_leases_expire(redis_client: redis.Redis, prefix: str) -> None:
    async def go() -> tuple[int, float]:
        gate = RedisHostGate(REDIS_URL, prefix, lease=0.5)
        peak = await peak_holders(gate, holders=6, limit=2, hold=0.1)
        # Another worker that died holding both slots: its leases run out and the host is free again.
        dead = RedisHostGate(REDIS_URL, prefix, lease=0.5)
        crashed = [dead.slot("http://h.test:80", delay=0, limit=2) for _ in range(2)]
        for slot in crashed:
            await slot.__aenter__()  # never exited
        started = time.monotonic()
        async with gate.slot("http://h.test:80", delay=0, limit=2):
            waited = time.monotonic() - started
        await gate.aclose()
        await dead.aclose()
        return peak, waited

    peak, waited = asyncio.run(go())
    assert peak == 2
    assert 0.3 <= waited < 2.0


@needs_linux
def test_local_gate_spaces_and_caps_within_one_process() -> None:
    with WireServer() as server:
        for i in range(4):
            server.serve(f"/p{i}", PAGE)

        async def go() -> None:
            gate = LocalHostGate()  # shared by two Fetchers in one process: the delay holds across both
            settings = loopback_settings(fetch_host_delay=0.3, fetch_robots=False)
            async with Fetcher(settings, gate=gate) as one, Fetcher(settings, gate=gate) as two:
                await asyncio.gather(*(f.fetch(f"{server.base_url}/p{i}") for i, f in enumerate([one, two] * 2)))

            assert await peak_holders(gate, holders=9, limit=3, hold=0.05) == 3

        asyncio.run(go())
    assert len(server.arrivals) == 4
    assert all(stamp > 0 for stamp, _, _ in server.arrivals), "no kernel receive timestamps"
    assert min(server.gaps()) >= 0.3 - CLOCK_GRANULARITY, spacing_report(server)


def _stalled_pair(gate: Any, delay: float, stall: float) -> tuple[float, float]:
    """Two requests to one host through ``gate``; the first stalls ``stall`` s between its grant and its
    send (a slow connect, a descheduled process). Returns (first sent, second granted), monotonic."""

    async def go() -> tuple[float, float]:
        marks: dict[str, float] = {}
        first_granted = asyncio.Event()

        async def first() -> None:
            async with gate.slot("http://h.test:80", delay=delay, limit=2) as handle:
                first_granted.set()
                await asyncio.sleep(stall)
                marks["sent"] = time.monotonic()  # before the gate hears of it: the stamp is no earlier
                await handle.sent()
                await asyncio.sleep(0.05)  # the response; the second may start meanwhile (limit 2)

        async def second() -> None:
            await first_granted.wait()
            async with gate.slot("http://h.test:80", delay=delay, limit=2) as handle:
                marks["granted"] = time.monotonic()
                await handle.sent()

        try:
            await asyncio.gather(first(), second())
        finally:
            await gate.aclose()
        return marks["sent"], marks["granted"]

    return asyncio.run(go())


@pytest.mark.parametrize("kind", ["local", "redis"])
def test_delay_runs_from_the_send_not_the_grant(kind: str, request: pytest.FixtureRequest) -> None:
    """The old flaw: the delay ran from the grant, so a request that stalled after its grant arrived that
    much closer to the next one. Now the next grant waits for the send, then the full delay."""
    if kind == "redis":
        gate: Any = RedisHostGate(REDIS_URL, request.getfixturevalue("prefix"), lease=5)
    else:
        gate = LocalHostGate()
    sent, granted = _stalled_pair(gate, delay=0.3, stall=0.2)
    # "sent" is read before the gate stamps the send, "granted" after the grant reached the client, so
    # the gap between them can only be longer than the gate's: nothing to allow beyond clock granularity.
    assert granted - sent >= 0.3 - CLOCK_GRANULARITY, granted - sent


@pytest.mark.parametrize("kind", ["local", "redis"])
def test_a_slot_never_reported_sent_counts_its_release(kind: str, request: pytest.FixtureRequest) -> None:
    """A request that fails before it is sent (or a transport without the trace hook) must not let the
    next one in early: its release counts as the send."""

    async def go(gate: Any) -> float:
        async with gate.slot("http://h.test:80", delay=0.2, limit=2):
            await asyncio.sleep(0.1)
            released = time.monotonic()  # read before the release stamps it: the stamp is no earlier
        async with gate.slot("http://h.test:80", delay=0.2, limit=2):
            waited = time.monotonic() - released
        await gate.aclose()
        return waited

    if kind == "redis":
        gate: Any = RedisHostGate(REDIS_URL, request.getfixturevalue("prefix"), lease=5)
    else:
        gate = LocalHostGate()
    assert asyncio.run(go(gate)) >= 0.2 - CLOCK_GRANULARITY


def test_default_gate_is_in_process() -> None:
    assert isinstance(Fetcher(loopback_settings()).gate, LocalHostGate)


def test_redis_gate_many_waiters_many_hosts(redis_client: redis.Redis, prefix: str) -> None:
    """A fetch batch of 600 coroutines over 60 hosts: waiters queue locally, the Redis pool blocks
    rather than raising MaxConnectionsError, and every host's cap holds."""

    async def go() -> dict[str, int]:
        gate = RedisHostGate(REDIS_URL, prefix, lease=5)
        now: dict[str, int] = {}
        peak: dict[str, int] = {}

        async def hold(host: str) -> None:
            async with gate.slot(host, delay=0, limit=2):
                now[host] = now.get(host, 0) + 1
                peak[host] = max(peak.get(host, 0), now[host])
                await asyncio.sleep(0.005)
                now[host] -= 1

        await asyncio.gather(*(hold(f"http://h{i % 60}.test:80") for i in range(600)))
        await gate.aclose()
        return peak

    peak = asyncio.run(go())
    assert len(peak) == 60 and max(peak.values()) == 2
