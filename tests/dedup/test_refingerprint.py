"""A store made by an older fingerprint (``w3`` and ``w1``) is refused, not matched half-blind, and
``reprint index refingerprint`` brings it up to this version; the content-word kind leaves the commonest words out."""

from __future__ import annotations

import random
from pathlib import Path

import pytest
from sqlalchemy import func, select

import pipeline.dedup.refingerprint as refingerprint_module
from pipeline.dedup import DecisionPolicy, Deduplicator
from pipeline.dedup.fingerprint import FINGERPRINT_VERSION, content_words, fingerprint_tokens, minhash_of
from pipeline.dedup.frequent import WORDS as FREQUENT_WORDS
from pipeline.dedup.index import StoreLSHIndex, band_keys
from pipeline.dedup.refingerprint import FINGERPRINT_MARK, refingerprint, stored_version
from pipeline.errors import StaleSignatures
from pipeline.ingest.steps import ingest_page
from pipeline.records import Page, Signature
from pipeline.settings import Settings
from pipeline.store import Store
from pipeline.store.schema import LSHBandRow
from pipeline.text import tokenize
from tests.support.cli import cli
from tests.support.pages import UNRELATED_PARAGRAPHS
from tests.support.world import PIER, PIER_TITLE, page, spin

ORIGINAL = "https://westmereherald.example/2025/pier"


def original() -> Page:
    return Page(ORIGINAL, page(PIER_TITLE, PIER, site="Westmere Herald", host="westmereherald.example"))


def spun_copy() -> Page:
    return Page("https://copier.example/pier", page(PIER_TITLE, [spin(p) for p in PIER], site="Copier",
                                                      host="copier.example"))


def other(n: int) -> Page:
    text = UNRELATED_PARAGRAPHS[n % len(UNRELATED_PARAGRAPHS)]
    return Page(f"https://elsewhere.example/{n}",
                page(f"Story {n}", [text], site="Elsewhere", host="elsewhere.example"))


def ingest(store: Store, *pages: Page) -> Deduplicator:
    dedup = Deduplicator(store, Settings(), policy=DecisionPolicy.immediate())
    for p in pages:
        ingest_page(p, store, dedup, None)
    return dedup


def make_version_1(store: Store) -> None:
    """What an older reprint left: every signature of kinds ``w3`` and ``w1`` (all words), no version recorded."""
    old = []
    for article_id, text in store.article_texts_after(0):
        tokens = tokenize(text)
        sig = fingerprint_tokens(tokens)
        old.append((article_id, Signature({"w3": sig.values["w3"], "w1": minhash_of(set(tokens), 128)}, len(tokens))))
    store.replace_signatures(old)
    store.set_mark(FINGERPRINT_MARK, 0)


def same_cluster(store: Store, *urls: str) -> bool:
    ids = [store.article_by_url(url)[0] for url in urls]  # type: ignore[index]
    return len(set(store.cluster_of(ids).values())) == 1


def bands(store: Store) -> int:
    with store.engine.connect() as c:
        return int(c.scalar(select(func.count()).select_from(LSHBandRow)) or 0)


def test_a_new_store_takes_this_version_and_an_old_one_is_refused_until_refingerprinted(store: Store) -> None:
    ingest(store, original(), other(0), other(1))
    assert stored_version(store) == FINGERPRINT_VERSION == store.mark(FINGERPRINT_MARK)
    make_version_1(store)
    assert stored_version(store) == 1
    with pytest.raises(StaleSignatures, match="reprint index refingerprint"):
        Deduplicator(store, Settings())

    done: list[object] = []
    assert refingerprint(store, 128, progress=done.append, indexing=lambda: done.append("indexing")) == 3
    assert done == [3, "indexing"]
    assert sorted(store.first_signature_kinds() or []) == ["c1", "w3"]
    assert stored_version(store) == FINGERPRINT_VERSION
    # the persisted index holds the new signatures' buckets, every article written
    assert bands(store) > 0 and store.mark(StoreLSHIndex.MARK) == max(i for i, _t in store.article_texts_after(0))
    assert store.indexed_articles() == {i for i, _t in store.article_texts_after(0)}

    # the old article is found again through its new signature: the spun copy joins it
    ingest(store, spun_copy())
    assert same_cluster(store, ORIGINAL, spun_copy().url)


def test_a_refingerprint_cut_short_leaves_the_store_refused_and_runs_again(store: Store,
                                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    ingest(store, original(), other(0), other(1))
    make_version_1(store)
    monkeypatch.setattr(refingerprint_module, "BATCH", 1)

    def stop(done: int) -> None:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        refingerprint(store, 128, progress=stop)
    # the first article has its new signature already, the others not: the store must still be refused
    assert sorted(store.first_signature_kinds() or []) == ["c1", "w3"]
    with pytest.raises(StaleSignatures):
        Deduplicator(store, Settings())
    assert refingerprint(store, 128) == 3
    Deduplicator(store, Settings())


def test_the_commands_say_what_to_run_and_run_it(tmp_path: Path, sqlite_url: str) -> None:
    store = Store(sqlite_url)
    ingest(store, original())
    make_version_1(store)
    store.close()
    folder = tmp_path / "pages"
    folder.mkdir()
    (folder / "copy.html").write_bytes(spun_copy().body)

    refused = cli("ingest", "--db", sqlite_url, "--no-progress", str(folder))
    assert refused.exit_code == 2 and "reprint index refingerprint" in refused.stderr
    assert "Traceback" not in refused.output

    upgraded = cli("index", "refingerprint", "--db", sqlite_url, "--no-progress")
    assert upgraded.exit_code == 0, upgraded.output
    assert "re-fingerprinted 1 articles (version 1 -> 2) and re-indexed them" in upgraded.stdout

    again = cli("ingest", "--db", sqlite_url, "--no-progress", str(folder))
    assert again.exit_code == 0, again.output
    store = Store(sqlite_url)
    try:
        assert same_cluster(store, ORIGINAL, (folder / "copy.html").as_uri())
    finally:
        store.close()


def test_content_words_leave_the_commonest_words_out() -> None:
    rng = random.Random(3)
    common = [w for w in sorted(FREQUENT_WORDS) if w.isascii() and w.isalpha()][:150]
    # two texts that share only common words (as every two articles of a language do), each with its own others
    a = [rng.choice(common) for _ in range(600)] + [f"alpha{n}" for n in range(60)]
    b = [rng.choice(common) for _ in range(600)] + [f"beta{n}" for n in range(60)]
    assert not content_words(a) & content_words(b)
    all_words = len(set(a) & set(b)) / len(set(a) | set(b))
    assert all_words > 0.3  # what made the word-set kind collide
    sa, sb = fingerprint_tokens(a), fingerprint_tokens(b)
    assert not set(band_keys(sa)) & set(band_keys(sb))  # no shared bucket in any kind
    # a text and its spin (a fifth of its content words swapped) still share content-word buckets
    spun = [f"{w}x" if w.startswith("alpha") and int(w[5:]) % 5 == 0 else w for w in a]

    def c1_buckets(tokens: list[str]) -> set[int]:
        sig = fingerprint_tokens(tokens)
        return set(band_keys(Signature({"c1": sig.values["c1"]}, sig.n_tokens)))

    assert c1_buckets(spun) & c1_buckets(a)
    # a text of common words only keeps them: it does not share the empty set's buckets with every other such text
    assert content_words(common[:40]) == set(common[:40])
    assert not c1_buckets(common[:40]) & c1_buckets(common[40:80])
