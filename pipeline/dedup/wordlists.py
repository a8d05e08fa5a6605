"""wordfreq's word lists, compiled once per machine into an indexed file a process reads word by word.

wordfreq answers a lookup from a dict of its whole list, built on first use in each process: 0.12-0.29 s and
300,000-630,000 entries a language (German is the largest), so a run that weighed the word swaps of English and
German copies paid half a second before its first answer. Weighing a spin needs the frequencies of a few
hundred words. Here each list a run needs is compiled, the first time it is needed on this machine, into an SQLite
file under ``settings.cache_dir`` (one B-tree keyed on the word); a process then opens it and reads only the words
it asks for. The file's name carries wordfreq's version and the source file's size, so an upgraded wordfreq
compiles anew; it is written under a temporary name and renamed into place, so processes that compile at once
each leave a whole file. Where the directory cannot be written, :func:`wordlist` returns None and the caller
uses wordfreq itself.

A list maps a word to its bucket: the index of the list it sits in within wordfreq's cBpack file, its frequency
being ``10 ** (-bucket / 100)``. A word in two buckets keeps the last, as wordfreq's own dict does.
"""

from __future__ import annotations

import gzip
import logging
import os
import sqlite3
import tempfile
import threading
from functools import cache
from importlib.metadata import PackageNotFoundError, version
from importlib.util import find_spec
from pathlib import Path

log = logging.getLogger(__name__)

#: wordfreq's "best" list of a language: the large one where there is one
_LIST_NAMES = ("large", "small")


class WordList:
    """One compiled list, opened read-only; safe to share between threads."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._db = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True, check_same_thread=False)
        self._lock = threading.Lock()

    def bucket(self, word: str) -> int | None:
        """The word's bucket (frequency ``10 ** (-bucket / 100)``), or None when the list does not hold it."""
        with self._lock:
            row = self._db.execute("SELECT bucket FROM words WHERE word = ?", (word,)).fetchone()
        return None if row is None else int(row[0])


def source_file(lang: str) -> Path | None:
    """wordfreq's cBpack file for ``lang`` (its large list, else its small one), found without importing
    wordfreq; None when wordfreq or the language is not there."""
    spec = find_spec("wordfreq")
    if spec is None or not spec.submodule_search_locations:
        return None
    data = Path(next(iter(spec.submodule_search_locations))) / "data"
    for name in _LIST_NAMES:
        path = data / f"{name}_{lang}.msgpack.gz"
        if path.is_file():
            return path
    return None


def compiled_name(source: Path) -> str:
    """The compiled file's name: the list's, wordfreq's version and the source's size."""
    try:
        release = version("wordfreq")
    except PackageNotFoundError:
        release = "unknown"
    return f"{source.name.split('.')[0]}-{release}-{source.stat().st_size}.sqlite"


def read_buckets(source: Path) -> dict[str, int]:
    """word → bucket from a cBpack file (gzip'd msgpack: a header, then one list of words per centibel)."""
    import msgpack

    with gzip.open(source, "rb") as fh:
        data = msgpack.load(fh, raw=False)
    header = data[0] if data else None
    if not isinstance(header, dict) or header.get("format") != "cB" or header.get("version") != 1:
        raise ValueError(f"{source}: not a cBpack word list (header {header!r})")
    return {word: bucket for bucket, words in enumerate(data[1:]) for word in words}


def compile_list(source: Path, dest: Path) -> None:
    """Write ``source``'s words and buckets to the SQLite file ``dest``, replacing it whole."""
    rows = read_buckets(source)
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.", suffix=".part")
    os.close(fd)
    try:
        db = sqlite3.connect(tmp)
        try:
            db.execute("PRAGMA journal_mode = OFF")
            db.execute("PRAGMA synchronous = OFF")
            db.execute("CREATE TABLE words (word TEXT PRIMARY KEY, bucket INTEGER NOT NULL) WITHOUT ROWID")
            db.executemany("INSERT INTO words VALUES (?, ?)", rows.items())  # sorting first saves no time
            db.commit()
        finally:
            db.close()
        os.chmod(tmp, 0o644)  # mkstemp's file is the owner's only; a shared cache is read by other users' workers
        os.replace(tmp, dest)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


@cache
def wordlist(lang: str, cache_dir: Path) -> WordList | None:
    """The compiled list of ``lang`` under ``cache_dir``, compiled now if this machine has none yet; None when
    wordfreq has no list for it or it cannot be compiled or opened there (the caller then asks wordfreq)."""
    source = source_file(lang)
    if source is None:
        return None
    try:
        dest = cache_dir / "wordfreq" / compiled_name(source)
        if not dest.is_file():
            compile_list(source, dest)
            log.info("compiled wordfreq's %s list into %s", lang, dest)
        return WordList(dest)
    except (OSError, sqlite3.Error, ValueError) as err:
        log.warning("wordfreq's %s list cannot be compiled under %s (%s); loading it whole instead",
                    lang, cache_dir, err)
        return None


__all__ = ["WordList", "compile_list", "compiled_name", "read_buckets", "source_file", "wordlist"]
