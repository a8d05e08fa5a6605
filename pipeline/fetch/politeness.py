"""Host gates: who may send the next request to a host, and when.

``Fetcher`` asks its gate for a slot before every request (robots.txt included) and holds it for the
request. A slot stands for two rules of politeness:

- at most ``limit`` requests to one host in flight at once (``fetch_per_host``);
- requests to one host reach it at least ``delay`` seconds apart (``fetch_host_delay`` or robots.txt
  Crawl-delay, capped).

The delay is measured from when the previous request was *sent*, not from when its slot was granted.
Between a grant and its send lie the global concurrency slot, a DNS lookup, a TCP connect and the
scheduler of a busy machine; spacing the grants alone lets those delays eat into the gap the server
sees (a request that stalls 80 ms after its grant arrives 80 ms closer to the next one). So with a
delay, a slot is granted only when the host's previous request has been sent (``SlotHandle.sent``,
which ``Fetcher`` calls from httpcore's trace hook as soon as the request headers are written) and
``delay`` has passed since then. A slot whose holder never reports the send (an error before it, a
transport without the trace hook) is treated as sent when it is released: the rule errs on the side
of waiting. With ``delay == 0`` nothing is serialized and only the concurrency cap applies.

Two implementations:

- ``LocalHostGate`` (here, the default): state in this process, with asyncio primitives. Right for the
  embedded runner, which is one process.
- ``pipeline.shared.host_gate.RedisHostGate``: state in Redis, so the rules hold across every Celery worker
  on every machine. A process-local gate there would let N workers hit one host N times as often as the delay
  allows.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    pass

MAX_HOST_STATES = 10_000  # per-host state kept by LocalHostGate; idle hosts beyond this are forgotten
CAP_POLL = 0.05  # seconds between asks while a host is at its concurrency cap (jittered)
SEND_POLL = 0.005  # seconds between asks while the host's previous request is granted but not yet sent


class SlotHandle:
    """What a gate yields for one request: call ``await handle.sent()`` once its bytes are on the wire.

    Idempotent; a handle never told is marked sent when its slot is released.
    """

    __slots__ = ("_mark", "done")

    def __init__(self, mark: Any = None) -> None:
        self._mark = mark  # async callable doing the gate's bookkeeping, or None (nothing to do)
        self.done = False

    @property
    def waiting_for_send(self) -> bool:
        """Whether the gate needs to hear about the send (only slots with a delay do)."""
        return self._mark is not None and not self.done

    async def sent(self) -> None:
        if self.done:
            return
        self.done = True
        if self._mark is not None:
            await self._mark()


class HostGate(Protocol):
    """Per-host politeness for ``Fetcher``: a slot is held for exactly one request."""

    def slot(self, host: str, *, delay: float, limit: int) -> AbstractAsyncContextManager[SlotHandle]:
        """Wait until a request to ``host`` (a ``scheme://host:port`` key) may start, and hold a slot.

        ``delay``: seconds since the previous request to this host was sent; ``limit``: requests in
        flight at once. The caller reports the send through the yielded handle as soon as it happens.
        """
        ...

    async def aclose(self) -> None:
        """Release connections; the gate is not used afterwards."""
        ...


# ------------------------------------------------------------------------------------ in process


@dataclass
class _HostState:
    slots: asyncio.Semaphore
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)  # held from a grant until that request is sent
    next_at: float = 0.0
    users: int = 0  # coroutines holding or waiting for a slot; idle states may be forgotten


class LocalHostGate:
    """Per-host caps and delays within one process (one event loop): the embedded runner's gate."""

    def __init__(self) -> None:
        self._hosts: dict[str, _HostState] = {}

    @asynccontextmanager
    async def slot(self, host: str, *, delay: float, limit: int) -> AsyncIterator[SlotHandle]:
        state = self._hosts.get(host)
        if state is None:
            if len(self._hosts) >= MAX_HOST_STATES:
                self._forget_idle_hosts()
            state = self._hosts[host] = _HostState(asyncio.Semaphore(limit))
        state.users += 1
        try:
            async with state.slots:
                if delay <= 0:
                    yield SlotHandle()
                    return
                # One request at a time between grant and send: starts come out spaced, in order.
                await state.lock.acquire()
                try:
                    while (wait := state.next_at - time.monotonic()) > 0:  # a timer may fire a hair early
                        await asyncio.sleep(wait)
                except BaseException:  # cancelled while waiting: nothing was granted
                    state.lock.release()
                    raise
                state.next_at = time.monotonic() + delay  # provisional; the send moves it on

                async def mark_sent() -> None:
                    state.next_at = max(state.next_at, time.monotonic() + delay)
                    state.lock.release()

                handle = SlotHandle(mark_sent)
                try:
                    yield handle
                finally:
                    if not handle.done:
                        await handle.sent()
        finally:
            state.users -= 1

    async def aclose(self) -> None:
        self._hosts.clear()

    def _forget_idle_hosts(self) -> None:
        now = time.monotonic()
        for key in [k for k, st in self._hosts.items() if st.users == 0 and st.next_at <= now]:
            del self._hosts[key]


# ------------------------------------------------------------------------------------------ Redis
