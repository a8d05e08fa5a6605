"""Host gates: who may send the next request to a host, and when.

``Fetcher`` asks its gate for a slot before every request (robots.txt included) and holds it for the
request. A slot stands for two rules of politeness:

- at most ``limit`` requests to one host in flight at once (``fetch_per_host``);
- request starts to one host at least ``delay`` seconds apart (``fetch_host_delay`` or robots.txt
  Crawl-delay, capped).

Two implementations:

- ``LocalHostGate`` (the default): state in this process, with asyncio primitives. Right for the
  embedded runner, which is one process.
- ``RedisHostGate``: state in Redis, so the rules hold across every Celery worker on every machine. A
  process-local gate there would let N workers hit one host N times as often as the delay allows.

Redis design. Per host two keys, ``{prefix}:polite:{host}:next`` (the earliest time, in ms of the Redis
clock, the next request may start) and ``...:inflight`` (a sorted set of slot tokens scored by lease
expiry). One Lua script checks both and, only if both allow, reserves a slot in the same atomic step:
it sets ``next = now + delay`` and adds the token. Otherwise it reserves nothing and answers how long to
wait, and the caller sleeps and asks again. Why these choices:

- The clock is Redis's (``TIME`` inside the script), so the spacing holds even when the workers'
  clocks disagree; only one clock is ever compared.
- In-flight tokens carry a lease (longer than any request can take: deadline plus robots timeout plus
  a margin), so a worker killed mid-request frees its slot when the lease ends instead of never.
- Keys expire on their own (``next`` shortly after it has passed, ``inflight`` with its last lease),
  so idle hosts leave nothing behind.
- Waiters poll rather than subscribe: the wait is known exactly for the delay (``next - now``), and
  only a host at its concurrency cap needs a short, jittered poll. Within one process, waiters first
  queue on a local per-host semaphore, so at most ``limit`` coroutines per host poll Redis, and the
  client uses a blocking connection pool (many hosts at once wait for a connection, never fail).
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from .settings import Settings

MAX_HOST_STATES = 10_000  # per-host state kept by LocalHostGate; idle hosts beyond this are forgotten
CAP_POLL = 0.05  # seconds between asks while a host is at its concurrency cap (jittered)
REDIS_POOL = 32  # Redis connections per RedisHostGate (one event loop)
LEASE_MARGIN = 10.0  # seconds added to the longest request when leasing an in-flight slot in Redis


class HostGate(Protocol):
    """Per-host politeness for ``Fetcher``: a slot is held for exactly one request."""

    def slot(self, host: str, *, delay: float, limit: int) -> AbstractAsyncContextManager[None]:
        """Wait until a request to ``host`` (a ``scheme://host:port`` key) may start, and hold a slot.

        ``delay``: seconds since the previous start to this host; ``limit``: requests in flight at once.
        """
        ...

    async def aclose(self) -> None:
        """Release connections; the gate is not used afterwards."""
        ...


# ------------------------------------------------------------------------------------ in process


@dataclass
class _HostState:
    slots: asyncio.Semaphore
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    next_at: float = 0.0
    users: int = 0  # coroutines holding or waiting for a slot; idle states may be forgotten


class LocalHostGate:
    """Per-host caps and delays within one process (one event loop): the embedded runner's gate."""

    def __init__(self) -> None:
        self._hosts: dict[str, _HostState] = {}

    @asynccontextmanager
    async def slot(self, host: str, *, delay: float, limit: int) -> AsyncIterator[None]:
        state = self._hosts.get(host)
        if state is None:
            if len(self._hosts) >= MAX_HOST_STATES:
                self._forget_idle_hosts()
            state = self._hosts[host] = _HostState(asyncio.Semaphore(limit))
        state.users += 1
        try:
            async with state.slots:
                if delay > 0:
                    async with state.lock:  # one waiter at a time: starts come out spaced, in order
                        wait = state.next_at - time.monotonic()
                        if wait > 0:
                            await asyncio.sleep(wait)
                        state.next_at = time.monotonic() + delay
                yield
        finally:
            state.users -= 1

    async def aclose(self) -> None:
        self._hosts.clear()

    def _forget_idle_hosts(self) -> None:
        now = time.monotonic()
        for key in [k for k, st in self._hosts.items() if st.users == 0 and st.next_at <= now]:
            del self._hosts[key]


# ------------------------------------------------------------------------------------------ Redis

# KEYS[1] next-allowed time (ms), KEYS[2] in-flight zset (token -> lease end, ms)
# ARGV[1] delay ms, ARGV[2] limit, ARGV[3] lease ms, ARGV[4] token
# Returns 0 when the slot is taken (token added), else the ms to wait before asking again (>= 1).
_ACQUIRE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local delay = tonumber(ARGV[1])
local limit = tonumber(ARGV[2])
local lease = tonumber(ARGV[3])
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now)
if redis.call('ZCARD', KEYS[2]) >= limit then
  return -1
end
local nxt = tonumber(redis.call('GET', KEYS[1]) or '0')
if nxt > now then
  return nxt - now
end
if delay > 0 then
  redis.call('SET', KEYS[1], now + delay, 'PX', delay + 60000)
end
redis.call('ZADD', KEYS[2], now + lease, ARGV[4])
local ttl = redis.call('PTTL', KEYS[2])
if ttl < lease then redis.call('PEXPIRE', KEYS[2], lease) end
return 0
"""


class RedisHostGate:
    """Per-host caps and delays shared by every process that uses the same Redis and key prefix.

    The asyncio Redis client is created on first use, inside the event loop that uses it (a redis-py
    asyncio connection belongs to one loop); pass ``client`` to share one you already have.
    """

    def __init__(self, url: str, prefix: str, *, lease: float, client: Any = None) -> None:
        self._url = url
        self._prefix = prefix
        self._lease_ms = max(1, int(lease * 1000))
        self._client = client
        self._owns_client = client is None
        self._acquire: Any = None
        # This process's own waiters queue locally first, so at most ``limit`` of them per host ask
        # Redis at a time (a thousand coroutines for one host would otherwise all poll Redis).
        self._local = LocalHostGate()

    @classmethod
    def from_settings(cls, settings: Settings) -> RedisHostGate:
        """The deployment's gate: ``redis_url`` / ``redis_prefix``, leases longer than any request."""
        lease = settings.fetch_deadline + settings.fetch_robots_timeout + LEASE_MARGIN
        return cls(settings.redis_url, settings.redis_prefix, lease=lease)

    def keys(self, host: str) -> tuple[str, str]:
        """The two Redis keys of ``host`` (the ``{host}`` hash tag keeps them in one cluster slot)."""
        base = f"{self._prefix}:polite:{{{host}}}"
        return f"{base}:next", f"{base}:inflight"

    def _script(self) -> Any:
        if self._acquire is None:
            if self._client is None:
                import redis.asyncio

                # A blocking pool: callers beyond REDIS_POOL wait for a connection instead of failing
                # with MaxConnectionsError (the default asyncio pool raises at 100).
                pool = redis.asyncio.BlockingConnectionPool.from_url(
                    self._url, max_connections=REDIS_POOL, timeout=30, socket_timeout=30, socket_connect_timeout=10
                )
                self._client = redis.asyncio.Redis(connection_pool=pool)
            self._acquire = self._client.register_script(_ACQUIRE)
        return self._acquire

    @asynccontextmanager
    async def slot(self, host: str, *, delay: float, limit: int) -> AsyncIterator[None]:
        script = self._script()
        keys = list(self.keys(host))
        token = uuid.uuid4().hex
        args = [max(0, int(round(delay * 1000))), max(1, limit), self._lease_ms, token]
        async with self._local.slot(host, delay=0, limit=limit):
            while True:
                wait_ms = int(await script(keys=keys, args=args))
                if wait_ms == 0:
                    break
                if wait_ms < 0:  # at the concurrency cap: someone has to finish first
                    await asyncio.sleep(CAP_POLL * random.uniform(0.5, 1.5))
                else:
                    await asyncio.sleep(wait_ms / 1000)
            try:
                yield
            finally:
                # Redis gone: the lease frees the slot in time; the request's own outcome matters more.
                with contextlib.suppress(Exception):
                    await self._client.zrem(keys[1], token)

    async def aclose(self) -> None:
        await self._local.aclose()
        if self._client is not None and self._owns_client:
            await self._client.aclose()
            await self._client.connection_pool.disconnect()
        self._client = None
        self._acquire = None
