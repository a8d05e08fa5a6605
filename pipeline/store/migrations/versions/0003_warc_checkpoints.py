"""The ``warc_checkpoints`` table: where a resumed WARC read continues (``WarcCheckpointRow``).

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-23 12:40:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "warc_checkpoints",
        sa.Column("key", sa.String(length=1024), nullable=False),
        sa.Column("offset", sa.BigInteger(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("key"),
    )


def downgrade() -> None:
    op.drop_table("warc_checkpoints")
