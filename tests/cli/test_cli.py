"""The CLI contract: --db and REPRINT_DATABASE_URL, one-line errors for wrong configuration, the
console script, and a pipeline that never imports Celery."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.cli import cli
from tests.support.db import PG_URL_TEMPLATE, under_ci
from tests.support.pages import original_page, unrelated_page

pytestmark = pytest.mark.usefixtures("reprint_env")

REPO = Path(__file__).resolve().parents[2]


def html_files(tmp_path: Path) -> Path:
    folder = tmp_path / "pages"
    folder.mkdir()
    (folder / "pier.html").write_bytes(original_page())
    (folder / "otters.html").write_bytes(unrelated_page())
    return folder


def exported(result_stdout: str) -> list[dict]:
    return [json.loads(line) for line in result_stdout.splitlines() if line.strip()]


def assert_one_line_error(result, *needles: str, code: int = 2) -> None:
    assert result.exit_code == code, result.output
    assert "Traceback" not in result.output
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert lines and lines[0].startswith("error:"), result.stderr
    joined = " ".join(result.stderr.split())
    for needle in needles:
        assert needle in joined, result.stderr


def test_db_defaults_to_reprint_db_in_working_directory(tmp_path: Path) -> None:
    folder = html_files(tmp_path)
    result = cli("ingest", str(folder), "--no-progress")
    assert result.exit_code == 0, result.output
    assert (tmp_path / "reprint.db").exists()  # conftest chdirs into tmp_path
    assert len(exported(cli("export").stdout)) == 2


def test_environment_sets_the_database_and_db_option_wins(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    folder = html_files(tmp_path)
    from_env = tmp_path / "env.db"
    from_option = tmp_path / "option.db"
    monkeypatch.setenv("REPRINT_DATABASE_URL", f"sqlite:///{from_env}")

    assert cli("ingest", str(folder / "pier.html"), "--no-progress").exit_code == 0
    other = cli("ingest", str(folder / "otters.html"), "--db", f"sqlite:///{from_option}", "--no-progress")
    assert other.exit_code == 0
    assert from_env.exists() and from_option.exists()
    assert not (tmp_path / "reprint.db").exists()

    env_urls = [r["url"] for r in exported(cli("export").stdout)]
    option_urls = [r["url"] for r in exported(cli("export", "--db", f"sqlite:///{from_option}").stdout)]
    assert env_urls == [(folder / "pier.html").resolve().as_uri()]
    assert option_urls == [(folder / "otters.html").resolve().as_uri()]


@pytest.mark.parametrize(
    ("url", "needle"),
    [
        ("mysql://user@localhost/reprint", "bad configuration"),
        ("sqlite:/missing-slashes.db", "invalid database URL"),
        ("sqlite:////no/such/directory/reprint.db", "does not exist"),
        ("sqlite://", "in-memory"),
        ("postgresql+psycopg://postgres@127.0.0.1:1/reprint", "cannot open database"),
    ],
)
def test_bad_db_is_one_clear_line(url: str, needle: str, tmp_path: Path) -> None:
    folder = html_files(tmp_path)
    assert_one_line_error(cli("ingest", str(folder), "--db", url, "--no-progress"), needle)


def test_bad_environment_is_one_clear_line(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REPRINT_DATABASE_URL", "oracle://scott@tiger/db")
    assert_one_line_error(cli("export"), "bad configuration", "REPRINT_")
    monkeypatch.setenv("REPRINT_DATABASE_URL", "sqlite:///ok.db")
    monkeypatch.setenv("REPRINT_FETCH_CONCURRENCY", "many")
    assert_one_line_error(cli("clusters"), "fetch_concurrency")


def test_password_is_not_printed() -> None:
    result = cli("export", "--db", "postgresql+psycopg://postgres:s3cret@127.0.0.1:1/reprint")
    assert_one_line_error(result, "cannot open database")
    assert "s3cret" not in result.output


def test_missing_database_for_export_and_clusters() -> None:
    for command in ("export", "clusters"):
        assert_one_line_error(cli(command, "--db", "sqlite:///never-ingested.db"), "no database at")
    assert not Path("never-ingested.db").exists()


def test_postgres_url_works_like_sqlite(tmp_path: Path, db_url: str) -> None:
    folder = html_files(tmp_path)
    result = cli("ingest", str(folder), "--db", db_url, "--no-progress")
    assert result.exit_code == 0, result.output
    records = exported(cli("export", "--db", db_url).stdout)
    assert len(records) == 2 and all(r["canonical"] for r in records)
    assert "2 singletons" in cli("clusters", "--db", db_url).stdout


def test_missing_postgres_database_is_one_clear_line(pg_problem: str | None) -> None:
    if pg_problem is not None:
        if under_ci():
            pytest.fail(f"PostgreSQL is not reachable under CI: {pg_problem}")
        pytest.skip("PostgreSQL not reachable")
    url = PG_URL_TEMPLATE.format(name="reprint_test_does_not_exist")
    assert_one_line_error(cli("export", "--db", url), "cannot open database", "does not exist")


def test_ingest_needs_a_source() -> None:
    result = cli("ingest")
    assert result.exit_code == 2
    assert "Traceback" not in result.output


def run_script(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """Run the installed console script (or the module entry point) as a subprocess, no stdin."""
    script = Path(sys.executable).parent / "reprint"
    command = [str(script)] if script.exists() else [sys.executable, "-c", "from pipeline.cli.app import run; run()"]
    env = {k: v for k, v in os.environ.items() if not k.startswith("REPRINT_")}
    return subprocess.run([*command, *args], cwd=cwd, env=env, capture_output=True, text=True,
                          stdin=subprocess.DEVNULL, timeout=120, check=False)


def test_console_script_end_to_end(tmp_path: Path) -> None:
    """The real `reprint` process: progress on, exit codes, JSONL on stdout."""
    folder = html_files(tmp_path)
    ingest = run_script("ingest", str(folder), str(tmp_path / "nope.warc.gz"), cwd=tmp_path)
    assert ingest.returncode == 1, ingest.stderr
    assert "SourceError" in ingest.stdout and "Traceback" not in ingest.stderr
    # the process ends without the interpreter's teardown, but only after the store was closed: no WAL left
    assert (tmp_path / "reprint.db").exists() and not (tmp_path / "reprint.db-wal").exists()
    export = run_script("export", cwd=tmp_path)
    assert export.returncode == 0, export.stderr
    assert len(exported(export.stdout)) == 2
    bad = run_script("export", "--db", "nonsense", cwd=tmp_path)
    assert bad.returncode == 2 and bad.stderr.startswith("error:") and "Traceback" not in bad.stderr


@pytest.mark.parametrize("thread", [False, True])
@pytest.mark.parametrize(("code", "status", "said"), [(None, 0, ""), (3, 3, ""), ("stopped: why", 1, "stopped: why")])
def test_the_fast_exit_keeps_what_sys_exit_means(tmp_path: Path, code: object, status: int, said: str,
                                                 thread: bool) -> None:
    """``run`` (the process entry) ends with ``os._exit``: the status and message are sys.exit's, exit handlers run,
    buffered output is written, and a thread still running is waited for."""
    done_file = tmp_path / "thread-done"
    script = (
        "import atexit, sys, threading, time\n"
        "from pipeline.cli.app import _exit_now\n"
        "atexit.register(lambda: print('handler ran'))\n"
        f"work = lambda: (time.sleep(0.3), open({str(done_file)!r}, 'w').close())\n"
        + ("threading.Thread(target=work).start()\n" if thread else "work()\n") +
        "sys.stdout.write('x' * 100_000)\n"
        f"_exit_now({code!r})\n"
    )
    done = subprocess.run([sys.executable, "-c", script], cwd=REPO, capture_output=True, text=True, timeout=60,
                          check=False)
    assert done.returncode == status, done.stderr
    assert done.stdout.startswith("x" * 100_000) and "handler ran" in done.stdout
    assert done.stderr.strip() == said
    assert done_file.exists()


@pytest.mark.parametrize(("given", "seen"), [(None, "1"), ("3", "3")])
def test_importing_pipeline_asks_openblas_for_one_thread_unless_told(given: str | None, seen: str) -> None:
    """numpy's BLAS threads spin at import and reprint never calls BLAS: importing ``pipeline`` sets
    ``OPENBLAS_NUM_THREADS=1`` before numpy loads, and keeps a value the environment already has."""
    env = {k: v for k, v in os.environ.items() if k != "OPENBLAS_NUM_THREADS"}
    if given is not None:
        env["OPENBLAS_NUM_THREADS"] = given
    code = ("import os, pipeline.store, numpy\n"
            "print(os.environ['OPENBLAS_NUM_THREADS'], len(os.listdir(f'/proc/{os.getpid()}/task')))")
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO, env=env, capture_output=True, text=True,
                          timeout=60, check=True)
    value, threads = done.stdout.split()
    assert value == seen
    if given is None and os.path.isdir("/proc/self/task"):
        assert int(threads) == 1  # numpy started no BLAS threads


def test_pipeline_never_imports_celery() -> None:
    code = (
        "import importlib, pkgutil, sys, pipeline\n"
        "for m in pkgutil.iter_modules(pipeline.__path__):\n"
        "    try: importlib.import_module('pipeline.' + m.name)\n"
        "    except ModuleNotFoundError as e: assert not e.name.startswith('celery'), e  # other deps: not here\n"
        "bad = sorted(n for n in sys.modules if n == 'celery' or n.startswith('celery.'))\n"
        "assert not bad, bad\n"
    )
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120,
                          check=False)
    assert done.returncode == 0, done.stderr


def test_export_since_hands_back_a_cursor_and_only_newer_changes(tmp_path: Path) -> None:
    folder = html_files(tmp_path)
    assert cli("ingest", str(folder / "pier.html"), "--no-progress").exit_code == 0
    first = cli("export", "--since", "")
    assert first.exit_code == 0, first.output
    assert [r["url"] for r in exported(first.stdout)] == [(folder / "pier.html").as_uri()]
    cursor = first.stderr.split("next cursor:")[1].split()[0]

    assert cli("ingest", str(folder / "otters.html"), "--no-progress").exit_code == 0
    second = cli("export", "--since", cursor)
    assert [r["url"] for r in exported(second.stdout)] == [(folder / "otters.html").as_uri()]
    assert_one_line_error(cli("export", "--since", "not-a-cursor"), "cursor")
