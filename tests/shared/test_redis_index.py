"""The shared index in Redis and the cross-process re-clustering lock, against real redis-server and PostgreSQL.

Each test uses its own key prefix (deleted afterwards) and this module its own PostgreSQL database. The race
test is the one from issue 4: 200 near-duplicate pairs, the two pages of each pair submitted at the same
instant to two worker processes; every pair must end in one cluster with one canonical.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import random
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import redis
from sqlalchemy import select

from pipeline.dedup.deduplicator import Deduplicator
from pipeline.dedup.fingerprint import KINDS, fingerprint_tokens
from pipeline.dedup.index import LSHIndex
from pipeline.records import Article, Page, Signature
from pipeline.settings import Settings
from pipeline.shared.locks import cluster_lock_for
from pipeline.shared.redis_index import INLINE_MAX, RedisLSHIndex
from pipeline.store import ArticleRow, Store
from pipeline.text import tokenize
from tests.support.db import pg_database
from tests.support.shared_redis import connect_or_skip, key_prefix

REDIS_HOST = os.environ.get("REPRINT_TEST_REDIS_HOST", "127.0.0.1")
REDIS_PORT = int(os.environ.get("REPRINT_TEST_REDIS_PORT", "6379"))
NUM_PERM = 128


def _client() -> redis.Redis:
    return redis.Redis(host=REDIS_HOST, port=REDIS_PORT, db=0, socket_timeout=30)


@pytest.fixture(scope="module")
def redis_client() -> Iterator[redis.Redis]:
    client = connect_or_skip(f"redis://{REDIS_HOST}:{REDIS_PORT}/0", timeout=30)
    yield client
    client.close()


@pytest.fixture
def prefix(redis_client: redis.Redis) -> Iterator[str]:
    with key_prefix(redis_client) as name:
        yield name


@pytest.fixture(scope="module")
def pg_url() -> Iterator[str]:
    with pg_database("reprint_idx") as url:
        yield url


# --- synthetic signatures and articles ---------------------------------------------------------------------
def random_signature(rng: np.random.Generator) -> Signature:
    return Signature({kind: rng.integers(0, 2**32, NUM_PERM, dtype=np.uint32) for kind in KINDS}, 150)


def mutate(sig: Signature, rate: float, rng: np.random.Generator) -> Signature:
    """A near-duplicate: each MinHash value replaced with probability ``rate``."""
    values = {}
    for kind, arr in sig.values.items():
        fresh = rng.integers(0, 2**32, len(arr), dtype=np.uint32)
        values[kind] = np.where(rng.random(len(arr)) < rate, fresh, arr).astype(np.uint32)
    return Signature(values, sig.n_tokens)


def near_duplicate_families(n_families: int, per_family: int, seed: int) -> list[Signature]:
    """Families of signatures around a base, from near-identical to barely related, interleaved."""
    rng = np.random.default_rng(seed)
    bases = [random_signature(rng) for _ in range(n_families)]
    sigs = [mutate(bases[i % n_families], float(rng.choice([0.0, 0.1, 0.3, 0.5, 0.7, 0.9])), rng)
            for i in range(n_families * per_family)]
    rng.shuffle(sigs)  # type: ignore[arg-type]
    return sigs


_SYLLABLES = ["ka", "lo", "mi", "ren", "tu", "sa", "vel", "dor", "ni", "pa", "ost", "que", "bri", "han", "zu", "e"]
VOCABULARY = sorted({"".join(random.Random(i).choices(_SYLLABLES, k=3)) for i in range(20_000)})


def synthetic_article(pair: int, copy: bool) -> Article:
    """~150 words drawn per pair from a fixed vocabulary; the copy is the same text with a line appended."""
    rng = random.Random(1000 + pair)
    words = [rng.choice(VOCABULARY) for _ in range(150)]
    sentences = [" ".join(words[i : i + 15]).capitalize() + "." for i in range(0, 150, 15)]
    paragraphs = [" ".join(sentences[i : i + 3]) for i in range(0, len(sentences), 3)]
    site = "copy" if copy else "origin"
    if copy:  # the appended line is the pair's own, so copies of different stories share no boilerplate
        paragraphs.append(" ".join(rng.choice(VOCABULARY) for _ in range(12)).capitalize() + ".")
    url = f"https://{site}.example/story/{pair}"
    return Article(url=url, title=f"Story {pair}", text="\n\n".join(paragraphs), paragraphs=tuple(paragraphs),
                   site=site, language="en")


def page_for(article: Article) -> Page:
    body = "".join(f"<p>{p}</p>" for p in article.paragraphs)
    return Page(url=article.url, body=f"<html><body><h1>{article.title}</h1>{body}</body></html>".encode())


# --- the index itself ----------------------------------------------------------------------------------------
def test_buckets_are_capped_like_the_local_index(redis_client: redis.Redis, prefix: str) -> None:
    """A story's copies fill a bucket up to the cap; later copies find exactly the first ones, as locally."""
    shared = RedisLSHIndex(redis_client, NUM_PERM, prefix, cap=4)
    local = LSHIndex(NUM_PERM, cap=4)
    sig = random_signature(np.random.default_rng(11))
    for article_id in range(1, 30):
        expected = set(range(1, min(article_id, 5)))  # the first four copies, never more
        assert shared.query_insert(article_id, sig) == local.query_insert(article_id, sig) == expected
    assert shared.query(sig) == {1, 2, 3, 4}


def test_same_candidates_as_lshindex(redis_client: redis.Redis, prefix: str) -> None:
    """Same bands, same semantics: every step of query_insert gives the in-process index's candidates."""
    shared = RedisLSHIndex(redis_client, NUM_PERM, prefix)
    local = LSHIndex(NUM_PERM)
    sigs = near_duplicate_families(60, 6, seed=7)
    articles = [synthetic_article(pair, copy) for pair in range(20) for copy in (False, True)]
    sigs += [fingerprint_tokens(tokenize(a.text), NUM_PERM) for a in articles]
    nonempty = 0
    for article_id, sig in enumerate(sigs, start=1):
        expected = local.query_insert(article_id, sig)
        assert shared.query_insert(article_id, sig) == expected, article_id
        nonempty += bool(expected)
    assert nonempty > 150  # the comparison covered real collisions, not only empty sets
    assert len(shared) == len(local) == len(sigs)
    probes = near_duplicate_families(20, 3, seed=8) + sigs[:50]
    for sig in probes:
        assert shared.query(sig) == local.query(sig)


def test_idempotent_insert_overflow_and_remove(redis_client: redis.Redis, prefix: str) -> None:
    index = RedisLSHIndex(redis_client, NUM_PERM, prefix, cap=None)
    rng = np.random.default_rng(3)
    sig = random_signature(rng)
    assert index.query_insert(1, sig) == set()
    assert index.query_insert(1, sig) == {1}  # a redelivery: indexed once, sees itself like LSHIndex
    assert len(index) == 1 and 1 in index and 2 not in index

    # A big syndication cluster: the buckets outgrow the inline id list and move to overflow sets.
    many = list(range(100_000, 100_040))
    for n, article_id in enumerate(many):
        assert index.query_insert(article_id, sig) == {1, *many[:n]}
    overflow = list(redis_client.scan_iter(match=f"{prefix}:idx:b:*:*"))
    assert overflow and all(redis_client.type(k) == b"set" for k in overflow)
    assert len(",".join(map(str, [1, *many]))) > INLINE_MAX

    assert index.remove(1, sig) and not index.remove(1, sig)
    assert 1 not in index and index.query(sig) == set(many)
    for article_id in many:
        index.remove(article_id, sig)
    assert len(index) == 0 and index.query(sig) == set()
    assert not list(redis_client.scan_iter(match=f"{prefix}:idx:b:*"))  # nothing left behind


def test_layout_is_shared_and_checked(redis_client: redis.Redis, prefix: str) -> None:
    first = RedisLSHIndex(redis_client, NUM_PERM, prefix, capacity=1 << 20)
    second = RedisLSHIndex(redis_client, NUM_PERM, prefix, capacity=1 << 10)  # adopts the stored layout
    assert second.shard_bits == first.shard_bits
    sig = random_signature(np.random.default_rng(5))
    first.insert(7, sig)
    assert second.query(sig) == {7}
    with pytest.raises(ValueError, match="another layout"):
        RedisLSHIndex(redis_client, 256, prefix)


def test_a_rebuild_replaces_an_index_of_another_layout(redis_client: redis.Redis, prefix: str) -> None:
    """An index made for an older fingerprint (its kinds differ) is refused by workers, and replaced by the rebuild's
    index (``reprint index rebuild``), keeping whatever else shares the prefix."""
    old_layout = f"v1 bits=17 field=4 perm={NUM_PERM} kinds=w3:64x2,w1:32x4"
    redis_client.set(f"{prefix}:idx:layout", old_layout)
    redis_client.hset(f"{prefix}:idx:b:00aa", "abcd", "5")
    redis_client.set(f"{prefix}:queue-item", "kept")
    with pytest.raises(ValueError, match="reprint index rebuild"):
        RedisLSHIndex(redis_client, NUM_PERM, prefix)
    settings = Settings(redis_prefix=prefix, num_perm=NUM_PERM)
    index = RedisLSHIndex.replacing(settings, redis_client)
    assert "c1:32x3" in index.layout and not redis_client.exists(f"{prefix}:idx:b:00aa")
    assert redis_client.get(f"{prefix}:queue-item") == b"kept"
    sig = random_signature(np.random.default_rng(8))
    index.insert(3, sig)
    assert RedisLSHIndex(redis_client, NUM_PERM, prefix).query(sig) == {3}


def test_query_insert_is_atomic_across_threads(redis_client: redis.Redis, prefix: str) -> None:
    """Four threads, two racing pairs per round: of each pair, exactly one side sees the other."""
    pool = redis.BlockingConnectionPool(host=REDIS_HOST, port=REDIS_PORT, max_connections=8)
    client = redis.Redis(connection_pool=pool)
    index = RedisLSHIndex(client, NUM_PERM, prefix)
    rng = np.random.default_rng(11)
    n_pairs = 300
    pairs = []
    for _ in range(n_pairs):
        base = random_signature(rng)
        pairs.append((base, mutate(base, 0.2, rng)))
    barrier = threading.Barrier(4)
    seen: dict[tuple[int, int], set[int]] = {}

    def run(worker: int) -> None:
        for round_ in range(n_pairs // 2):
            pair = 2 * round_ + worker // 2
            side = worker % 2
            article_id = 2 * pair + side + 1
            barrier.wait(timeout=30)
            seen[pair, side] = index.query_insert(article_id, pairs[pair][side])

    threads = [threading.Thread(target=run, args=(w,)) for w in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    for pair in range(n_pairs):
        a, b = 2 * pair + 1, 2 * pair + 2
        a_saw_b, b_saw_a = b in seen[pair, 0], a in seen[pair, 1]
        assert a_saw_b != b_saw_a, (pair, seen[pair, 0], seen[pair, 1])
        assert seen[pair, 0] <= {b} and seen[pair, 1] <= {a}
    assert len(index) == 2 * n_pairs
    pool.disconnect()


# --- the store: rebuild and the re-clustering lock --------------------------------------------------------
def test_rebuild_from_postgresql(redis_client: redis.Redis, prefix: str, pg_url: str) -> None:
    store = Store(pg_url)
    try:
        ids = {}
        for pair in range(30):
            for copy in (False, True):
                article = synthetic_article(500 + pair, copy)
                sig = fingerprint_tokens(tokenize(article.text), NUM_PERM)
                ids[pair, copy] = store.add_article(store.add_page(page_for(article), None), article, sig)
        short = Article(url="https://short.example/1", title="s", text="too short to match", paragraphs=("x",))
        short_id = store.add_article(store.add_page(page_for(short), None), short,
                                     fingerprint_tokens(tokenize(short.text), NUM_PERM))
        index = RedisLSHIndex(redis_client, NUM_PERM, prefix)
        index.insert(999_999, random_signature(np.random.default_rng(1)))  # stale: a rebuild drops it
        assert index.rebuild(store, min_tokens=25, batch=7) == 60
        assert len(index) == 60 and 999_999 not in index and short_id not in index
        local = LSHIndex(NUM_PERM)
        for article_id, sig in store.signatures():
            if sig.n_tokens >= 25:
                local.insert(article_id, sig)
        for _article_id, sig in store.signatures():
            assert index.query(sig) == local.query(sig)
        for pair in range(30):
            _id, sig = next((i, s) for i, s in store.signatures() if i == ids[pair, False])
            assert ids[pair, True] in index.query(sig)
    finally:
        store.close()


def test_postgres_cluster_lock_excludes_other_connections(pg_url: str) -> None:
    store_a, store_b = Store(pg_url), Store(pg_url, create=False)
    try:
        lock_a, lock_b = cluster_lock_for(store_a, None), cluster_lock_for(store_b, None)
        events: list[str] = []
        held = threading.Event()

        def other() -> None:
            held.wait(10)
            with lock_b():
                events.append("b")

        thread = threading.Thread(target=other)
        thread.start()
        with lock_a():
            held.set()
            time.sleep(0.3)  # b is waiting on the advisory lock meanwhile
            events.append("a")
        thread.join(10)
        assert events == ["a", "b"]
    finally:
        store_a.close()
        store_b.close()


def test_sqlite_cluster_lock_is_shared_in_process(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'r.db'}"
    one, two = Store(url), Store(url)
    try:
        lock_one, lock_two = cluster_lock_for(one, None)(), cluster_lock_for(two, None)()
        with lock_one:
            assert not lock_two.acquire(blocking=False)  # type: ignore[attr-defined]
    finally:
        one.close()
        two.close()


# --- the race from issue 4 ----------------------------------------------------------------------------------
N_RACE_PAIRS = 200


class _Recording:
    """The worker's index, remembering what each query_insert returned (for the test's assertions only)."""

    def __init__(self, index: RedisLSHIndex) -> None:
        self.index = index
        self.last: set[int] = set()

    def query_insert(self, article_id: int, sig: Signature) -> set[int]:
        self.last = self.index.query_insert(article_id, sig)
        return self.last


def _race_worker(pg_url: str, prefix: str, copy: bool, barrier: Any, results: Any) -> None:
    """One worker process: its own store, Redis client, index and lock, as a Celery worker would have."""
    settings = Settings(database_url=pg_url)
    store = Store(pg_url, create=False)
    client = _client()
    index = _Recording(RedisLSHIndex(client, settings.num_perm, prefix))
    dedup = Deduplicator(store, settings, index=index, lock=cluster_lock_for(store, client))
    saw: dict[int, tuple[int, list[int]]] = {}
    for pair in range(N_RACE_PAIRS):
        article = synthetic_article(pair, copy)
        page = page_for(article)
        barrier.wait(timeout=60)
        index.last = set()
        outcome = dedup.add(store.add_page(page, None), article)
        saw[pair] = (outcome.article_id, sorted(index.last))
    results.put((copy, saw))
    store.close()
    client.close()


def test_race_two_worker_processes_one_canonical_per_pair(redis_client: redis.Redis, prefix: str,
                                                          pg_url: str) -> None:
    Store(pg_url).close()  # the schema, created once before the workers start
    ctx = mp.get_context("spawn")
    barrier = ctx.Barrier(2)
    results = ctx.Queue()
    workers = [ctx.Process(target=_race_worker, args=(pg_url, prefix, copy, barrier, results))
               for copy in (False, True)]
    for w in workers:
        w.start()
    outcomes = dict(results.get(timeout=120) for _ in workers)
    for w in workers:
        w.join(timeout=30)
        assert w.exitcode == 0
    # Of each simultaneous pair, exactly one side found the other: the index never let both miss.
    for pair in range(N_RACE_PAIRS):
        (origin_id, origin_saw), (copy_id, copy_saw) = outcomes[False][pair], outcomes[True][pair]
        assert (copy_id in origin_saw) != (origin_id in copy_saw), (pair, origin_saw, copy_saw)

    store = Store(pg_url, create=False)
    try:
        with store.session() as s:
            rows = s.execute(select(ArticleRow.url, ArticleRow.id, ArticleRow.cluster_id, ArticleRow.is_canonical)
                             .where(ArticleRow.url.like("https://%.example/story/%"))).all()
        by_url = {url: (article_id, cluster_id, canonical) for url, article_id, cluster_id, canonical in rows}
        clusters = set()
        for pair in range(N_RACE_PAIRS):
            origin = by_url[synthetic_article(pair, False).url]
            copy = by_url[synthetic_article(pair, True).url]
            assert origin[1] == copy[1], f"pair {pair} split into clusters {origin[1]} and {copy[1]}"
            assert sorted(store.members(origin[1])) == sorted([origin[0], copy[0]])
            assert origin[2] + copy[2] == 1, f"pair {pair}: {origin[2] + copy[2]} canonicals"
            clusters.add(origin[1])
        assert len(clusters) == N_RACE_PAIRS
    finally:
        store.close()


def test_index_rebuild_command(redis_client: redis.Redis, prefix: str, pg_url: str,
                               monkeypatch: pytest.MonkeyPatch) -> None:
    from typer.testing import CliRunner

    from pipeline.cli import app
    from pipeline.settings import get_settings

    store = Store(pg_url)
    try:
        for pair in range(5):
            article = synthetic_article(900 + pair, False)
            store.add_article(store.add_page(page_for(article), None), article,
                              fingerprint_tokens(tokenize(article.text), 128))
        expected = sum(1 for _i, sig in store.signatures() if sig.n_tokens >= 25)  # the module shares a db
    finally:
        store.close()
    monkeypatch.setenv("REPRINT_REDIS_URL", f"redis://{REDIS_HOST}:{REDIS_PORT}/0")
    monkeypatch.setenv("REPRINT_REDIS_PREFIX", prefix)
    get_settings.cache_clear()
    try:
        result = CliRunner().invoke(app, ["index", "rebuild", "--db", pg_url])
    finally:
        get_settings.cache_clear()
    assert result.exit_code == 0, result.output
    assert f"indexed {expected} articles" in result.output
    assert expected >= 5 and len(RedisLSHIndex(redis_client, 128, prefix)) == expected
