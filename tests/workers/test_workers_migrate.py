"""``reprint migrate``: Alembic brings PostgreSQL to exactly the schema of ``pipeline.store.store.Base.metadata``.

The migrated database is compared with the metadata by Alembic's own autogenerate comparison, so a
model change without a new revision fails here. A database made earlier by ``create_all`` is stamped
and upgraded instead of failing; SQLite keeps ``create_all``.
"""

from __future__ import annotations

from pathlib import Path

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect, text

from pipeline.records import Page
from pipeline.store import Base, Store, make_engine
from tests.support.workers import pg_database, run_reprint


def _env(db_url: str) -> dict[str, str]:
    import os

    env = {k: v for k, v in os.environ.items() if not k.startswith("REPRINT_")}
    env["REPRINT_DATABASE_URL"] = db_url
    return env


def _schema_diff(db_url: str) -> list[object]:
    engine = make_engine(db_url)
    try:
        with engine.connect() as conn:
            return compare_metadata(MigrationContext.configure(conn, opts={"compare_type": True}), Base.metadata)
    finally:
        engine.dispose()


def _head() -> str:
    from alembic.script import ScriptDirectory

    from pipeline.store.migrations.runner import alembic_config

    return ScriptDirectory.from_config(alembic_config("postgresql://unused")).get_current_head()


def _version(db_url: str) -> str:
    engine = make_engine(db_url)
    try:
        with engine.connect() as conn:
            return conn.execute(text("SELECT version_num FROM alembic_version")).scalar_one()
    finally:
        engine.dispose()


def test_migrate_postgresql_matches_the_models_and_is_idempotent() -> None:
    with pg_database() as db_url:
        first = run_reprint(_env(db_url), "migrate")
        assert first.returncode == 0, first.stderr
        assert "migrated" in first.stdout
        assert _version(db_url) == _head()
        assert _schema_diff(db_url) == []
        again = run_reprint(_env(db_url), "migrate")
        assert again.returncode == 0, again.stderr
        store = Store(db_url, create=False)  # the workers' way: no create_all on PostgreSQL
        try:
            page_id = store.add_page(Page("https://example.org/a", b"<html><body>x</body></html>"), None)
            assert store.page_html(page_id).startswith(b"<html>")
        finally:
            store.close()


def test_migrate_adopts_a_database_made_by_create_all() -> None:
    with pg_database() as db_url:
        Store(db_url).close()  # an older `reprint ingest` created the tables without Alembic
        result = run_reprint(_env(db_url), "migrate", "--db", db_url)
        assert result.returncode == 0, result.stderr
        assert _version(db_url) == _head()
        assert _schema_diff(db_url) == []


def test_downgrade_to_base_removes_the_tables() -> None:
    with pg_database() as db_url:
        from alembic import command

        from pipeline.store.migrations.runner import run_migrations

        run_migrations(db_url)

        from pipeline.store.migrations.runner import alembic_config

        command.downgrade(alembic_config(db_url), "base")
        engine = make_engine(db_url)
        try:
            assert set(inspect(engine).get_table_names()) == {"alembic_version"}
        finally:
            engine.dispose()


def test_migrate_sqlite_keeps_create_all(tmp_path: Path) -> None:
    db_url = f"sqlite:///{tmp_path / 'r.db'}"
    result = run_reprint(_env(db_url), "migrate")
    assert result.returncode == 0, result.stderr
    assert "sqlite" in result.stdout
    engine = make_engine(db_url)
    try:
        assert {"pages", "articles", "signatures", "clusters"} <= set(inspect(engine).get_table_names())
    finally:
        engine.dispose()


def test_migrate_upgrades_a_database_at_the_first_revision() -> None:
    from alembic import command

    from pipeline.store.migrations.runner import alembic_config, run_migrations

    with pg_database() as db_url:
        command.upgrade(alembic_config(db_url), "0001")
        assert _version(db_url) == "0001"
        run_migrations(db_url)
        assert _version(db_url) == _head()
        assert _schema_diff(db_url) == []
