"""Indexes that ``/metrics`` counts through: pages per source (``ix_pages_source_id``) and events per type
(``ix_events_type``). Each count then reads an index, not the pages (their HTML) or the event log.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-01 18:40:00
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index("ix_pages_source_id", "pages", ["source_id"], unique=False)
    op.create_index("ix_events_type", "events", ["type"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_events_type", table_name="events")
    op.drop_index("ix_pages_source_id", table_name="pages")
