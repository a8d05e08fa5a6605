"""robots.txt: fetched once per host, parsed with protego, cached with a TTL.

Status handling follows RFC 9309 section 2.3.1: a 2xx body is parsed; 4xx means "no rules" (allow
everything); 5xx, a network error or a timeout means the site is unreachable, so everything is
disallowed — but only for a short while (``UNREACHABLE_TTL``) so a hiccup does not block a host for
the whole TTL. The fetch itself is done by the caller (the Fetcher), so it goes through the same SSRF
guard and client as everything else.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from protego import Protego

MAX_ROBOTS_BYTES = 500 * 1024  # RFC 9309: parse at least the first 500 KiB
UNREACHABLE_TTL = 60.0
MAX_HOSTS = 10_000  # rules kept in memory; expired, then oldest, entries go first

# (url) -> (status, body); status 0 means a network error / timeout
RobotsFetch = Callable[[str], Awaitable[tuple[int, bytes]]]


@dataclass(frozen=True, slots=True)
class RobotsRules:
    """The verdict source for one host: parsed rules, or a blanket allow/deny, and why."""

    parser: Protego | None
    allow_all: bool
    reason: str
    expires_at: float

    def can_fetch(self, url: str, agent: str) -> bool:
        if self.parser is None:
            return self.allow_all
        return bool(self.parser.can_fetch(url, agent))

    def crawl_delay(self, agent: str) -> float | None:
        if self.parser is None:
            return None
        delay = self.parser.crawl_delay(agent)
        return float(delay) if delay is not None else None

    def sitemaps(self) -> list[str]:
        return list(self.parser.sitemaps) if self.parser is not None else []


def agent_token(user_agent: str) -> str:
    """The product token robots.txt groups match against: ``reprint`` of ``reprint/0.1 (...)``."""
    return user_agent.split("/", 1)[0].split()[0] if user_agent.strip() else "*"


def parse_robots(body: bytes, *, ttl: float, now: float | None = None) -> RobotsRules:
    """Rules from a robots.txt body (decoded as UTF-8, undecodable bytes replaced)."""
    now = time.monotonic() if now is None else now
    head = body[:MAX_ROBOTS_BYTES]
    if head.startswith((b"\xff\xfe", b"\xfe\xff")):  # RFC says UTF-8, but UTF-16 files exist
        text = head.decode("utf-16", "replace")
    else:
        text = head.decode("utf-8-sig", "replace")
    return RobotsRules(Protego.parse(text), True, "robots.txt", now + ttl)


class RobotsCache:
    """Per-host robots.txt rules, fetched at most once per host at a time, refreshed after ``ttl``."""

    def __init__(self, fetch: RobotsFetch, *, ttl: float) -> None:
        self._fetch = fetch
        self._ttl = ttl
        self._rules: dict[str, RobotsRules] = {}
        self._locks: dict[str, asyncio.Lock] = {}

    async def rules(self, host_key: str) -> RobotsRules:
        """The rules for ``scheme://host:port`` (fetching ``/robots.txt`` when missing or stale)."""
        cached = self._rules.get(host_key)
        if cached is not None and cached.expires_at > time.monotonic():
            return cached
        lock = self._locks.setdefault(host_key, asyncio.Lock())
        async with lock:
            cached = self._rules.get(host_key)
            if cached is not None and cached.expires_at > time.monotonic():
                return cached
            status, body = await self._fetch(f"{host_key}/robots.txt")
            now = time.monotonic()
            if 200 <= status < 300:
                rules = parse_robots(body, ttl=self._ttl, now=now)
            elif 400 <= status < 500:
                rules = RobotsRules(None, True, f"robots.txt answered {status}", now + self._ttl)
            else:
                why = f"robots.txt unreachable ({status or 'network error'})"
                rules = RobotsRules(None, False, why, now + min(self._ttl, UNREACHABLE_TTL))
            self._rules.pop(host_key, None)
            self._rules[host_key] = rules  # re-inserted: dict order is age order
            if len(self._rules) > MAX_HOSTS:
                self._evict(now)
            return rules

    def _evict(self, now: float) -> None:
        for key in [k for k, r in self._rules.items() if r.expires_at <= now]:
            del self._rules[key]
        while len(self._rules) > MAX_HOSTS:
            del self._rules[next(iter(self._rules))]
        for key in [k for k, lock in self._locks.items() if k not in self._rules and not lock.locked()]:
            del self._locks[key]
