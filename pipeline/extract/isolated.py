"""Extraction in worker processes that can be killed: a per-page deadline and memory cap that stop the work.

    with IsolatedExtractor(limits, deadline=30.0, memory_mb=512) as extractor:
        article, warning = extractor.extract(page)

or ``extract_isolated(page, settings)``, which keeps one such extractor per process for its settings (the
embedded runner and the Celery extract task call it, once per page).

The contract: ``extract`` returns or raises what ``pipeline.extract.extractor.extract`` would (its
ExtractError subclasses, or an unexpected exception, as they are), plus three outcomes of its own, all
``ExtractError`` subclasses with stage ``extract``:

- ``PageTimeout``: the page ran past ``deadline`` seconds (wall clock). Its worker is SIGKILLed.
- ``PageOutOfMemory``: the page needed more than ``memory_mb`` more address space than its worker had
  before it (the worker caps itself with ``RLIMIT_AS``, then retires).
- ``ExtractorCrashed``: the worker died (a signal, the kernel's OOM killer, a C library), or none could start.

Either way the page alone fails: the next one gets a fresh worker, and the calling process never holds a
page's tree, so its memory stays what it was. The caller keeps the page (the runners store it before
they record the error), so a later run of the source extracts it again.

How:
- Workers are persistent processes, one page at a time each, over a socket (the Page goes in, the
  Article or the error comes back: a fraction of a millisecond a page). ``processes`` of them at most
  serve concurrent callers (threads); one serves one caller.
- A worker is a fresh interpreter (``python -P -m pipeline.extract._worker``, on this process's import
  path, without the working directory before it) that imports the extractor and nothing else, not
  the database, HTTP or Celery modules of the process that asked. Starting one costs 0.5-0.7 s of CPU
  (measured), paid when the first page comes and after a kill, which only a pathological page causes. Not a
  fork: a fork of the caller (many threads: the event loop, the store thread, a Celery pool) is unsafe,
  and multiprocessing's fork server re-imports the caller's ``__main__`` in every child it starts (for
  ``reprint``, the whole CLI).
- An extractor belongs to the process that made it: after a fork the child starts its own workers.
- POSIX only (the worker's socket is passed as a file descriptor).
"""

from __future__ import annotations

import atexit
import contextlib
import logging
import os
import select
import socket
import subprocess
import sys
import threading
from dataclasses import dataclass
from multiprocessing.connection import Connection
from typing import TYPE_CHECKING, Any

from pipeline.errors import ExtractorCrashed, PageTimeout
from pipeline.extract.limits import DEFAULT_LIMITS, ExtractLimits

if TYPE_CHECKING:
    from pipeline.records import Article, Page
    from pipeline.settings import Settings

_WORKER_MODULE = "pipeline.extract._worker"
#: Seconds a new worker may take to be ready (an interpreter start, the extractor's imports, a warm-up).
START_TIMEOUT = 120.0
#: Seconds a worker asked to exit (on close) gets before it is killed.
STOP_TIMEOUT = 2.0


def _worker_environment() -> dict[str, str]:
    """The environment of a worker: this one, with this process's import path (so that the worker imports
    the same ``pipeline``, whatever put it on the path here: PYTHONPATH, a test runner, a script's folder)."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(entry or os.getcwd() for entry in sys.path)
    return env


def _log_level() -> int | None:
    """The level a worker logs at: this process's, if it logs anywhere (None: it has no handlers either)."""
    root = logging.getLogger()
    return root.getEffectiveLevel() if root.handlers else None


@dataclass(frozen=True, slots=True)
class WorkerUsage:
    """What an extractor's workers have used, for benchmarks and reports."""

    cpu_seconds: float  # CPU time of every worker it ran, killed ones included
    peak_rss: int  # bytes: the highest peak RSS of a worker above its RSS when it was ready (its baseline)
    pages: int  # pages sent to a worker
    restarts: int  # workers stopped after a timeout, a crash or running out of memory


class _Worker:
    """One worker process and the parent's end of its socket."""

    def __init__(self, limits: ExtractLimits, memory_bytes: int | None) -> None:
        ours, theirs = socket.socketpair()
        try:
            self.process = subprocess.Popen(
                # -P: the working directory does not go first on the path (it may hold another checkout)
                [sys.executable, "-P", "-m", _WORKER_MODULE, str(theirs.fileno())], pass_fds=[theirs.fileno()],
                stdin=subprocess.DEVNULL, env=_worker_environment(), close_fds=True,
            )
        except BaseException:
            ours.close()
            raise
        finally:
            theirs.close()
        self.conn = Connection(ours.detach())
        self._readable = select.poll()  # one poll object for the worker's life: cheaper than a wait() per page
        self._readable.register(self.conn.fileno(), select.POLLIN)
        self.cpu = 0.0  # CPU seconds at its last report
        self.peak_rss = 0
        try:
            self.conn.send((limits, memory_bytes, _log_level()))
            _ready, rss, _none, _usage, _retire = self._reply(START_TIMEOUT, "start")
        except BaseException:
            self.kill()
            raise
        self.start_rss = rss if rss is not None else self.peak_rss

    @property
    def alive(self) -> bool:
        """Open, and with nothing to read: an idle worker says nothing, a dead one's socket reads as closed."""
        return not self.conn.closed and not self._readable.poll(0)

    def _reply(self, timeout: float, doing: str, url: str | None = None) -> Any:
        if not self._readable.poll(timeout * 1000):
            self.kill()
            if doing == "start":
                raise ExtractorCrashed(f"the extraction process did not start within {timeout:g} s", url=url)
            raise PageTimeout(f"extraction ran past its {timeout:g} s deadline (extract_deadline); stopped", url=url)
        try:
            reply = self.conn.recv()
        except (EOFError, OSError):
            raise self._died(url) from None
        self.cpu, peak = reply[3]
        self.peak_rss = max(self.peak_rss, peak)
        return reply

    def _died(self, url: str | None) -> ExtractorCrashed:
        code = self.kill()
        how = f"killed by signal {-code}" if code is not None and code < 0 else f"exit code {code}"
        return ExtractorCrashed(f"the extraction process died ({how})", url=url)

    def run(self, page: Page, deadline: float) -> tuple[Article, str | None]:
        """The page's article and warning, or its error (the worker is killed if it was not answering)."""
        try:
            try:
                self.conn.send(page)
            except OSError:  # it died while idle
                raise self._died(page.url) from None
            status, payload, warning, _usage, retire = self._reply(deadline, "extract", page.url)
        except BaseException:
            self.kill()  # a timeout, a crash, or the caller interrupted (Ctrl-C, a Celery time limit)
            raise
        if retire:
            self.stop()
        if status == "error":
            raise payload
        return payload, warning

    def kill(self) -> int | None:
        """Stop the worker now (SIGKILL) and reap it, taking its CPU and peak memory; its exit code."""
        self.conn.close()
        if self.process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                self.process.kill()
            self._reap()
        return self.process.returncode

    def stop(self) -> None:
        """Ask the worker to exit; kill it if it does not."""
        if self.alive:
            with contextlib.suppress(OSError):
                self.conn.send(None)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.process.wait(STOP_TIMEOUT)
        self.kill()

    def _reap(self) -> None:
        try:
            _pid, status, usage = os.wait4(self.process.pid, 0)
        except ChildProcessError:  # reaped already (by a wait elsewhere)
            self.process.poll()
            return
        self.process.returncode = os.waitstatus_to_exitcode(status)
        self.cpu = max(self.cpu, usage.ru_utime + usage.ru_stime)
        self.peak_rss = max(self.peak_rss, usage.ru_maxrss * 1024)


class IsolatedExtractor:
    """``extract`` in worker processes, with a deadline and a memory cap per page (see the module docstring)."""

    def __init__(self, limits: ExtractLimits = DEFAULT_LIMITS, *, deadline: float = 30.0,
                 memory_mb: int | None = 512, processes: int = 1) -> None:
        if deadline <= 0 or processes < 1 or (memory_mb is not None and memory_mb < 1):
            raise ValueError("deadline must be positive, processes and memory_mb at least 1")
        self.limits = limits
        self.deadline = deadline
        self.memory_bytes = memory_mb * 1024 * 1024 if memory_mb else None
        self.processes = processes
        self._slots = threading.BoundedSemaphore(processes)
        self._lock = threading.Lock()
        self._idle: list[_Worker] = []
        self._busy: set[_Worker] = set()
        self._pid = os.getpid()
        self._cpu_done = 0.0  # CPU of the workers that are gone
        self._peak = self._pages = self._restarts = 0
        self._closed = False

    @classmethod
    def from_settings(cls, settings: Settings) -> IsolatedExtractor:
        """An extractor with the settings' limits, ``extract_deadline``, ``extract_memory_mb`` (0: no cap) and
        ``extract_processes``."""
        return cls(ExtractLimits.from_settings(settings), deadline=settings.extract_deadline,
                   memory_mb=settings.extract_memory_mb or None, processes=settings.extract_processes)

    def extract(self, page: Page) -> tuple[Article, str | None]:
        """The page's Article and warning, extracted in a worker. Raises ExtractError subclasses (with
        PageTimeout, PageOutOfMemory, ExtractorCrashed), or an unexpected error of the extractor."""
        if self._closed:
            raise RuntimeError("this IsolatedExtractor is closed")
        self._forget_after_fork()
        with self._slots:
            worker = self._take(page.url)
            try:
                return worker.run(page, self.deadline)
            finally:
                self._give_back(worker)

    def worker_pids(self) -> list[int]:
        """Process ids of the workers running now (idle or busy)."""
        with self._lock:
            return sorted(w.process.pid for w in (*self._idle, *self._busy) if w.process.returncode is None)

    def usage(self) -> WorkerUsage:
        """CPU, peak memory, pages and restarts of the workers so far."""
        with self._lock:
            running = sum(w.cpu for w in (*self._idle, *self._busy))
            return WorkerUsage(self._cpu_done + running, self._peak, self._pages, self._restarts)

    def close(self) -> None:
        """Stop every idle worker (a busy one is stopped when its page is done)."""
        with self._lock:
            self._closed = True
            idle, self._idle = self._idle, []
        for worker in idle:
            worker.stop()
            self._retire(worker, restart=False)

    def __enter__(self) -> IsolatedExtractor:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def _take(self, url: str) -> _Worker:
        with self._lock:
            self._pages += 1
            worker = self._idle.pop() if self._idle else None
        if worker is not None and not worker.alive:  # it died while idle: not this page's fault
            worker.stop()
            self._retire(worker, restart=True)
            worker = None
        if worker is None:
            try:
                worker = _Worker(self.limits, self.memory_bytes)
            except ExtractorCrashed:
                raise
            except Exception as err:
                raise ExtractorCrashed(f"could not start an extraction process: {type(err).__name__}: {err}",
                                       url=url) from err
        with self._lock:
            self._busy.add(worker)
        return worker

    def _give_back(self, worker: _Worker) -> None:
        with self._lock:
            self._busy.discard(worker)
            if worker.alive and not self._closed:
                self._peak = max(self._peak, worker.peak_rss - worker.start_rss)
                self._idle.append(worker)
                return
        worker.stop()
        self._retire(worker, restart=not self._closed)

    def _retire(self, worker: _Worker, *, restart: bool) -> None:
        with self._lock:
            self._cpu_done += worker.cpu
            self._peak = max(self._peak, worker.peak_rss - worker.start_rss)
            self._restarts += restart

    def _forget_after_fork(self) -> None:
        """In a forked child, the parent's workers are the parent's: close our copies of their sockets (never
        tell them to stop), and start afresh. Only the forking thread lives on in the child, so the locks
        are replaced rather than taken (another thread may have held one at the fork)."""
        if os.getpid() == self._pid:
            return
        for worker in (*self._idle, *self._busy):
            with contextlib.suppress(OSError):
                worker.conn.close()
        self._idle, self._busy = [], set()
        self._lock = threading.Lock()
        self._slots = threading.BoundedSemaphore(self.processes)
        self._pid = os.getpid()


# --- one extractor per process, for the runners -------------------------------------------------------
_shared: tuple[tuple[Any, ...], IsolatedExtractor] | None = None
_shared_lock = threading.Lock()


def shared_extractor(settings: Settings) -> IsolatedExtractor:
    """This process's extractor for these settings (made on first use; a different configuration replaces it)."""
    global _shared
    key = (ExtractLimits.from_settings(settings), settings.extract_deadline, settings.extract_memory_mb,
           settings.extract_processes, os.getpid())
    with _shared_lock:
        if _shared is not None and _shared[0] == key:
            return _shared[1]
        previous, _shared = _shared, (key, IsolatedExtractor.from_settings(settings))
    if previous is not None and previous[0][-1] == os.getpid():
        previous[1].close()
    return _shared[1]


def close_shared() -> None:
    """Stop this process's shared extractor, if it has one (at exit, and for tests)."""
    global _shared
    with _shared_lock:
        previous, _shared = _shared, None
    if previous is not None and previous[0][-1] == os.getpid():
        previous[1].close()


def shared_usage() -> WorkerUsage:
    """What this process's shared extractor's workers have used (zeros before the first page)."""
    with _shared_lock:
        current = _shared
    return current[1].usage() if current is not None else WorkerUsage(0.0, 0, 0, 0)


def _after_fork_in_child() -> None:
    global _shared_lock
    _shared_lock = threading.Lock()  # the shared extractor itself is the parent's: see shared_extractor's key


atexit.register(close_shared)
os.register_at_fork(after_in_child=_after_fork_in_child)


def extract_isolated(page: Page, settings: Settings | None = None) -> tuple[Article, str | None]:
    """Extract one page within the settings' limits: in this process's shared worker pool, or in this
    process itself when ``extract_isolate`` is off (no deadline, no memory cap). Raises as
    ``IsolatedExtractor.extract``."""
    if settings is None:
        from pipeline.settings import get_settings

        settings = get_settings()
    if not settings.extract_isolate:
        from pipeline.extract.extractor import extract

        return extract(page, ExtractLimits.from_settings(settings))
    return shared_extractor(settings).extract(page)
