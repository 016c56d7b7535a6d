"""Crawl runs name their worker: pid, host name and boot id.

Revision ID: 0004
Revises: 0003

Nullable columns added with plain ALTER TABLE ADD COLUMN; existing rows keep NULL
(no worker known: only their age can tell that they were abandoned).
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | Sequence[str] | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("crawl_runs", sa.Column("worker_pid", sa.Integer(), nullable=True))
    op.add_column("crawl_runs", sa.Column("worker_host", sa.String(length=255), nullable=True))
    op.add_column("crawl_runs", sa.Column("worker_boot", sa.String(length=64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("crawl_runs") as batch:
        batch.drop_column("worker_boot")
        batch.drop_column("worker_host")
        batch.drop_column("worker_pid")
