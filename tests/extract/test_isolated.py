"""Isolated extraction: worker processes that give what in-process extraction gives, and that a deadline,
a memory cap or a crash stops without touching the caller or the next page."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from pipeline.errors import EmptyPage, ExtractorCrashed, NotHTML, PageOutOfMemory, PageTimeout
from pipeline.extract import (
    ExtractLimits,
    IsolatedExtractor,
    close_shared,
    extract,
    extract_isolated,
    shared_extractor,
)
from pipeline.records import Page
from pipeline.settings import Settings
from tests.support.hostile import STORY, many_links, page_html, story_html

ROOT = Path(__file__).resolve().parents[2]
HTML = {"content-type": "text/html; charset=utf-8"}
GOOD = Page("https://river.example/towpath", page_html(f"<article>{story_html()}</article>").encode(), headers=HTML)
#: Limits that let the 200,000-link page cost its full twenty-odd seconds: a page that outlives any deadline here.
UNBOUNDED = ExtractLimits(max_elements=10**7, max_links=10**7, max_paragraphs=10**7, max_text_chars=10**8)


def slow_page() -> Page:
    return Page("https://river.example/links", many_links(), headers=HTML)


def alive(pid: int) -> bool:
    """Whether the process runs (a zombie does not: it is dead, not yet reaped)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


@pytest.fixture(scope="module")
def isolated() -> Iterator[IsolatedExtractor]:
    with IsolatedExtractor() as extractor:
        yield extractor


def test_a_worker_gives_what_extract_gives(isolated: IsolatedExtractor) -> None:
    warned = Page(GOOD.url, GOOD.body, headers={"content-type": "text/html; charset=x-klingon"})
    assert isolated.extract(GOOD) == extract(GOOD)
    assert isolated.extract(warned) == extract(warned)
    assert isolated.extract(warned)[1].startswith("unknown charset")
    for body, error in ((b"%PDF-1.7", NotHTML), (b"<html><body><script>x()</script></body></html>", EmptyPage)):
        page = Page("https://river.example/x", body)
        with pytest.raises(error) as there:
            isolated.extract(page)
        with pytest.raises(error) as here:
            extract(page)
        assert (there.value.message, there.value.url, there.value.stage) == (
            here.value.message, here.value.url, here.value.stage)
    usage = isolated.usage()
    assert usage.pages == 5 and usage.restarts == 0 and usage.cpu_seconds > 0


def test_a_page_past_the_deadline_is_stopped_and_the_next_one_gets_a_new_worker() -> None:
    with IsolatedExtractor(UNBOUNDED, deadline=0.5) as extractor:
        assert extractor.extract(GOOD)[0].paragraphs == tuple(STORY)
        (first,) = extractor.worker_pids()
        with pytest.raises(PageTimeout) as raised:
            extractor.extract(slow_page())
        assert (raised.value.stage, raised.value.kind) == ("extract", "PageTimeout")
        assert raised.value.url == "https://river.example/links" and "0.5 s deadline" in raised.value.message
        assert not alive(first) and extractor.worker_pids() == []  # killed, and reaped
        assert extractor.extract(GOOD)[0].paragraphs == tuple(STORY)
        (second,) = extractor.worker_pids()
        assert second != first and extractor.usage().restarts == 1


def test_a_page_past_the_memory_cap_fails_alone() -> None:
    with IsolatedExtractor(memory_mb=5) as extractor:
        with pytest.raises(PageOutOfMemory, match="more than 5 MB") as raised:
            extractor.extract(slow_page())
        assert raised.value.stage == "extract" and raised.value.url == "https://river.example/links"
        assert extractor.extract(GOOD)[0].paragraphs == tuple(STORY)
        assert extractor.usage().restarts == 1


def test_a_worker_that_dies_mid_page_gives_extractor_crashed() -> None:
    with IsolatedExtractor(UNBOUNDED) as extractor:
        extractor.extract(GOOD)
        (pid,) = extractor.worker_pids()
        outcome: list[BaseException] = []

        def extract_slow_page() -> None:
            try:
                extractor.extract(slow_page())
            except BaseException as err:  # noqa: BLE001 - handed to the test thread
                outcome.append(err)

        caller = threading.Thread(target=extract_slow_page)
        caller.start()
        time.sleep(1.0)  # the page is sent by now, and far from done (it costs seconds)
        os.kill(pid, signal.SIGKILL)  # what the kernel's OOM killer does
        caller.join(30)
        (error,) = outcome
        assert isinstance(error, ExtractorCrashed) and "killed by signal 9" in error.message
        assert error.url == "https://river.example/links" and extractor.worker_pids() == []
        assert extractor.extract(GOOD)[0].paragraphs == tuple(STORY)


def test_concurrent_callers_get_a_worker_each() -> None:
    pages = [Page(f"https://river.example/{i}", GOOD.body, headers=HTML) for i in range(6)]
    results: dict[str, tuple] = {}
    with IsolatedExtractor(processes=2) as extractor:

        def work(page: Page) -> None:
            results[page.url] = extractor.extract(page)

        threads = [threading.Thread(target=work, args=(page,)) for page in pages]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
        pids = extractor.worker_pids()
        assert 1 <= len(pids) <= 2
    assert {url: article.paragraphs for url, (article, _) in results.items()} == {
        page.url: tuple(STORY) for page in pages}
    assert not any(alive(pid) for pid in pids)  # closed: the workers are gone


def test_a_closed_extractor_refuses_pages() -> None:
    extractor = IsolatedExtractor()
    extractor.extract(GOOD)
    extractor.close()
    with pytest.raises(RuntimeError, match="closed"):
        extractor.extract(GOOD)


def test_extract_isolated_follows_the_settings() -> None:
    close_shared()
    settings = Settings()
    first = shared_extractor(settings)
    assert shared_extractor(Settings()) is first
    assert extract_isolated(GOOD, settings) == extract(GOOD)
    (pid,) = first.worker_pids()
    tighter = shared_extractor(Settings(extract_max_links=7, extract_deadline=3))
    assert tighter is not first and (tighter.limits.max_links, tighter.deadline) == (7, 3)
    assert not alive(pid)  # the one it replaced is closed
    close_shared()
    in_process = Settings(extract_isolate=False)
    assert extract_isolated(GOOD, in_process) == extract(GOOD)
    assert shared_extractor(in_process).worker_pids() == []  # nothing was started


def test_a_worker_imports_the_callers_pipeline_whatever_the_working_directory(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A checkout of another version in the working directory must not shadow the caller's code."""
    (tmp_path / "pipeline").mkdir()
    (tmp_path / "pipeline" / "__init__.py").write_text("raise ImportError('the wrong pipeline')\n")
    monkeypatch.chdir(tmp_path)
    with IsolatedExtractor() as extractor:
        assert extractor.extract(GOOD) == extract(GOOD)


def test_the_calling_process_does_not_load_the_extractor() -> None:
    """The caller sends bytes and gets records back: trafilatura and lxml live in the worker only."""
    script = (
        "import sys\n"
        "from pipeline.extract import IsolatedExtractor\n"
        "from pipeline.records import Page\n"
        "with IsolatedExtractor() as extractor:\n"
        "    article, _ = extractor.extract(Page('https://x.example/', b'<html><body><article><p>' + b'word ' * 60"
        " + b'</p></article></body></html>'))\n"
        "assert article.text.startswith('word word'), article\n"
        "print(sorted(m for m in ('trafilatura', 'lxml', 'htmldate') if m in sys.modules))\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300,
                          env={**os.environ, "PYTHONPATH": str(ROOT)}, cwd=ROOT)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"
