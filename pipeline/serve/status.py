"""``reprint status``: one screen for an operator — queues, workers, dead letters, sources, runs, today.

Queue depths are read straight from Redis (the keys kombu's Redis transport uses), so status works from any
machine with the broker URL and costs the broker a few O(1) commands. Worker liveness needs Celery's remote
control; ``pipeline/`` never imports Celery, so that part is a ``WorkerInspector`` injected by the caller (by
default ``workers.probe:inspect_workers`` when the workers package is installed and a broker is configured).
With the embedded store and no broker, status shows what applies and says no broker is configured.
"""

from __future__ import annotations

import importlib
import logging
import os
import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy.engine import make_url

from pipeline.serve import queries
from pipeline.settings import Settings
from pipeline.shared import keys
from pipeline.store import Store

log = logging.getLogger(__name__)

#: The queues the workers route stages to, plus Celery's default; others are found through kombu's bindings.
DEFAULT_QUEUES = ("discover", "fetch", "extract", "dedup")
#: kombu's Redis transport: priority sub-queues are ``name + SEP + step`` and bindings live in ``_kombu.binding.*``.
KOMBU_SEP = "\x06\x16"
KOMBU_PRIORITY_STEPS = (3, 6, 9)
KOMBU_BINDING_PREFIX = "_kombu.binding."
#: kombu's hash of delivered but unacknowledged messages (tasks running or reserved, with acks_late).
KOMBU_UNACKED = "unacked"
#: The workers' dead-letter list (one JSON entry per task), ``<redis_prefix>:deadletters`` on the Redis URL.
#: ``module:function`` that inspects workers (Celery remote control), imported only when a broker is set.
WORKER_INSPECTOR = "workers.api_admin:inspect_workers"

#: ``module:function`` giving ``{queue: messages ready}`` on a RabbitMQ broker (kombu lives in workers/ only).
AMQP_QUEUE_INSPECTOR = "workers.broker:queue_depths"
#: The queue RabbitMQ dead-letters to; its messages count as dead letters until a worker moves them to Redis.
AMQP_DEAD_QUEUE = "reprint.dead"

WorkerInspector = Callable[[str, float], dict[str, Any]]


def broker_url(settings: Settings) -> str | None:
    """The broker URL when one is configured explicitly (``REPRINT_BROKER_URL`` or ``--broker``), else None.

    The settings carry a default broker URL for convenience; a default that nobody set does not mean a
    distributed deployment exists, so callers probe it (``default_broker``) before treating it as one.
    """
    url = getattr(settings, "broker_url", None)
    if url and "broker_url" in settings.model_fields_set:
        return str(url)
    return os.environ.get("REPRINT_BROKER_URL") or None


def default_broker(settings: Settings, timeout: float = 0.3) -> str | None:
    """The default broker URL if a Redis answers there (a dev machine running workers on defaults)."""
    url = getattr(settings, "broker_url", None)
    if not url or not str(url).startswith(("redis://", "rediss://")):
        return None
    try:
        import redis

        client = redis.Redis.from_url(str(url), socket_timeout=timeout, socket_connect_timeout=timeout)
        try:
            client.ping()
        finally:
            client.close()
    except Exception:
        return None
    return str(url)


def effective_broker(settings: Settings, *, probe_default: bool = True) -> tuple[str | None, str]:
    """(broker URL, how it was found: 'configured' | 'default' | 'none')."""
    url = broker_url(settings)
    if url:
        return url, "configured"
    url = default_broker(settings) if probe_default else None
    return (url, "default") if url else (None, "none")


def broker_client(settings: Settings, *, timeout: float = 2.0, url: str | None = None) -> Any | None:
    """A redis-py client for the (Redis) broker, or None when there is none."""
    url = url or effective_broker(settings)[0]
    if not url or not url.startswith(("redis://", "rediss://", "unix://")):
        return None
    import redis

    return redis.Redis.from_url(url, socket_timeout=timeout, socket_connect_timeout=timeout)


def dead_letter_count(settings: Settings, *, timeout: float = 2.0) -> int:
    """Length of the workers' dead-letter list (``<redis_prefix>:deadletters`` on ``redis_url``)."""
    import redis

    url = str(getattr(settings, "redis_url", None) or effective_broker(settings)[0])
    client = redis.Redis.from_url(url, socket_timeout=timeout, socket_connect_timeout=timeout)
    try:
        return int(client.llen(dead_letter_key(settings)))
    finally:
        client.close()


def dead_letter_key(settings: Settings) -> str:
    return keys.dead_letters(getattr(settings, "redis_prefix", "reprint"))


def _text(value: Any) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


def queue_names(client: Any, extra: tuple[str, ...] = DEFAULT_QUEUES) -> list[str]:
    """Every queue kombu has bound on this broker (members are 'routing_key SEP pattern SEP queue'), plus extras."""
    names = set(extra)
    for key in client.scan_iter(match=KOMBU_BINDING_PREFIX + "*", count=200):
        for member in client.smembers(key):
            queue = _text(member).split(KOMBU_SEP)[-1]
            if queue:
                names.add(queue)
    return sorted(names)


def queue_depths(client: Any, names: list[str] | None = None) -> dict[str, int]:
    """Messages waiting per queue: the list itself plus its priority sub-lists, in one pipelined round trip."""
    names = names if names is not None else queue_names(client)
    pipe = client.pipeline(transaction=False)
    for name in names:
        pipe.llen(name)
        for step in KOMBU_PRIORITY_STEPS:
            pipe.llen(f"{name}{KOMBU_SEP}{step}")
    counts = pipe.execute()
    per = 1 + len(KOMBU_PRIORITY_STEPS)
    return {name: int(sum(counts[i * per:(i + 1) * per])) for i, name in enumerate(names)}


def _load(target: str) -> Any:
    module_name, _, attr = target.partition(":")
    return getattr(importlib.import_module(module_name), attr)


def load_worker_inspector() -> WorkerInspector | None:
    """The workers' inspector if the package provides one; None otherwise (status then says so)."""
    try:
        return _load(WORKER_INSPECTOR)
    except (ImportError, AttributeError):
        return None


def parse_interval(text: str | int | float) -> timedelta:
    """'30m', '1h', '45s', '2d' or a number of seconds, as in config/sources.yaml."""
    if isinstance(text, int | float):
        return timedelta(seconds=float(text))
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([smhd]?)\s*", str(text))
    if not m:
        raise ValueError(f"bad interval {text!r}")
    unit = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}[m.group(2)]
    return timedelta(seconds=float(m.group(1)) * unit)


def load_schedule(path: str | Path | None = None) -> dict[str, timedelta]:
    """source spec → polling interval, from the sources file (REPRINT_SOURCES_FILE or config/sources.yaml)."""
    candidate = Path(path or os.environ.get("REPRINT_SOURCES_FILE") or "config/sources.yaml")
    if not candidate.is_file():
        return {}
    import yaml

    try:
        doc = yaml.safe_load(candidate.read_text()) or {}
        default = (doc.get("defaults") or {}).get("interval", "30m")
        return {str(e["spec"]): parse_interval(e.get("interval", default))
                for e in doc.get("sources") or [] if isinstance(e, dict) and e.get("spec")}
    except Exception as err:  # a broken schedule file must not hide the rest of the status
        log.warning("cannot read schedule %s: %s", candidate, err)
        return {}


def _safe(url: str) -> str:
    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:
        return re.sub(r"//[^@/]*@", "//***@", url)


def broker_status(settings: Settings, inspector: WorkerInspector | None = None,
                  *, inspect_timeout: float = 1.0, probe_default: bool = True) -> dict[str, Any]:
    """The broker part of the status: queues and depths, unacked, dead letters, workers (when inspectable)."""
    url, how = effective_broker(settings, probe_default=probe_default)
    out: dict[str, Any] = {"configured": url is not None, "source": how, "url": _safe(url) if url else None,
                           "reachable": None, "error": None, "note": None, "queues": [], "unacked": None,
                           "dead_letters": None,
                           "workers": {"inspected": False, "note": None, "alive": [], "active": 0, "reserved": 0,
                                       "scheduled": 0}}
    if not url:
        out["note"] = "no broker is configured (embedded deployment): queues and workers do not apply"
        out["workers"]["note"] = "no broker"
        return out
    if how == "default":
        out["note"] = "no broker is configured; showing the default broker, which answers"
    client = broker_client(settings, url=url)
    broker_dead = 0
    if client is None:
        try:
            depths = _load(AMQP_QUEUE_INSPECTOR)(url, inspect_timeout * 3, DEFAULT_QUEUES)
            broker_dead = depths.pop(AMQP_DEAD_QUEUE, 0)
            out["queues"] = [{"name": n, "depth": d} for n, d in depths.items()]
            out["reachable"] = True
            out["note"] = "RabbitMQ: depths are messages ready; unacknowledged ones are not counted here"
        except (ImportError, AttributeError):
            out["error"] = "queue depths on RabbitMQ need the workers package"
        except Exception as err:
            out["reachable"] = False
            out["error"] = f"{type(err).__name__}: {err}"
    else:
        try:
            depths = queue_depths(client)
            out["queues"] = [{"name": n, "depth": d} for n, d in depths.items()]
            out["unacked"] = int(client.hlen(KOMBU_UNACKED))
            out["reachable"] = True
        except Exception as err:
            out["reachable"] = False
            out["error"] = f"{type(err).__name__}: {err}"
        finally:
            client.close()
    if out["reachable"]:
        try:
            out["dead_letters"] = dead_letter_count(settings) + broker_dead
        except Exception as err:
            out["error"] = f"dead letters unreadable: {type(err).__name__}: {err}"
    inspector = inspector or load_worker_inspector()
    if out["reachable"] is False:
        out["workers"]["note"] = "broker unreachable"
    elif inspector is None:
        out["workers"]["note"] = "worker inspection unavailable (the workers package is not installed)"
    else:
        try:
            out["workers"].update(inspector(url, inspect_timeout))
            out["workers"]["inspected"] = True
        except Exception as err:
            out["workers"]["note"] = f"inspect failed: {type(err).__name__}: {err}"
    return out


def collect_status(store: Store, settings: Settings, *, inspector: WorkerInspector | None = None,
                   schedule: dict[str, timedelta] | None = None, runs: int = 10,
                   probe_default: bool = True) -> dict[str, Any]:
    """Everything ``reprint status`` shows, as one JSON-able dict (also served at ``GET /status``).

    ``probe_default``: when no broker is configured, look for one at the default URL (the CLI does; the API
    does not, so a request never waits on a Redis nobody configured).
    """
    schedule = load_schedule() if schedule is None else schedule
    sources = queries.source_health(store)
    for src in sources:
        interval = schedule.get(src["spec"])
        src["interval_seconds"] = interval.total_seconds() if interval else None
        if interval and src["last_run_at"]:
            last = datetime.fromisoformat(src["last_run_at"].replace("Z", "+00:00"))
            src["next_due"] = (last + interval).isoformat().replace("+00:00", "Z")
    recent, _ = queries.list_runs(store, limit=runs)
    return {
        "generated_at": datetime.now(UTC).isoformat().replace("+00:00", "Z"),
        "database": _safe(store.url),
        "broker": broker_status(settings, inspector, probe_default=probe_default),
        "runs": recent,
        "running": [r["id"] for r in recent if r["running"]],
        "sources": sources,
        "today": queries.day_summary(store),
        "totals": store.counts(),
    }


def render_status(status: dict[str, Any], console: Any) -> None:
    """The human view of ``collect_status`` (rich tables, one screen)."""
    from rich.table import Table
    from rich.text import Text

    b = status["broker"]
    console.print(Text.assemble(("reprint status", "bold"), f"  {status['generated_at']}  db {status['database']}"))
    if b.get("note"):
        console.print(Text(b["note"], style="yellow"))
    if b["configured"]:
        state = {True: ("reachable", "green"), False: ("UNREACHABLE", "bold red"), None: ("unknown", "yellow")}
        label, style = state[b["reachable"]]
        console.print(Text.assemble("broker ", (b["url"] or "", "cyan"), " ", (label, style),
                                    f"  {b['error']}" if b["error"] else ""))
        if b["queues"]:
            t = Table(title="queues", title_justify="left")
            t.add_column("queue")
            t.add_column("depth", justify="right")
            for q in b["queues"]:
                t.add_row(q["name"], str(q["depth"]))
            console.print(t)
        w = b["workers"]
        if w["inspected"]:
            console.print(f"workers alive: {len(w['alive'])} ({', '.join(w['alive']) or 'none'})  "
                          f"running {w['active']}  reserved {w['reserved']}  retries waiting {w['scheduled']}")
            for task in w.get("running") or []:
                console.print(f"  running: {task}")
        else:
            console.print(Text(f"workers: {w['note']}", style="yellow"))
        console.print(f"unacked (delivered, not acknowledged): {b['unacked']}   dead letters: {b['dead_letters']}")
    t = Table(title="sources", title_justify="left")
    for col in ("source", "last run", "pages", "new", "errors", "next due"):
        t.add_column(col, justify="right" if col in ("pages", "new", "errors") else "left", overflow="fold")
    for s in status["sources"]:
        t.add_row(s["spec"], s["last_run_at"] or "-", str(s["pages"]), str(s["new_articles"]),
                  Text(str(s["errors"]), style="red" if s["errors"] else ""), s["next_due"] or "-")
    console.print(t if status["sources"] else Text("no sources yet", style="dim"))
    t = Table(title="recent runs", title_justify="left")
    for col in ("run", "started", "finished", "pages", "new", "errors"):
        t.add_column(col, justify="right" if col in ("run", "pages", "new", "errors") else "left")
    for r in status["runs"]:
        t.add_row(str(r["id"]), r["started_at"] or "-", r["finished_at"] or Text("running", style="yellow"),
                  str(r["pages"]), str(r["new_articles"]), Text(str(r["errors"]), style="red" if r["errors"] else ""))
    console.print(t if status["runs"] else Text("no runs yet", style="dim"))
    d = status["today"]
    flags = ", ".join(f"{k} {v}" for k, v in d["flags"].items())
    console.print(f"today ({d['date']} UTC): new articles {d['new_articles']}, clusters created "
                  f"{d['clusters_created']}, touched {d['clusters_touched']} "
                  f"({d['multi_article_clusters_touched']} with copies), canonical changes {d['canonical_changes']}, "
                  f"flags: {flags}")
    tot = status["totals"]
    console.print(f"store: {tot['articles']} articles in {tot['clusters']} clusters, {tot['pages']} pages, "
                  f"{tot['errors']} errors")
