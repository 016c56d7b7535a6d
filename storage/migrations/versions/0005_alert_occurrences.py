"""Alerts per occurrence: a copy taken down twice is alerted twice.

Revision ID: 0005
Revises: 0004

`alerts.occurrence` joins the unique key (match, destination, event, occurrence) and
`matches.status_period` counts status changes (see storage.repositories
.alert_occurrence). Existing rows get the server defaults: every alert is occurrence
"1", every match is in period 1, and later occurrences are numbered from 2, so no
new alert can collide with an old one.

SQLite cannot change a constraint in place: batch mode rebuilds `alerts`, and
dropping the old table runs ON DELETE CASCADE into `alert_digest_items` (foreign
keys are on, and cannot be switched off inside the migration's transaction). The
digest memberships are therefore kept aside in a temporary table and put back.
`matches` is referenced by four tables and is never rebuilt: it only gains or drops
a plain column.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | Sequence[str] | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

OLD_KEY = ("match_id", "destination_id", "event")
NEW_KEY = (*OLD_KEY, "occurrence")


@contextmanager
def _keeping_digest_items() -> Iterator[None]:
    if op.get_context().dialect.name != "sqlite":
        yield
        return
    op.execute(sa.text(
        "CREATE TEMP TABLE copyhound_keep_digest_items AS SELECT alert_id, digest_id FROM alert_digest_items"
    ))
    yield
    op.execute(sa.text(
        "INSERT OR IGNORE INTO alert_digest_items (alert_id, digest_id) "
        "SELECT alert_id, digest_id FROM copyhound_keep_digest_items "
        "WHERE alert_id IN (SELECT id FROM alerts)"
    ))
    op.execute(sa.text("DROP TABLE copyhound_keep_digest_items"))


def upgrade() -> None:
    op.add_column("matches", sa.Column("status_period", sa.Integer(), server_default="1", nullable=False))
    with _keeping_digest_items(), op.batch_alter_table("alerts") as batch:
        batch.add_column(sa.Column("occurrence", sa.String(length=80), server_default="1", nullable=False))
        batch.drop_constraint("uq_alerts_match_id_destination_id_event", type_="unique")
        batch.create_unique_constraint(op.f("uq_alerts_match_id_destination_id_event_occurrence"), list(NEW_KEY))


def downgrade() -> None:
    # The old key allows one alert per event: keep each event's first occurrence.
    alerts = sa.table("alerts", sa.column("id"), *(sa.column(c) for c in OLD_KEY))
    first = (
        sa.select(sa.func.min(alerts.c.id))
        .where(alerts.c.destination_id.is_not(None))
        .group_by(*(alerts.c[c] for c in OLD_KEY))
    )
    op.execute(alerts.delete().where(alerts.c.destination_id.is_not(None), alerts.c.id.not_in(first)))
    with _keeping_digest_items(), op.batch_alter_table("alerts") as batch:
        batch.drop_constraint("uq_alerts_match_id_destination_id_event_occurrence", type_="unique")
        batch.create_unique_constraint(op.f("uq_alerts_match_id_destination_id_event"), list(OLD_KEY))
        batch.drop_column("occurrence")
    op.drop_column("matches", "status_period")
