"""Fetching: an httpx client with retries, conditional GET, size and time caps and an SSRF guard
(``client``); robots.txt (``robots``); per-host politeness gates (``politeness``; the Redis-shared gate is
``pipeline.shared.host_gate``).
"""

from pipeline._lazy import lazy_exports

_EXPORTS = {
    "AddressPolicy": "pipeline.fetch.client",
    "Fetcher": "pipeline.fetch.client",
    "HostGate": "pipeline.fetch.politeness",
    "LocalHostGate": "pipeline.fetch.politeness",
    "RobotsCache": "pipeline.fetch.robots",
    "RobotsRules": "pipeline.fetch.robots",
    "SlotHandle": "pipeline.fetch.politeness",
    "agent_token": "pipeline.fetch.robots",
    "media_type": "pipeline.fetch.client",
    "parse_retry_after": "pipeline.fetch.client",
    "parse_robots": "pipeline.fetch.robots",
    "readable_type": "pipeline.fetch.client",
}
__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = lazy_exports("pipeline.fetch", _EXPORTS)
