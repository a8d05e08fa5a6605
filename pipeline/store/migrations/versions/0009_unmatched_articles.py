"""The ``unmatched_articles`` table: articles whose dedup ran past its deadline, to be matched again by
``reprint reprocess`` (``UnmatchedRow``). A table only.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-01 16:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "unmatched_articles",
        sa.Column("article_id", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("article_id"),
    )


def downgrade() -> None:
    op.drop_table("unmatched_articles")
