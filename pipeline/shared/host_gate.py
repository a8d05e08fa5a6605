"""``RedisHostGate``: the fetcher's per-host politeness (``pipeline.fetch.politeness``) shared through Redis by
every worker on every machine.

Redis design. Per host three keys (one ``{host}`` hash tag): ``next-us`` (the earliest time, in µs of
the Redis clock, the next request may be granted), ``inflight`` (a sorted set of slot tokens scored by
lease expiry, ms) and ``sending`` (the token granted but not yet sent, with a lease). One Lua script
checks all three and, only if they allow, reserves a slot in the same atomic step; otherwise it
reserves nothing and answers how long to wait, and the caller sleeps and asks again. A second script
marks the send: it clears ``sending`` and moves ``next-us`` to ``now + delay``. Why these choices:

- The clock is Redis's (``TIME`` inside the scripts, in µs), so the spacing holds even when the
  workers' clocks disagree; only one clock is ever compared, at its full resolution.
- In-flight tokens and the ``sending`` marker carry a lease (longer than any request can take:
  deadline plus robots timeout plus a margin), so a worker killed mid-request frees its slot when the
  lease ends instead of never.
- Keys expire on their own (``next-us`` shortly after it has passed, ``inflight`` with its last lease),
  so idle hosts leave nothing behind.
- Waiters poll rather than subscribe: the wait is known exactly for the delay (``next - now``), and
  only a host at its concurrency cap (or with a request between grant and send) needs a short,
  jittered poll. Within one process, waiters first queue on a local per-host semaphore, so at most
  ``limit`` coroutines per host poll Redis, and the client uses a blocking connection pool (many
  hosts at once wait for a connection, never fail).
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any

from pipeline.fetch.politeness import CAP_POLL, SEND_POLL, LocalHostGate, SlotHandle
from pipeline.shared import keys

if TYPE_CHECKING:
    from pipeline.settings import Settings

REDIS_POOL = 32  # Redis connections per RedisHostGate (one event loop)
LEASE_MARGIN = 10.0  # seconds added to the longest request when leasing an in-flight slot in Redis


# KEYS[1] next-allowed time (µs), KEYS[2] in-flight zset (token -> lease end, ms), KEYS[3] sending token
# ARGV[1] delay µs, ARGV[2] limit, ARGV[3] lease ms, ARGV[4] token
# Returns 0 when the slot is taken (token added), -1 at the concurrency cap, -2 while another request is
# granted but not yet sent, else the ms to wait before asking again (>= 1).
_ACQUIRE = """
local t = redis.call('TIME')
local now_us = tonumber(t[1]) * 1000000 + tonumber(t[2])
local now = math.floor(now_us / 1000)
local delay = tonumber(ARGV[1])
local limit = tonumber(ARGV[2])
local lease = tonumber(ARGV[3])
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now)
if redis.call('ZCARD', KEYS[2]) >= limit then
  return -1
end
if delay > 0 and redis.call('EXISTS', KEYS[3]) == 1 then
  return -2
end
local nxt = tonumber(redis.call('GET', KEYS[1]) or '0')
if nxt > now_us then
  return math.ceil((nxt - now_us) / 1000)
end
if delay > 0 then
  redis.call('SET', KEYS[1], string.format('%d', now_us + delay), 'PX', math.ceil(delay / 1000) + 60000)
  redis.call('SET', KEYS[3], ARGV[4], 'PX', lease)
end
redis.call('ZADD', KEYS[2], now + lease, ARGV[4])
local ttl = redis.call('PTTL', KEYS[2])
if ttl < lease then redis.call('PEXPIRE', KEYS[2], lease) end
return 0
"""

# The request of ARGV[2] is on the wire (or its slot is released without saying so): the next one may
# go ``delay`` µs from now. KEYS as above; ARGV[1] delay µs, ARGV[2] token, ARGV[3] '1' to also release.
_SENT = """
local t = redis.call('TIME')
local now_us = tonumber(t[1]) * 1000000 + tonumber(t[2])
local delay = tonumber(ARGV[1])
if redis.call('GET', KEYS[3]) == ARGV[2] then
  redis.call('DEL', KEYS[3])
end
local nxt = tonumber(redis.call('GET', KEYS[1]) or '0')
if now_us + delay > nxt then
  redis.call('SET', KEYS[1], string.format('%d', now_us + delay), 'PX', math.ceil(delay / 1000) + 60000)
end
if ARGV[3] == '1' then
  redis.call('ZREM', KEYS[2], ARGV[2])
end
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
        self._sent: Any = None
        # This process's own waiters queue locally first, so at most ``limit`` of them per host ask
        # Redis at a time (a thousand coroutines for one host would otherwise all poll Redis).
        self._local = LocalHostGate()

    @classmethod
    def from_settings(cls, settings: Settings) -> RedisHostGate:
        """The deployment's gate: ``redis_url`` / ``redis_prefix``, leases longer than any request."""
        lease = settings.fetch_deadline + settings.fetch_robots_timeout + LEASE_MARGIN
        return cls(settings.redis_url, settings.redis_prefix, lease=lease)

    def keys(self, host: str) -> tuple[str, str, str]:
        """The Redis keys of ``host``: next-allowed time, in-flight set, sending marker (the ``{host}``
        hash tag keeps them in one cluster slot)."""
        base = keys.politeness(self._prefix, host)
        return f"{base}:next-us", f"{base}:inflight", f"{base}:sending"

    def _scripts(self) -> tuple[Any, Any]:
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
            self._sent = self._client.register_script(_SENT)
        return self._acquire, self._sent

    @asynccontextmanager
    async def slot(self, host: str, *, delay: float, limit: int) -> AsyncIterator[SlotHandle]:
        acquire, sent = self._scripts()
        keys = list(self.keys(host))
        token = uuid.uuid4().hex
        delay_us = max(0, int(round(delay * 1_000_000)))
        args = [delay_us, max(1, limit), self._lease_ms, token]
        async with self._local.slot(host, delay=0, limit=limit):
            while True:
                wait_ms = int(await acquire(keys=keys, args=args))
                if wait_ms == 0:
                    break
                if wait_ms == -1:  # at the concurrency cap: someone has to finish first
                    await asyncio.sleep(CAP_POLL * random.uniform(0.5, 1.5))
                elif wait_ms < 0:  # the previous request is about to be sent: its send sets the wait
                    await asyncio.sleep(SEND_POLL * random.uniform(0.5, 1.5))
                else:
                    await asyncio.sleep(wait_ms / 1000)

            async def mark_sent() -> None:
                try:
                    await sent(keys=keys, args=[delay_us, token, "0"])
                except Exception:  # Redis unreachable: the request goes on, the release tries again
                    handle.done = False

            handle = SlotHandle(mark_sent if delay_us else None)
            try:
                yield handle
            finally:
                # Redis gone: the leases free the slot in time; the request's own outcome matters more.
                with contextlib.suppress(Exception):
                    if delay_us and not handle.done:  # never reported: count the release as the send
                        handle.done = True
                        await sent(keys=keys, args=[delay_us, token, "1"])
                    else:
                        await self._client.zrem(keys[1], token)

    async def aclose(self) -> None:
        await self._local.aclose()
        if self._client is not None and self._owns_client:
            await self._client.aclose()
            await self._client.connection_pool.disconnect()
        self._client = None
        self._acquire = None
        self._sent = None
