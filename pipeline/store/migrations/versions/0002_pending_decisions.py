"""The ``pending_decisions`` table: articles whose cluster must still be re-decided (``PendingRow``).

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23 11:45:49
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "pending_decisions",
        sa.Column("article_id", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("article_id"),
    )


def downgrade() -> None:
    op.drop_table("pending_decisions")
