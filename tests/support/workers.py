"""Helpers for the distributed-deployment tests: a private redis-server, a throwaway PostgreSQL database,
real ``reprint worker`` subprocesses, and small HTML corpora.

Every test gets its own redis-server on a free port (never the shared one on 6379, never another
engineer's), so queues, the shared index and dead letters of one test cannot leak into another; and its
own PostgreSQL database ``reprint_w_<random>``, dropped afterwards. Workers run in their own process
group so a test can SIGKILL a worker with its pool processes, and teardown always kills them.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from pipeline.settings import get_settings
from tests.support import db
from tests.support.db import skip_or_fail

ROOT = Path(__file__).resolve().parents[2]
REDIS_SERVER = shutil.which("redis-server")
#: The node script itself (Debian's /usr/sbin/rabbitmq-server is a wrapper that starts it in a new session
#: through ``su``, out of reach of the test's process group).
RABBITMQ_SERVER = next((p for p in ("/usr/lib/rabbitmq/bin/rabbitmq-server",) if os.path.exists(p)),
                       shutil.which("rabbitmq-server"))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for(predicate: Callable[[], Any], timeout: float, what: str, interval: float = 0.2) -> Any:
    """Poll until ``predicate()`` is truthy; fail the test with ``what`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(interval)


# --- redis ----------------------------------------------------------------------------------------
@dataclass
class RedisServer:
    """A private redis-server (AOF optional) that a test can stop and start again on the same port."""

    directory: Path
    appendonly: bool = False
    port: int = field(default_factory=free_port)
    proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def client(self) -> Any:
        import redis

        return redis.Redis(host="127.0.0.1", port=self.port, socket_timeout=5)

    def start(self) -> None:
        if REDIS_SERVER is None:
            skip_or_fail("redis-server is not installed")
        args = [REDIS_SERVER, "--port", str(self.port), "--bind", "127.0.0.1", "--dir", str(self.directory),
                "--save", "", "--appendonly", "yes" if self.appendonly else "no", "--maxmemory-policy", "noeviction",
                "--logfile", str(self.directory / "redis.log")]
        self.proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

        def up() -> bool:
            if self.proc is not None and self.proc.poll() is not None:
                pytest.fail(f"redis-server on port {self.port} exited: {(self.directory / 'redis.log').read_text()}")
            try:
                info = self.client().info("server")
            except Exception:
                return False
            return int(info["process_id"]) == self.proc.pid  # ours, not someone else's on this port

        wait_for(up, 10, f"redis-server on port {self.port}", 0.05)

    def stop(self) -> None:
        """A clean shutdown (SIGTERM: Redis fsyncs the AOF first), as a container restart does."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self.proc = None


@contextlib.contextmanager
def redis_server(directory: Path, *, appendonly: bool = False) -> Iterator[RedisServer]:
    server = RedisServer(directory, appendonly=appendonly)
    server.start()
    try:
        yield server
    finally:
        server.stop()


# --- rabbitmq -------------------------------------------------------------------------------------
@dataclass
class RabbitServer:
    """A private RabbitMQ node (its own name, ports and data directory) that a test can stop and start again.

    Never the machine's node on 5672: a test restarts its broker, and quorum queues named like the
    deployment's would collide with anyone else's. Debian's ``rabbitmq-server`` switches to the rabbitmq
    user when started as root, so the node's data lives in a directory of its own under the temp dir
    (pytest's are private to root), handed to that user and removed by ``cleanup``.
    """

    directory: Path
    port: int = field(default_factory=free_port)
    dist_port: int = field(default_factory=free_port)
    proc: subprocess.Popen[bytes] | None = None
    data: Path | None = None

    @property
    def url(self) -> str:
        return f"amqp://guest:guest@127.0.0.1:{self.port}//"

    @property
    def node(self) -> str:
        return f"rt{self.port}@localhost"

    def _env(self) -> dict[str, str]:
        assert self.data is not None
        base = self.data
        return {**os.environ,
                "RABBITMQ_NODENAME": self.node, "RABBITMQ_NODE_IP_ADDRESS": "127.0.0.1",
                "RABBITMQ_NODE_PORT": str(self.port), "RABBITMQ_DIST_PORT": str(self.dist_port),
                "RABBITMQ_MNESIA_BASE": str(base / "mnesia"), "RABBITMQ_LOG_BASE": str(base / "log"),
                "RABBITMQ_FEATURE_FLAGS_FILE": str(base / "feature_flags"),
                "RABBITMQ_PID_FILE": str(base / "pid"),
                "RABBITMQ_ENABLED_PLUGINS_FILE": str(base / "enabled_plugins"),
                # no config file: defaults (guest may connect from loopback), not the machine's listeners
                "RABBITMQ_CONFIG_FILE": str(base / "rabbitmq"),
                "RABBITMQ_ADVANCED_CONFIG_FILE": str(base / "advanced.config")}

    def _prepare(self) -> None:
        if self.data is not None:
            return
        import tempfile

        base = self.data = Path(tempfile.mkdtemp(prefix=f"reprint-rmq-{self.port}-"))
        (base / "mnesia").mkdir()
        (base / "log").mkdir()
        (base / "enabled_plugins").write_text("[].\n")
        if os.geteuid() == 0:
            import pwd

            try:
                user = pwd.getpwnam("rabbitmq")
            except KeyError:
                skip_or_fail("rabbitmq-server is installed but there is no rabbitmq user")
            for path in [base, *base.rglob("*")]:
                os.chown(path, user.pw_uid, user.pw_gid)
        else:
            import pwd

            with contextlib.suppress(KeyError):
                if pwd.getpwnam("rabbitmq").pw_uid != os.geteuid():
                    skip_or_fail("a private RabbitMQ node needs root or the rabbitmq user")

    def cleanup(self) -> None:
        if self.data is not None:
            shutil.rmtree(self.data, ignore_errors=True)
            self.data = None

    def start(self, timeout: float = 60) -> None:
        if RABBITMQ_SERVER is None:
            skip_or_fail("rabbitmq-server is not installed")
        self._prepare()
        env = self._env()
        as_user: dict[str, Any] = {}
        if os.geteuid() == 0:  # the node runs as rabbitmq (its cookie and files), in this test's process group
            import pwd

            user = pwd.getpwnam("rabbitmq")
            as_user = {"user": user.pw_uid, "group": user.pw_gid, "extra_groups": []}
            env["HOME"] = user.pw_dir
        log = (self.directory / "rabbitmq-server.out").open("ab")
        self.proc = subprocess.Popen([RABBITMQ_SERVER], env=env, stdout=log, stderr=subprocess.STDOUT,
                                     start_new_session=True, **as_user)
        log.close()

        def up() -> bool:
            if self.proc is not None and self.proc.poll() is not None:
                pytest.fail(f"rabbitmq-server {self.node} exited:\n{self.text()[-3000:]}")
            try:
                import kombu

                with kombu.Connection(self.url, connect_timeout=1) as conn:
                    conn.ensure_connection(max_retries=1, timeout=1)
                    return True
            except Exception:
                return False

        wait_for(up, timeout, f"rabbitmq-server {self.node} on port {self.port}", 0.3)

    def text(self) -> str:
        out = self.directory / "rabbitmq-server.out"
        return out.read_text(errors="replace") if out.exists() else ""

    def stop(self) -> None:
        """A clean stop (SIGTERM to the node's process group); quorum queues stay on disk for the next start."""
        if self.proc is None:
            return
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)
        # the Erlang VM's helpers (epmd is shared and stays; inet_gethost, erl_child_setup) go with the group
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc = None


@contextlib.contextmanager
def rabbitmq_server(directory: Path) -> Iterator[RabbitServer]:
    """A private node of the test's own (for a test that stops and starts its broker)."""
    server = RabbitServer(directory)
    try:
        server.start()
        yield server
    finally:
        server.stop()
        server.cleanup()


def reset_rabbitmq(server: RabbitServer) -> RabbitServer:
    """Delete every queue a deployment declares (stage queues, dead letters, delayed delivery), so a test on a
    shared node starts from an empty broker, whatever arguments (delivery limit) the last test declared."""
    import kombu

    from workers.app import QUEUES
    from workers.broker import DEAD_QUEUE

    names = [*QUEUES, DEAD_QUEUE, *(f"celery_delayed_{level}" for level in range(28))]
    with kombu.Connection(server.url, connect_timeout=5) as connection:
        connection.ensure_connection(max_retries=3)
        for name in names:
            channel = connection.channel()
            with contextlib.suppress(*connection.channel_errors):  # never declared: nothing to delete
                channel.queue_delete(name)
            with contextlib.suppress(Exception):
                channel.close()
    return server


@pytest.fixture(scope="session")
def rabbitmq_node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RabbitServer]:
    """One private RabbitMQ node for the session (a start costs seconds); ``shared_rabbitmq`` resets it per test."""
    with rabbitmq_server(tmp_path_factory.mktemp("rabbitmq")) as server:
        yield server


@pytest.fixture
def shared_rabbitmq(rabbitmq_node: RabbitServer) -> RabbitServer:
    """The session's RabbitMQ node, its queues deleted: for tests that do not restart their broker."""
    return reset_rabbitmq(rabbitmq_node)


# --- postgresql -----------------------------------------------------------------------------------
def pg_database() -> contextlib.AbstractContextManager[str]:
    """A fresh, empty PostgreSQL database (``reprint_w_<random>``), dropped afterwards."""
    return db.pg_database("reprint_w")


# --- commands and workers -------------------------------------------------------------------------
def reprint_cmd(*args: str) -> list[str]:
    """The ``reprint`` console script as this checkout defines it (independent of what pip installed)."""
    return [sys.executable, "-m", "pipeline.cli", *args]


def deployment_env(redis_url: str, db_url: str, *, broker_url: str | None = None, **extra: str) -> dict[str, str]:
    """Environment for workers and commands: short limits so that redelivery happens within seconds.

    visibility_timeout (8 s) > task_time_limit (6 s) + the longest retry wait (1 s), as Settings demands.
    The broker is the Redis server unless ``broker_url`` names another (a RabbitMQ node).
    """
    env = {k: v for k, v in os.environ.items() if not k.startswith("REPRINT_")}
    env.update({
        "REPRINT_BROKER_URL": broker_url or redis_url,
        "REPRINT_REDIS_URL": redis_url,
        "REPRINT_DATABASE_URL": db_url,
        "REPRINT_REDIS_PREFIX": "rw" + secrets.token_hex(3),
        "REPRINT_TASK_SOFT_TIME_LIMIT": "5",
        "REPRINT_TASK_TIME_LIMIT": "6",
        "REPRINT_TASK_RETRY_BACKOFF": "0.2",
        "REPRINT_TASK_RETRY_BACKOFF_MAX": "1",
        "REPRINT_FETCH_MAX_RETRY_AFTER": "1",
        "REPRINT_VISIBILITY_TIMEOUT": "8",
        "REPRINT_UNACKED_RESTORE_INTERVAL": "1",
        "REPRINT_MAX_DELIVERIES": "3",
        "PYTHONUNBUFFERED": "1",
    })
    env.update(extra)
    return env


@pytest.fixture
def deployment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, Any]]:
    """REPRINT_* pointing at a private Redis and a SQLite file; task sends are captured, not published."""
    import workers.tasks as tasks

    with redis_server(tmp_path) as server:
        env = deployment_env(server.url, f"sqlite:///{tmp_path / 'r.db'}")
        for key, value in env.items():
            if key.startswith("REPRINT_"):
                monkeypatch.setenv(key, value)
        get_settings.cache_clear()
        monkeypatch.setattr(tasks, "_process", None)
        sent: list[tuple[str, dict[str, Any]]] = []
        for task in (tasks.discover_source, tasks.fetch_url, tasks.extract_page, tasks.dedup_article):
            monkeypatch.setattr(task, "apply_async",
                                lambda *a, _name=task.name, **kw: sent.append((_name, kw.get("kwargs") or {})))
        try:
            yield {"server": server, "sent": sent, "tasks": tasks, "prefix": env["REPRINT_REDIS_PREFIX"]}
        finally:
            if tasks._process is not None:
                tasks._process.store.close()
            get_settings.cache_clear()


@dataclass
class Worker:
    """A ``reprint worker`` subprocess in its own process group, logging to a file."""

    proc: subprocess.Popen[bytes]
    log: Path
    name: str

    def text(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def wait_ready(self, timeout: float = 30) -> None:
        def ready() -> bool:
            if self.proc.poll() is not None:
                pytest.fail(f"worker {self.name} exited with {self.proc.returncode}:\n{self.text()[-3000:]}")
            return " ready." in self.text()

        wait_for(ready, timeout, f"worker {self.name} to be ready")

    def kill(self, sig: int = signal.SIGKILL) -> None:
        """Signal the whole group: the main process and its pool processes, like a machine going down."""
        if self.proc.poll() is None or sig == signal.SIGKILL:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.proc.pid, sig)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(10)


def start_worker(env: dict[str, str], log_dir: Path, name: str, *, concurrency: int = 1,
                 queues: str | None = None, extra_env: dict[str, str] | None = None) -> Worker:
    args = reprint_cmd("worker", "--concurrency", str(concurrency), "-n", f"{name}@%h", "--loglevel", "INFO",
                       "--without-mingle", "--without-gossip")
    if queues:
        args += ["-Q", queues]
    log = log_dir / f"{name}.log"
    handle = log.open("wb")
    proc = subprocess.Popen(args, env={**env, **(extra_env or {})}, cwd=ROOT, stdout=handle, stderr=subprocess.STDOUT,
                            start_new_session=True)
    handle.close()
    return Worker(proc, log, name)


@contextlib.contextmanager
def workers(*items: Worker) -> Iterator[list[Worker]]:
    """Kill every worker (and its pool) at the end, whatever happened."""
    started = list(items)
    try:
        yield started
    finally:
        for worker in started:
            worker.kill()


def run_reprint(env: dict[str, str], *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(reprint_cmd(*args), env=env, cwd=ROOT, capture_output=True, text=True, timeout=timeout)


# --- corpora --------------------------------------------------------------------------------------
_WORDS = [
    "harbor", "council", "budget", "river", "library", "festival", "ferry", "orchard", "school", "bridge",
    "station", "museum", "market", "winter", "summer", "teachers", "students", "farmers", "workers", "readers",
    "visitors", "mayor", "engineers", "volunteers", "announced", "approved", "delayed", "expanded", "opened",
    "repaired", "funded", "celebrated", "reviewed", "questioned",
]


def article_html(title: str, paragraphs: list[str], *, site: str = "Example Times") -> str:
    body = "\n".join(f"<p>{p}</p>" for p in paragraphs)
    return (f"<!doctype html><html><head><meta charset='utf-8'><title>{title}</title>"
            f"<meta property='og:site_name' content='{site}'></head><body><article><h1>{title}</h1>"
            f"<p class='byline'>By A. Reporter</p>{body}</article></body></html>")


def story(seed: int, n_paragraphs: int = 6) -> list[str]:
    """Deterministic, distinct prose: each seed gives a different article of ~150 words."""
    import random

    rng = random.Random(seed)
    out = []
    for _ in range(n_paragraphs):
        words = [rng.choice(_WORDS) for _ in range(26)]
        out.append(f"In story {seed} the " + " ".join(words) + ".")
    return out


def write_corpus(directory: Path, n_stories: int, *, copies: int = 1,
                 extra: dict[str, str] | None = None) -> list[Path]:
    """``n_stories`` distinct articles, each with ``copies`` republished copies (same text, other site)."""
    directory.mkdir(parents=True, exist_ok=True)
    files = []
    for s in range(n_stories):
        paragraphs = story(1000 + s)
        files.append(directory / f"story-{s:03d}--original.html")
        files[-1].write_text(article_html(f"Story {s}", paragraphs), encoding="utf-8")
        for c in range(copies):
            files.append(directory / f"story-{s:03d}--copy{c}.html")
            files[-1].write_text(article_html(f"Story {s}", paragraphs + [f"Republished from Example Times ({c})."],
                                              site=f"Copy Site {c}"), encoding="utf-8")
    for name, text in (extra or {}).items():
        files.append(directory / name)
        files[-1].write_text(text, encoding="utf-8")
    return files


def normalized_export(text: str) -> dict[str, tuple[tuple[str, ...], bool, tuple[str, ...]]]:
    """url → (the URLs of its cluster, canonical, flags): cluster ids differ between databases, clusters don't."""
    rows = [json.loads(line) for line in text.splitlines() if line.strip()]
    members: dict[Any, list[str]] = {}
    for row in rows:
        members.setdefault(row["cluster_id"], []).append(row["url"])
    return {row["url"]: (tuple(sorted(members[row["cluster_id"]])), bool(row["canonical"]), tuple(row["flags"]))
            for row in rows}


def db_counts(db_url: str) -> dict[str, int]:
    """Pages, articles, distinct page URLs and distinct article pages, straight from the tables."""
    from sqlalchemy import text

    from pipeline.store import make_engine

    engine = make_engine(db_url)
    try:
        with engine.connect() as conn:
            return {
                "pages": conn.execute(text("SELECT count(*) FROM pages")).scalar_one(),
                "page_urls": conn.execute(text("SELECT count(DISTINCT url) FROM pages")).scalar_one(),
                "articles": conn.execute(text("SELECT count(*) FROM articles")).scalar_one(),
                "article_pages": conn.execute(text("SELECT count(DISTINCT page_id) FROM articles")).scalar_one(),
                "article_urls": conn.execute(text("SELECT count(DISTINCT url) FROM articles")).scalar_one(),
            }
    finally:
        engine.dispose()
