"""The deduplicator's side of living articles: an update replaces an article's entries in the index (the shared
one in Redis, on a private redis-server, and the store's), a takedown removes them, the memo of large clusters
forgets an article that changed, and a second process's cached articles follow the store's content log."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from pipeline.dedup.deduplicator import Deduplicator, LRUDict
from pipeline.dedup.fingerprint import fingerprint
from pipeline.dedup.index import band_keys
from pipeline.extract.extractor import extract
from pipeline.records import Article, Page
from pipeline.settings import Settings
from pipeline.shared.redis_index import RedisLSHIndex
from pipeline.store import Store
from tests.support.workers import redis_server
from tests.support.world import LIBRARY_FIRST, LIBRARY_SECOND, LIBRARY_TITLE, PIER, PIER_TITLE, page, spin


def test_the_memo_forgets_every_entry_naming_an_article() -> None:
    memo: LRUDict = LRUDict(3)
    memo[(1, 2)], memo[(3, 2)], memo[(4, 5)] = "a", "b", "c"
    memo.drop(2)
    assert dict(memo) == {(4, 5): "c"}
    memo[(6, 7)], memo[(8, 9)], memo[(10, 11)] = "d", "e", "f"  # the oldest, (4, 5), falls out
    assert list(memo) == [(6, 7), (8, 9), (10, 11)]
    memo.drop(4)  # already evicted: nothing to do, nothing left behind
    memo.drop(9)
    assert list(memo) == [(6, 7), (10, 11)] and not {2, 4, 8, 9} & set(memo._by_id)


def _article(url: str, body: bytes) -> Article:
    return extract(Page(url, body, headers={"content-type": "text/html"}))[0]


@pytest.fixture
def shared(tmp_path: Path) -> Iterator[tuple[Store, RedisLSHIndex]]:
    url = f"sqlite:///{tmp_path / 'r.db'}"
    store = Store(url)
    with redis_server(tmp_path) as server:
        index = RedisLSHIndex(server.client(), 128, "living-test")
        try:
            yield store, index
        finally:
            store.close()


def _add(dedup: Deduplicator, url: str, body: bytes) -> int:
    page_id = dedup.store.add_page(Page(url, body), None)
    return dedup.add(page_id, _article(url, body)).article_id


def test_an_update_replaces_the_shared_index_entries_and_a_takedown_removes_them(
        shared: tuple[Store, RedisLSHIndex]) -> None:
    store, index = shared
    settings = Settings(database_url=store.url)
    worker = Deduplicator(store, settings, index=index)
    pier = _add(worker, "https://a.example/pier", page(PIER_TITLE, PIER, site="A", host="a.example"))
    spun = _add(worker, "https://b.example/pier", page(spin(PIER_TITLE), [spin(p) for p in PIER], site="B",
                                                       host="b.example"))
    library = _add(worker, "https://c.example/library", page(LIBRARY_TITLE, LIBRARY_FIRST + LIBRARY_SECOND,
                                                             site="C", host="c.example"))
    clusters = store.cluster_of([pier, spun])
    assert clusters[pier] == clusters[spun], "the spun copy is in the pier story"
    old = fingerprint(store.articles([spun])[spun])
    assert spun in index.query(old) and len(index) == 3
    moved = _article("https://b.example/pier", page(LIBRARY_TITLE, LIBRARY_FIRST + LIBRARY_SECOND, site="B",
                                                     host="b.example"))
    outcome = worker.update(spun, moved)
    new = fingerprint(moved)
    assert spun not in index.query(old) and spun in index.query(new) and len(index) == 3
    assert outcome.cluster_id == store.cluster_of([library])[library] != store.cluster_of([pier])[pier]
    assert store.band_members(band_keys(old)) == [], "the store's own table holds nothing of a worker's index"
    removed, _changes = worker.remove("https://b.example/pier", reason="test", who="t")
    assert removed == spun and spun not in index and len(index) == 2 and spun not in index.query(new)


def test_a_second_process_reads_an_update_through_the_content_log(shared: tuple[Store, RedisLSHIndex]) -> None:
    store, index = shared
    settings = Settings(database_url=store.url)
    one, two = Deduplicator(store, settings, index=index), Deduplicator(store, settings, index=index)
    pier = _add(one, "https://a.example/pier", page(PIER_TITLE, PIER, site="A", host="a.example"))
    assert "jetty" not in two.articles({pier})[pier][0].text  # the second process has it cached now
    corrected = _article("https://a.example/pier", page(PIER_TITLE, [p.replace("pier", "jetty") for p in PIER],
                                                        site="A", host="a.example"))
    one.update(pier, corrected)
    assert "jetty" not in two.articles({pier})[pier][0].text, "(cached until it looks)"
    two.refresh()
    assert "jetty" in two.articles({pier})[pier][0].text
    one.remove("https://a.example/pier", reason=None, who="t")
    two.refresh()
    assert two.articles({pier}) == {}


class _Stopped(BaseException):
    """What a task that is terminated half-way sees (a time limit, a cancelled task on a lost broker)."""


def test_an_arrival_cut_short_leaves_the_shared_index_and_keeps_its_own_error(
        shared: tuple[Store, RedisLSHIndex], monkeypatch: pytest.MonkeyPatch) -> None:
    store, index = shared
    worker = Deduplicator(store, Settings(database_url=store.url), index=index)
    _add(worker, "https://a.example/pier", page(PIER_TITLE, PIER, site="A", host="a.example"))
    body = page(spin(PIER_TITLE), [spin(p) for p in PIER], site="B", host="b.example")
    spun = _article("https://b.example/pier", body)

    def stopped(*_args: object) -> None:
        raise _Stopped

    monkeypatch.setattr(store, "signature_values", stopped)  # after the index took the arrival in
    with pytest.raises(_Stopped):  # its own error, not one of the clean-up's
        worker.add(store.add_page(Page("https://b.example/pier", body), None), spun)
    assert len(index) == 1 and index.query(fingerprint(spun)) == {1}
