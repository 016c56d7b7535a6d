"""Alert delivery: licences, site suppressions, decisions, copy keys, digests.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-26

Frozen copy of the models added at this revision. Existing tables only gain
nullable columns (plain ALTER TABLE ADD COLUMN): SQLite batch mode would rebuild
`destinations`, and dropping it with foreign keys on would null every alert's
destination_id through ON DELETE SET NULL.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _scoped(name: str, key: str) -> list[sa.SchemaItem]:
    """scope/holder_id/story_id columns shared by licences and site_suppressions."""
    return [
        sa.Column("scope", sa.String(length=40), nullable=False),
        sa.Column("holder_id", sa.Integer(), nullable=True),
        sa.Column("story_id", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(
            ["holder_id"], ["rights_holders.id"],
            name=op.f(f"fk_{name}_holder_id_rights_holders"), ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["story_id"], ["stories.id"], name=op.f(f"fk_{name}_story_id_stories"), ondelete="CASCADE"
        ),
        sa.UniqueConstraint("scope", key, name=op.f(f"uq_{name}_scope_{key}")),
    ]


def upgrade() -> None:
    ts = sa.DateTime(timezone=True)

    op.add_column("destinations", sa.Column("events", sa.JSON(), nullable=True))
    op.add_column("alerts", sa.Column("delivery_id", sa.String(length=64), nullable=True))
    op.create_index(op.f("ix_alerts_delivery_id"), "alerts", ["delivery_id"], unique=True)

    op.create_table(
        "licences",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("domain", sa.String(length=300), nullable=False),
        sa.Column("credit_line", sa.String(length=300), nullable=True),
        sa.Column("created_at", ts, nullable=False),
        *_scoped("licences", "domain"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_licences")),
    )
    op.create_index(op.f("ix_licences_holder_id"), "licences", ["holder_id"])
    op.create_index(op.f("ix_licences_story_id"), "licences", ["story_id"])

    op.create_table(
        "site_suppressions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("site", sa.String(length=300), nullable=False),
        sa.Column("match_id", sa.Integer(), nullable=True),
        sa.Column("created_at", ts, nullable=False),
        *_scoped("site_suppressions", "site"),
        sa.ForeignKeyConstraint(
            ["match_id"], ["matches.id"], name=op.f("fk_site_suppressions_match_id_matches"), ondelete="SET NULL"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_site_suppressions")),
    )
    op.create_index(op.f("ix_site_suppressions_holder_id"), "site_suppressions", ["holder_id"])
    op.create_index(op.f("ix_site_suppressions_story_id"), "site_suppressions", ["story_id"])
    op.create_index(op.f("ix_site_suppressions_match_id"), "site_suppressions", ["match_id"])

    op.create_table(
        "match_decisions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("match_id", sa.Integer(), nullable=False),
        sa.Column("decision", sa.String(length=20), nullable=False),
        sa.Column("previous_status", sa.String(length=20), nullable=False),
        sa.Column("created_at", ts, nullable=False),
        sa.ForeignKeyConstraint(
            ["match_id"], ["matches.id"], name=op.f("fk_match_decisions_match_id_matches"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_match_decisions")),
    )
    op.create_index(op.f("ix_match_decisions_match_id"), "match_decisions", ["match_id"])

    op.create_table(
        "copy_keys",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("story_id", sa.Integer(), nullable=False),
        sa.Column("key", sa.String(length=80), nullable=False),
        sa.Column("match_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["story_id"], ["stories.id"], name=op.f("fk_copy_keys_story_id_stories"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["match_id"], ["matches.id"], name=op.f("fk_copy_keys_match_id_matches"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_copy_keys")),
        sa.UniqueConstraint("story_id", "key", name=op.f("uq_copy_keys_story_id_key")),
    )
    op.create_index(op.f("ix_copy_keys_match_id"), "copy_keys", ["match_id"])

    op.create_table(
        "alert_digests",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("destination_id", sa.Integer(), nullable=True),
        sa.Column("period", sa.String(length=20), nullable=False),
        sa.Column("window_end", ts, nullable=False),
        sa.Column("delivery_id", sa.String(length=64), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("created_at", ts, nullable=False),
        sa.Column("next_attempt_at", ts, nullable=True),
        sa.Column("sent_at", ts, nullable=True),
        sa.ForeignKeyConstraint(
            ["destination_id"], ["destinations.id"],
            name=op.f("fk_alert_digests_destination_id_destinations"), ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_alert_digests")),
        sa.UniqueConstraint("delivery_id", name=op.f("uq_alert_digests_delivery_id")),
        sa.UniqueConstraint(
            "destination_id", "window_end", name=op.f("uq_alert_digests_destination_id_window_end")
        ),
    )
    op.create_index(
        "ix_alert_digests_status_next_attempt_at", "alert_digests", ["status", "next_attempt_at"]
    )

    op.create_table(
        "alert_digest_items",
        sa.Column("alert_id", sa.Integer(), nullable=False),
        sa.Column("digest_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["alert_id"], ["alerts.id"], name=op.f("fk_alert_digest_items_alert_id_alerts"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["digest_id"], ["alert_digests.id"],
            name=op.f("fk_alert_digest_items_digest_id_alert_digests"), ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("alert_id", name=op.f("pk_alert_digest_items")),
    )
    op.create_index(op.f("ix_alert_digest_items_digest_id"), "alert_digest_items", ["digest_id"])


def downgrade() -> None:
    op.drop_table("alert_digest_items")
    op.drop_table("alert_digests")
    op.drop_table("copy_keys")
    op.drop_table("match_decisions")
    op.drop_table("site_suppressions")
    op.drop_table("licences")
    op.drop_index(op.f("ix_alerts_delivery_id"), table_name="alerts")
    with op.batch_alter_table("alerts") as batch:
        batch.drop_column("delivery_id")
    with op.batch_alter_table("destinations") as batch:
        batch.drop_column("events")
