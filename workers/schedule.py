"""Scheduled ingestion: ``config/sources.yaml`` → a Celery beat schedule, kept in Redis by celery-redbeat.

The file format is the one ``config/sources.example.yaml`` documents: ``defaults`` (``interval``,
``enabled``) and ``sources``, each a ``name``, a ``spec`` (any SOURCE ``reprint ingest`` accepts), an
optional ``interval`` (``90``, ``30s``, ``10m``, ``1h``, ``1d``) and ``enabled``. Every entry enqueues
``reprint.scheduled_ingest``, which starts a run only if the source's previous run has released its
Redis lock, so a slow source is never ingested twice at once however short its interval.

Because redbeat keeps the entries and its own leader lock in Redis, a second ``reprint beat`` started as
a standby waits on that lock and takes over when the active one stops renewing it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import yaml

from pipeline.errors import ConfigError

_INTERVAL = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhd]?)\s*$", re.I)
_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}
#: Below this an interval is a typo, not a schedule: the run alone takes longer.
MIN_INTERVAL = 10.0


@dataclass(frozen=True, slots=True)
class ScheduledSource:
    """One entry of the sources file."""

    name: str
    spec: str
    interval: float
    enabled: bool = True
    kind: str | None = None


def parse_interval(value: Any) -> float:
    """Seconds from ``90``, ``"30s"``, ``"10m"``, ``"1h"``, ``"1d"``; ConfigError otherwise."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        seconds = float(value)
    else:
        match = _INTERVAL.match(str(value))
        if not match:
            raise ConfigError(f"bad interval {value!r}: expected a number with s, m, h or d")
        seconds = float(match.group(1)) * _UNITS[match.group(2).lower()]
    if seconds < MIN_INTERVAL:
        raise ConfigError(f"interval {value!r} is shorter than {MIN_INTERVAL:g}s")
    return seconds


def load_sources(path: str | Path) -> list[ScheduledSource]:
    """Read and check the sources file; every problem is a ConfigError naming the entry."""
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except OSError as err:
        raise ConfigError(f"cannot read sources file {path}: {err.strerror or err}") from None
    except yaml.YAMLError as err:
        raise ConfigError(f"sources file {path} is not valid YAML: {err}") from None
    if not isinstance(data, dict) or not isinstance(data.get("sources", []), list):
        raise ConfigError(f"sources file {path}: expected a mapping with a 'sources' list")
    defaults = data.get("defaults") or {}
    out: list[ScheduledSource] = []
    names: set[str] = set()
    for number, entry in enumerate(data.get("sources") or [], 1):
        if not isinstance(entry, dict) or not entry.get("spec"):
            raise ConfigError(f"sources file {path}: entry {number} has no 'spec'")
        raw_name = entry.get("name", entry["spec"])
        if not isinstance(raw_name, str):  # YAML reads an unquoted `off` or `yes` as a boolean
            raise ConfigError(f"sources file {path}: entry {number}: name {raw_name!r} is not a string (quote it)")
        name = raw_name
        if name in names:
            raise ConfigError(f"sources file {path}: the name {name!r} is used twice")
        names.add(name)
        interval = entry.get("interval", defaults.get("interval", "30m"))
        try:
            seconds = parse_interval(interval)
        except ConfigError as err:
            raise ConfigError(f"sources file {path}: entry {name!r}: {err.message}") from None
        enabled = bool(entry.get("enabled", defaults.get("enabled", True)))
        out.append(ScheduledSource(name, resolve_spec(str(entry["spec"]), path.parent), seconds, enabled,
                                   entry.get("kind")))
    return out


def resolve_spec(spec: str, base: Path) -> str:
    """A relative local path is relative to the sources file, not to wherever beat was started."""
    if "://" in spec or Path(spec).expanduser().is_absolute():
        return spec
    return str((base / spec).resolve())


def beat_schedule(sources: list[ScheduledSource]) -> dict[str, dict[str, Any]]:
    """The ``beat_schedule`` dict for the enabled sources (redbeat stores it in Redis at start-up)."""
    return {
        f"source:{source.name}": {
            "task": "reprint.scheduled_ingest",
            "schedule": timedelta(seconds=source.interval),
            "args": [source.spec],
            "kwargs": {"name": source.name},
            "options": {"queue": "discover"},
        }
        for source in sources
        if source.enabled
    }
