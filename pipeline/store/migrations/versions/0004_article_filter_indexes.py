"""Indexes for the read API's article filters (``GET /articles``: site, published_since, ingested_since, flag).

A site walks ``(site, id)`` in id order; published and ingested dates are ranges probed in date order
(``is_canonical`` and ``id`` ride along so the probe reads the index alone); each known flag has a partial index
of the articles whose JSON flags list holds it, with exactly the condition ``queries.flag_condition`` writes.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-23 15:10:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

FLAGS = ("spun", "scraped")


def upgrade() -> None:
    op.create_index("ix_articles_site", "articles", ["site", "id"], unique=False)
    op.create_index("ix_articles_published", "articles", ["published", "is_canonical", "id"], unique=False)
    op.create_index("ix_articles_created_at", "articles", ["created_at", "is_canonical", "id"], unique=False)
    for flag in FLAGS:
        holds = sa.text(f"CAST(flags AS TEXT) LIKE '%\"{flag}\"%'")
        op.create_index(f"ix_articles_flag_{flag}", "articles", ["id"], unique=False,
                        postgresql_where=holds, sqlite_where=holds)


def downgrade() -> None:
    for flag in reversed(FLAGS):
        op.drop_index(f"ix_articles_flag_{flag}", table_name="articles")
    op.drop_index("ix_articles_created_at", table_name="articles")
    op.drop_index("ix_articles_published", table_name="articles")
    op.drop_index("ix_articles_site", table_name="articles")
