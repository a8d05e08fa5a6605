"""Living articles (issue 12): ``article_versions`` (what an updated article was), ``reviews`` (operator decisions),
``tombstones`` (pages taken down) and ``reprocess_checkpoints`` (resumable re-processing). Tables only: no column of
an existing table changes, so SQLite stores get them from ``create_all``.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-08 10:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "article_versions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("article_id", sa.Integer(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("content_hash", sa.String(length=40), nullable=True),
        sa.Column("fetched_at", sa.DateTime(), nullable=True),
        sa.Column("title", sa.Text(), nullable=False),
        sa.Column("text_length", sa.Integer(), nullable=False),
        sa.Column("text_hash", sa.String(length=40), nullable=False),
        sa.Column("n_tokens", sa.Integer(), nullable=False),
        sa.Column("reason", sa.String(length=20), nullable=False),
        sa.Column("replaced_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_article_versions_article_id", "article_versions", ["article_id"], unique=False)
    op.create_table(
        "reviews",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("url_a", sa.Text(), nullable=False),
        sa.Column("url_b", sa.Text(), nullable=True),
        sa.Column("article_a", sa.Integer(), nullable=False),
        sa.Column("article_b", sa.Integer(), nullable=True),
        sa.Column("flag", sa.String(length=20), nullable=True),
        sa.Column("flag_on", sa.Boolean(), nullable=True),
        sa.Column("who", sa.Text(), nullable=False),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("at", sa.DateTime(), nullable=False),
        sa.Column("undone_at", sa.DateTime(), nullable=True),
        sa.Column("undone_by", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_reviews_article_a", "reviews", ["article_a"], unique=False)
    op.create_index("ix_reviews_article_b", "reviews", ["article_b"], unique=False)
    op.create_table(
        "tombstones",
        sa.Column("url_key", sa.String(length=40), nullable=False),
        sa.Column("url", sa.Text(), nullable=False),
        sa.Column("article_id", sa.Integer(), nullable=True),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("who", sa.Text(), nullable=False),
        sa.Column("at", sa.DateTime(), nullable=False),
        sa.Column("allowed", sa.Boolean(), nullable=False),
        sa.Column("allowed_at", sa.DateTime(), nullable=True),
        sa.PrimaryKeyConstraint("url_key"),
    )
    op.create_table(
        "reprocess_checkpoints",
        sa.Column("key", sa.String(length=64), nullable=False),
        sa.Column("options", sa.JSON(), nullable=False),
        sa.Column("last_page_id", sa.Integer(), nullable=False),
        sa.Column("counts", sa.JSON(), nullable=False),
        sa.Column("started_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("key"),
    )


def downgrade() -> None:
    op.drop_table("reprocess_checkpoints")
    op.drop_table("tombstones")
    op.drop_index("ix_reviews_article_b", table_name="reviews")
    op.drop_index("ix_reviews_article_a", table_name="reviews")
    op.drop_table("reviews")
    op.drop_index("ix_article_versions_article_id", table_name="article_versions")
    op.drop_table("article_versions")
