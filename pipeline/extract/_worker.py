"""The worker side of isolated extraction (``pipeline.extract.isolated``): extract the pages sent, one at a time.

Run as ``python -m pipeline.extract._worker FD``, where FD is the worker's end of a socket pair. It imports
the extractor and nothing else (not the database, HTTP or Celery modules of the process that asked),
extracts a warm-up page (the first extraction in a process pays for lazy set-up), says it is ready and
serves until told to stop or until the parent goes away.

Messages (pickled, ``multiprocessing.connection`` framing) over that socket:

    parent → worker   (limits, memory_bytes, log_level)              once, first
    worker → parent   ("ready", rss, None, usage, False)             once, when it is ready
    parent → worker   a Page                                         or None: exit
    worker → parent   ("ok", article, warning, usage, False)
                      ("error", exception, None, usage, retire)

``usage`` is ``(CPU seconds, peak RSS in bytes)`` of the worker so far, ``rss`` its RSS once ready.
``retire`` says the worker exits after this reply (it ran out of memory: what it holds cannot be
trusted). Before each page the worker caps its address space at what it maps plus ``memory_bytes``
(``RLIMIT_AS``), so that a page that needs more fails alone with ``PageOutOfMemory``; the parent kills
the worker past the page's deadline.
"""

from __future__ import annotations

import contextlib
import gc
import logging
import os
import resource
import signal
import sys
from multiprocessing.connection import Connection

from pipeline.errors import ExtractorCrashed, PageOutOfMemory
from pipeline.extract.extractor import extract
from pipeline.extract.limits import ExtractLimits
from pipeline.records import Page

_PAGE_SIZE = resource.getpagesize()
#: Pages extracted before a worker says it is ready: one article. Not a page that needs trafilatura's fallback
#: extractors: they load their tables (0.3 s of CPU, some 30 MB) on first use, and with the fast path first
#: (``ExtractLimits.fallbacks``) most runs never need them; the first page that does pays for them.
_WARM_UP = (
    Page("https://warm-up.invalid/", (
        b"<html><head><title>Warm-up</title></head><body><article><h1>Warm-up</h1>"
        + b"<p>The first extraction in a process compiles and loads what later ones reuse. " * 6
        + b"</p></article></body></html>"
    ), headers={"content-type": "text/html; charset=utf-8"}),
)


def _open_status() -> int | None:
    try:
        return os.open("/proc/self/status", os.O_RDONLY)
    except OSError:
        return None


_STATUS = _open_status()  # kept open: a re-read from offset 0 is a fresh report, and cheaper than an open


def _peak_rss(own: resource.struct_rusage) -> int:
    """Peak RSS in bytes: the kernel's high-water mark of this process's own memory (VmHWM). Not
    ``ru_maxrss`` where VmHWM can be read: that keeps the peak of the parent's memory the process shared
    between its fork and its exec, a hundred MB for an ingesting process."""
    if _STATUS is not None:
        status = os.pread(_STATUS, 4096, 0)
        at = status.find(b"VmHWM:")
        if at >= 0:
            return int(status[at + 6 : status.index(b"kB", at)]) * 1024
    return own.ru_maxrss * 1024


def _usage() -> tuple[float, int]:
    own = resource.getrusage(resource.RUSAGE_SELF)
    return own.ru_utime + own.ru_stime, _peak_rss(own)


def _memory(field: int) -> int | None:
    """Bytes of address space (field 0) or resident memory (field 1) the process has now (Linux), or None
    where that cannot be read."""
    try:
        with open("/proc/self/statm", "rb") as statm:
            return int(statm.read().split()[field]) * _PAGE_SIZE
    except (OSError, ValueError, IndexError):
        return None


def _cap_memory(extra: int | None) -> None:
    """Let the process map at most ``extra`` more bytes from now on; None lifts the cap."""
    _soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    mapped = _memory(0) if extra is not None else None
    limit = hard if mapped is None or extra is None else mapped + extra
    if hard != resource.RLIM_INFINITY:
        limit = min(limit, hard)
    resource.setrlimit(resource.RLIMIT_AS, (limit, hard))


Reply = tuple[str, object, "str | None", tuple[float, int], bool]


def _extract(page: Page, limits: ExtractLimits, memory_bytes: int | None) -> Reply:
    """One page's reply (see the module docstring)."""
    _cap_memory(memory_bytes)
    try:
        article, warning = extract(page, limits)
    except MemoryError:
        _cap_memory(None)
        limit = f"{memory_bytes // (1024 * 1024)} MB" if memory_bytes else "the memory there is"
        error = PageOutOfMemory(f"extraction needed more than {limit} (extract_memory_mb)", url=page.url)
        return ("error", error, None, _usage(), True)
    except Exception as err:
        return ("error", err, None, _usage(), False)
    finally:
        _cap_memory(None)
    return ("ok", article, warning, _usage(), False)


def serve(conn: Connection, limits: ExtractLimits, memory_bytes: int | None) -> None:
    """The worker's loop: until the parent sends None or goes away."""
    while True:
        try:
            page = conn.recv()
        except EOFError:
            return  # the parent is gone
        if page is None:
            return
        reply = _extract(page, limits, memory_bytes)
        try:
            conn.send(reply)
        except Exception as err:  # an exception that does not pickle: its type and message still go back
            _status, error, _warning, usage, retire = reply
            message = f"{type(error).__name__}: {error} (not sent whole: {type(err).__name__})"
            conn.send(("error", ExtractorCrashed(message, url=page.url), None, usage, retire))
        if reply[4]:
            return


def main(argv: list[str]) -> None:
    """``FD``: serve on that socket; the limits, the memory cap and the parent's log level come first."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is for the parent, which then stops its workers
    conn = Connection(int(argv[0]))
    limits, memory_bytes, log_level = conn.recv()
    if log_level is not None:  # the parent logs: so does the worker, at its level, to the stderr they share
        logging.basicConfig(level=log_level, format="%(levelname)s %(name)s (extraction worker): %(message)s")
    for page in _WARM_UP:
        with contextlib.suppress(Exception):
            extract(page, limits)
    gc.freeze()  # the modules and the warm-up's caches: never garbage, never walked again by the collector
    # the peak so far is the imports' and the warm-up's: pages are measured from here
    with contextlib.suppress(OSError), open("/proc/self/clear_refs", "w") as clear_refs:
        clear_refs.write("5")
    conn.send(("ready", _memory(1), None, _usage(), False))
    serve(conn, limits, memory_bytes)


if __name__ == "__main__":
    main(sys.argv[1:])
    # done: no interpreter teardown (freeing every module costs a worker 0.05 s of CPU; it holds nothing to save)
    logging.shutdown()
    with contextlib.suppress(Exception):
        sys.stderr.flush()
    os._exit(0)
