"""The ``lsh_bands`` table: the persisted LSH index (``LSHBandRow``, ``pipeline.dedup.index.StoreLSHIndex``),
one row per (band bucket, article). Existing articles are indexed from their stored signatures the first
time a deduplicator opens the store (``Deduplicator.index``), not here: a migration should not run the
pipeline's hashing.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-01 12:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "lsh_bands",
        sa.Column("band_key", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("article_id", sa.Integer(), autoincrement=False, nullable=False),
        sa.PrimaryKeyConstraint("band_key", "article_id"),
        sqlite_with_rowid=False,
    )


def downgrade() -> None:
    op.drop_table("lsh_bands")
