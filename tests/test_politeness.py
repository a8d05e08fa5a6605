"""Host gates: per-host delay and concurrency, in process and shared across processes through Redis.

The cross-process test is the one that matters under Celery: two separate processes, each with its own
Fetcher and its own Redis client, fetch from one host with a 1 s delay; the server, which has one clock,
must never see two requests closer together than the delay (robots.txt included).
"""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import secrets
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
import redis

from pipeline.fetch import Fetcher
from pipeline.politeness import LocalHostGate, RedisHostGate
from tests.conftest import under_ci
from tests.httpserver import LoopbackServer, Request, Response, loopback_settings

REDIS_HOST = os.environ.get("REPRINT_TEST_REDIS_HOST", "127.0.0.1")
REDIS_PORT = int(os.environ.get("REPRINT_TEST_REDIS_PORT", "6379"))
REDIS_URL = f"redis://{REDIS_HOST}:{REDIS_PORT}/0"
PAGE = b"<html><body><p>polite</p></body></html>"
PAGES_PER_WORKER = 10


@pytest.fixture(scope="module")
def redis_client() -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(REDIS_URL, socket_timeout=10)
    try:
        client.ping()
    except redis.RedisError as err:
        if under_ci():
            pytest.fail(f"Redis at {REDIS_URL} is not reachable under CI: {err}")
        pytest.skip(f"Redis at {REDIS_URL} is not reachable: {err}")
    yield client
    client.close()


@pytest.fixture
def prefix(redis_client: redis.Redis) -> Iterator[str]:
    """A key prefix of this test's own; every key under it is deleted afterwards."""
    name = f"reprint_test_{secrets.token_hex(6)}"
    yield name
    keys = list(redis_client.scan_iter(match=f"{name}:*", count=1000))
    if keys:
        redis_client.unlink(*keys)


class ArrivalLog:
    """Routes on a LoopbackServer that record (path, arrival time) on the server's single clock."""

    def __init__(self, server: LoopbackServer) -> None:
        self.server = server
        self.lock = threading.Lock()
        self.arrivals: list[tuple[float, str]] = []

    def serve(self, path: str, body: bytes, content_type: str = "text/html") -> None:
        def answer(request: Request) -> Response:
            with self.lock:
                self.arrivals.append((time.monotonic(), request.path))
            return Response(200, body, content_type=content_type)

        self.server.handle(path, answer)

    def gaps(self) -> list[float]:
        times = sorted(t for t, _ in self.arrivals)
        return [b - a for a, b in zip(times, times[1:], strict=False)]


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


def test_two_processes_share_the_host_delay_through_redis(redis_client: redis.Redis, prefix: str) -> None:
    with LoopbackServer() as server:
        log = ArrivalLog(server)
        log.serve("/robots.txt", b"User-agent: *\nAllow: /\n", content_type="text/plain")
        for name in ("a", "b"):
            for i in range(PAGES_PER_WORKER):
                log.serve(f"/{name}/{i}", PAGE)
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
    paths = [path for _, path in sorted(log.arrivals)]
    assert paths.count("/robots.txt") == 2  # one per process: each has its own robots cache
    assert len(paths) == 2 * PAGES_PER_WORKER + 2
    assert min(log.gaps()) >= 0.95, sorted(log.gaps())[:3]
    # The two processes really competed (not one after the other): both are among the first requests.
    first = {path.split("/")[1] for path in paths[:8] if path != "/robots.txt"}
    assert first == {"a", "b"}, paths
    # Nothing is left in flight, and the host's keys expire on their own.
    next_key, inflight_key = RedisHostGate(REDIS_URL, prefix, lease=1).keys(server.base_url)
    assert redis_client.zcard(inflight_key) == 0
    assert 0 < redis_client.pttl(next_key) <= 61_000


def test_redis_gate_caps_concurrency_and_leases_expire(redis_client: redis.Redis, prefix: str) -> None:
    async def go() -> tuple[int, float]:
        gate = RedisHostGate(REDIS_URL, prefix, lease=0.5)
        now = peak = 0

        async def hold() -> None:
            nonlocal now, peak
            async with gate.slot("http://h.test:80", delay=0, limit=2):
                now += 1
                peak = max(peak, now)
                await asyncio.sleep(0.1)
                now -= 1

        await asyncio.gather(*(hold() for _ in range(6)))
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


def test_local_gate_spaces_and_caps_within_one_process(http_server: LoopbackServer) -> None:
    log = ArrivalLog(http_server)
    for i in range(4):
        log.serve(f"/p{i}", PAGE)

    async def go() -> None:
        gate = LocalHostGate()  # shared by two Fetchers in one process: the delay holds across both
        settings = loopback_settings(fetch_host_delay=0.3, fetch_robots=False)
        async with Fetcher(settings, gate=gate) as one, Fetcher(settings, gate=gate) as two:
            await asyncio.gather(*(f.fetch(http_server.url(f"/p{i}")) for i, f in enumerate([one, two] * 2)))

        now = peak = 0

        async def hold() -> None:
            nonlocal now, peak
            async with gate.slot("http://h.test:80", delay=0, limit=3):
                now += 1
                peak = max(peak, now)
                await asyncio.sleep(0.05)
                now -= 1

        await asyncio.gather(*(hold() for _ in range(9)))
        assert peak == 3

    asyncio.run(go())
    assert len(log.arrivals) == 4
    assert min(log.gaps()) >= 0.28


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
