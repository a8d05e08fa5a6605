"""The ``sitemap_lastmods`` table: the sitemap ``<lastmod>`` of each URL at its last fetch
(``SitemapLastmodRow``), so a re-run skips the URLs whose lastmod has not moved.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-23 16:30:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "sitemap_lastmods",
        sa.Column("url_key", sa.String(length=40), nullable=False),
        sa.Column("lastmod", sa.DateTime(), nullable=False),
        sa.Column("checked_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("url_key"),
    )


def downgrade() -> None:
    op.drop_table("sitemap_lastmods")
