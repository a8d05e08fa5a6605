"""wordfreq's lists compiled for lookup (pipeline.dedup.wordlists) give wordfreq's own answers."""

from __future__ import annotations

import gzip
import logging
import random
from importlib.metadata import version
from pathlib import Path

import msgpack
import pytest
import wordfreq

from pipeline.dedup import rarity, wordlists


def _samples(lang: str, seed: int) -> list[str]:
    words = list(wordfreq.iter_wordlist(lang))
    rnd = random.Random(seed)
    single = rnd.sample(words, 400) + words[:50] + words[-50:]
    phrases = [" ".join(rnd.sample(words[:20_000], rnd.randint(2, 3))) for _ in range(200)]
    odd = ["Hello", "straße", "groß", "l'homme", "2020", "abc123", "1,000", "the 1990s", "$5", "e-mail", "don't",
           "naïve", "İstanbul", "zzqxjv", "zzqxjv the", "", "  ", "—"]
    return single + phrases + odd


@pytest.mark.parametrize("lang", ["en", "de", "tr"])
def test_a_compiled_list_answers_as_wordfreq_does(lang: str, tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(rarity, "_cache_dir", lambda: tmp_path)
    rarity.zipf.cache_clear()
    try:
        for word in _samples(lang, seed=len(lang)):
            assert rarity.zipf(word, lang) == wordfreq.zipf_frequency(word, lang), (word, lang)
    finally:
        rarity.zipf.cache_clear()
    # the list was compiled once, under the cache directory, named for wordfreq's version and the source's size
    (compiled,) = (tmp_path / "wordfreq").iterdir()
    assert compiled.name == wordlists.compiled_name(wordlists.source_file(lang))
    assert f"-{version('wordfreq')}-" in compiled.name


def test_a_compiled_list_is_reused_not_rebuilt(tmp_path: Path) -> None:
    tmp_path = tmp_path / "a cache #1?"  # a path that is no plain URI: the list is opened through one
    first = wordlists.wordlist("fr", tmp_path)
    assert first is not None and first.bucket("maison") is not None
    assert first.bucket("zzqxjv") is None
    stamp = first.path.stat().st_mtime_ns
    wordlists.wordlist.cache_clear()  # as a new process would
    again = wordlists.wordlist("fr", tmp_path)
    assert again is not None and again.path == first.path and again.path.stat().st_mtime_ns == stamp
    assert again.bucket("maison") == first.bucket("maison")
    assert not [p for p in (tmp_path / "wordfreq").iterdir() if p.suffix == ".part"]


def test_a_cache_that_cannot_be_written_falls_back_to_wordfreq(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                               caplog: pytest.LogCaptureFixture) -> None:
    blocked = tmp_path / "not-a-dir"
    blocked.write_text("a file where the cache directory should be")
    with caplog.at_level(logging.WARNING, logger="pipeline.dedup.wordlists"):
        assert wordlists.wordlist("es", blocked) is None
    assert "cannot be compiled" in caplog.text and "es" in caplog.text
    monkeypatch.setattr(rarity, "_cache_dir", lambda: blocked)
    rarity.zipf.cache_clear()
    try:
        assert rarity.zipf("casa grande", "es") == wordfreq.zipf_frequency("casa grande", "es") > 0
    finally:
        rarity.zipf.cache_clear()


def test_a_damaged_source_is_refused_and_nothing_is_left_behind(tmp_path: Path) -> None:
    bad = tmp_path / "large_xx.msgpack.gz"
    with gzip.open(bad, "wb") as fh:
        fh.write(msgpack.packb([{"format": "something else"}, ["word"]]))
    with pytest.raises(ValueError, match="not a cBpack word list"):
        wordlists.compile_list(bad, tmp_path / "out" / "xx.sqlite")
    assert not (tmp_path / "out" / "xx.sqlite").exists()

    good = tmp_path / "large_yy.msgpack.gz"
    with gzip.open(good, "wb") as fh:  # bucket 0 holds "a"; bucket 2 holds "b" and, again, "a": the last wins
        fh.write(msgpack.packb([{"format": "cB", "version": 1}, ["a"], [], ["a", "b"]]))
    dest = tmp_path / "out" / "yy.sqlite"
    wordlists.compile_list(good, dest)
    table = wordlists.WordList(dest)
    assert (table.bucket("a"), table.bucket("b"), table.bucket("c")) == (2, 2, None)
    assert [p.name for p in dest.parent.iterdir()] == ["yy.sqlite"]
