"""Resumable WARC reading (record offsets, checkpoints in the store) and host / WARC-Date filters."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from pipeline.errors import WarcError
from pipeline.ingest.runner import run_ingest
from pipeline.records import Page
from pipeline.settings import Settings
from pipeline.sources.discover import warc_checkpoint_key
from pipeline.sources.warc import WarcScope, iter_warc, iter_warc_offsets
from pipeline.store import Store
from tests.support.pages import news_page
from tests.support.warc import RECORDS, write_dated, write_warc


def urls(items: list[object]) -> list[str]:
    assert not [i for i in items if not isinstance(i, Page)], items
    return [i.url for i in items if isinstance(i, Page)]


@pytest.mark.parametrize("compressed", [True, False])
def test_resume_from_a_checkpoint_skips_committed_records(tmp_path: Path, compressed: bool) -> None:
    path = tmp_path / ("a.warc.gz" if compressed else "a.warc")
    write_dated(path, gzip_records=compressed)
    everything = list(iter_warc_offsets(path))
    assert urls([item for item, _ in everything]) == [uri for uri, _ in RECORDS]
    offsets = [offset for _, offset in everything]
    assert offsets == sorted(offsets) and offsets[-1] == path.stat().st_size
    # A run that committed the first three records and crashed resumes at the third one's offset.
    resumed = list(iter_warc(path, scope=WarcScope(start_offset=offsets[2])))
    assert urls(resumed) == [uri for uri, _ in RECORDS[3:]]
    # At the end of the file: nothing left, no error. Beyond it: an error, not a crash.
    assert list(iter_warc(path, scope=WarcScope(start_offset=offsets[-1]))) == []
    beyond = list(iter_warc(path, scope=WarcScope(start_offset=offsets[-1] + 10)))
    assert len(beyond) == 1 and isinstance(beyond[0], WarcError)


def test_resume_offset_inside_a_record_is_an_error_item(tmp_path: Path) -> None:
    path = tmp_path / "a.warc.gz"
    write_dated(path)
    first = next(offset for _, offset in iter_warc_offsets(path))
    items = list(iter_warc(path, scope=WarcScope(start_offset=first + 7)))
    assert items and isinstance(items[-1], WarcError)


def test_host_filter(tmp_path: Path) -> None:
    path = tmp_path / "a.warc.gz"
    write_dated(path)
    scope = WarcScope.build(hosts=["alpha.example", "WWW.Gamma.Example"])
    assert urls(list(iter_warc(path, scope=scope))) == [
        "https://www.alpha.example/a1",  # www. ignored
        "https://news.alpha.example/a2",  # subdomain
        "https://gamma.example/c1",
    ]  # notalpha.example is not a subdomain of alpha.example


def test_date_filter_uses_warc_date(tmp_path: Path) -> None:
    path = tmp_path / "a.warc"
    write_dated(path, gzip_records=False)
    scope = WarcScope.build(since=datetime(2024, 3, 2), until=datetime(2024, 3, 3, 8, tzinfo=UTC))
    assert urls(list(iter_warc(path, scope=scope))) == [
        "https://news.alpha.example/a2",  # since is inclusive
        "https://gamma.example/c1",
    ]  # until is exclusive: b2 at 08:00 is out
    both = WarcScope.build(hosts=["beta.example"], since=datetime(2024, 3, 2))
    assert urls(list(iter_warc(path, scope=both))) == ["https://beta.example/b2"]


def test_filtered_resume_and_store_checkpoint(tmp_path: Path) -> None:
    """The checkpoint lives in the store, keyed by file and filters; it survives reopening the store."""
    path = tmp_path / "a.warc.gz"
    write_dated(path)
    scope = WarcScope.build(hosts=["beta.example"])
    url = f"sqlite:///{tmp_path / 'db.sqlite'}"
    key = f"{path.resolve()}|{scope.filter_key()}"
    store = Store(url)
    assert store.warc_checkpoint(key) == 0
    items = list(iter_warc_offsets(path, scope=scope))
    assert urls([i for i, _ in items]) == ["https://beta.example/b1", "https://beta.example/b2"]
    store.set_warc_checkpoint(key, items[0][1])  # b1 committed, then a crash
    store.close()
    store = Store(url)
    resumed = list(iter_warc(path, scope=WarcScope.build(store.warc_checkpoint(key), hosts=["beta.example"])))
    assert urls(resumed) == ["https://beta.example/b2"]
    other = f"{path.resolve()}|{WarcScope.build(hosts=['alpha.example']).filter_key()}"
    assert store.warc_checkpoint(other) == 0  # other filters: their own checkpoint
    store.set_warc_checkpoint(key, items[1][1])
    assert store.warc_checkpoint(key) == items[1][1]
    store.close()


TOPICS = ["harbour dredging", "school meals", "bridge repairs", "library hours", "bus timetables"]


def story(n: int) -> bytes:
    topic = TOPICS[n]
    paragraphs = [f"The council discussed {topic} for the {n}th time this year, members said on Monday evening."
                  f" Residents of district {n} asked about {topic} costs, delays and who pays for {topic}."] * 3
    return news_page(f"Story {n}: {topic}", paragraphs, site=f"site{n}.example").encode()


def test_ingest_resumes_a_crashed_warc_run_and_restarts_a_finished_one(tmp_path: Path,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "cc.warc.gz"
    write_warc(path, [(f"https://site{n}.example/story", story(n), "text/html") for n in range(5)])
    offsets = [offset for _, offset in iter_warc_offsets(path)]
    store = Store(f"sqlite:///{tmp_path / 'db.sqlite'}")
    key = warc_checkpoint_key(str(path))
    store.set_warc_checkpoint(key, offsets[1])  # a run that committed two records, then died
    commits: list[int] = []
    real = store.set_warc_checkpoint
    monkeypatch.setattr(store, "set_warc_checkpoint", lambda k, o: (commits.append(o), real(k, o)))

    summary = run_ingest([str(path)], store, Settings(), progress=False)
    assert summary.pages_seen == 3 and summary.articles == 3  # records 3..5 only
    # a checkpoint per batch, at the batch's last handled record (each within offsets[2:], in order), then the
    # reset: the file is done
    assert commits[-1] == 0 and commits[:-1] == sorted(set(commits[:-1]))
    assert set(commits[:-1]) <= set(offsets[2:]) and len(commits) <= len(offsets[2:]) + 1
    assert store.warc_checkpoint(key) == 0
    again = run_ingest([str(path)], store, Settings(), progress=False)
    # A finished file is read afresh next time: the two records the 'crashed' run claimed (but this test
    # never stored) become articles now, the other three are unchanged.
    assert again.pages_seen == 5 and again.articles == 2 and again.unchanged == 3
    store.close()
