"""Page snapshots (evidence), copy-of-copy edges, per-source options.

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | Sequence[str] | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("sources", sa.Column("options", sa.JSON(), nullable=True))
    op.create_table(
        "page_snapshots",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("page_id", sa.Integer(), nullable=False),
        sa.Column("fetched_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("http_status", sa.Integer(), nullable=True),
        sa.Column("headers", sa.JSON(), nullable=False),
        sa.Column("body", sa.LargeBinary(), nullable=False),
        sa.Column("body_sha256", sa.String(length=64), nullable=False),
        sa.Column("content_hash", sa.String(length=64), nullable=True),
        sa.ForeignKeyConstraint(["page_id"], ["pages.id"], name=op.f("fk_page_snapshots_page_id_pages"), ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_page_snapshots")),
        sa.UniqueConstraint("page_id", "body_sha256", name=op.f("uq_page_snapshots_page_id_body_sha256")),
    )
    op.create_index(op.f("ix_page_snapshots_page_id"), "page_snapshots", ["page_id"])
    op.create_table(
        "copy_edges",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("story_id", sa.Integer(), nullable=False),
        sa.Column("source_page_id", sa.Integer(), nullable=False),
        sa.Column("copy_page_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("similarity", sa.Float(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["story_id"], ["stories.id"], name=op.f("fk_copy_edges_story_id_stories"), ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["source_page_id"], ["pages.id"], name=op.f("fk_copy_edges_source_page_id_pages"), ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["copy_page_id"], ["pages.id"], name=op.f("fk_copy_edges_copy_page_id_pages"), ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_copy_edges")),
        sa.UniqueConstraint("story_id", "source_page_id", "copy_page_id", name=op.f("uq_copy_edges_story_id_source_page_id_copy_page_id")),
    )
    op.create_index(op.f("ix_copy_edges_story_id"), "copy_edges", ["story_id"])


def downgrade() -> None:
    op.drop_index(op.f("ix_copy_edges_story_id"), table_name="copy_edges")
    op.drop_table("copy_edges")
    op.drop_index(op.f("ix_page_snapshots_page_id"), table_name="page_snapshots")
    op.drop_table("page_snapshots")
    with op.batch_alter_table("sources") as batch:
        batch.drop_column("options")
