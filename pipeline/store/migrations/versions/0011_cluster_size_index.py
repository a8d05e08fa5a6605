"""The index a run's summary counts clusters through (``ix_clusters_size``): clusters with articles
(``size > 0``) and with copies (``size > 1``). Without it each count read the whole clusters table; at a
million articles that was 65 MB read at the end of every ``reprint ingest``, however small.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-02 01:20:00
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index("ix_clusters_size", "clusters", ["size"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_clusters_size", table_name="clusters")
