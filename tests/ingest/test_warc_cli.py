"""``reprint ingest --warc-host/--warc-since/--warc-until`` and REPRINT_WARC_*: which WARC records to read."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import Result

from pipeline.sources.discover import warc_checkpoint_key
from pipeline.sources.warc import WarcScope, iter_warc_offsets
from pipeline.store import Store
from tests.support.cli import cli
from tests.support.warc import RECORDS, write_dated


@pytest.fixture
def warc(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)  # the default sqlite:///reprint.db lands in the test's own directory
    path = tmp_path / "crawl.warc.gz"
    write_dated(path)
    return path


def ingested(*args: str) -> list[str]:
    result = cli("ingest", *args, "--no-progress")
    assert result.exit_code == 0, result.output
    export = cli("export")
    assert export.exit_code == 0, export.output
    return sorted(json.loads(line)["url"] for line in export.stdout.splitlines() if line.strip())


def one_line_error(result: Result, *needles: str) -> str:
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:"), result.stderr
    for needle in needles:
        assert needle in lines[0], lines[0]
    return lines[0]


def test_warc_host_option_is_repeatable_and_keeps_subdomains(warc: Path) -> None:
    assert ingested(str(warc), "--warc-host", "alpha.example", "--warc-host", "WWW.Gamma.Example") == [
        "https://gamma.example/c1", "https://news.alpha.example/a2", "https://www.alpha.example/a1"]


def test_warc_date_window_options(warc: Path) -> None:
    # since inclusive, until exclusive; a date is its midnight UTC, a zone is honoured
    assert ingested(str(warc), "--warc-since", "2024-03-02", "--warc-until", "2024-03-03T09:00:00+01:00") == [
        "https://gamma.example/c1", "https://news.alpha.example/a2"]


def test_warc_filters_from_the_environment_and_the_option_wins(warc: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REPRINT_WARC_HOSTS", "beta.example, gamma.example")
    monkeypatch.setenv("REPRINT_WARC_UNTIL", "2024-03-03")
    assert ingested(str(warc)) == ["https://beta.example/b1", "https://gamma.example/c1"]
    assert ingested(str(warc), "--warc-host", "notalpha.example", "--warc-until", "2024-03-04") == [
        "https://beta.example/b1", "https://gamma.example/c1", "https://notalpha.example/x"]


@pytest.mark.parametrize(
    ("args", "needles"),
    [
        (["--warc-host", "https://alpha.example/"], ["--warc-host", "not a host name"]),
        (["--warc-host", "alpha.example:443"], ["--warc-host", "not a host name"]),
        (["--warc-since", "last tuesday"], ["--warc-since", "'last tuesday'", "datetime"]),
        (["--warc-until", "2024-02-30"], ["--warc-until", "'2024-02-30'"]),
        (["--warc-since", "2024-03-03", "--warc-until", "2024-03-02"], ["must be before", "--warc-since/--warc-until"]),
    ],
)
def test_bad_warc_filter_values_are_one_line_errors(warc: Path, args: list[str], needles: list[str]) -> None:
    one_line_error(cli("ingest", str(warc), "--no-progress", *args), "bad value for", *needles)
    assert not (warc.parent / "reprint.db").exists()  # refused before anything was opened


def test_bad_warc_environment_is_a_configuration_error(warc: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REPRINT_WARC_SINCE", "soon")
    one_line_error(cli("ingest", str(warc), "--no-progress"), "bad configuration", "warc_since")


def test_filtered_cli_run_resumes_from_the_checkpoint_of_the_same_filters(warc: Path) -> None:
    """The CLI's filters are part of the checkpoint key: a crashed ``--warc-host beta.example`` run that had
    committed b1 continues after it, and a run with other filters is not affected."""
    scope = WarcScope.build(hosts=["beta.example"])
    offsets = {item.url: offset for item, offset in iter_warc_offsets(warc, scope=scope)}
    store = Store(f"sqlite:///{warc.parent / 'reprint.db'}")
    store.set_warc_checkpoint(warc_checkpoint_key(str(warc), scope), offsets["https://beta.example/b1"])
    store.close()
    assert ingested(str(warc), "--warc-host", "beta.example") == ["https://beta.example/b2"]
    assert len(ingested(str(warc))) == len(RECORDS)  # no filters: its own checkpoint, from the start
