"""Repositories for alert delivery: licences, suppressions, decisions, copies, outbox.

Like `storage.repositories`, each wraps a Session it is given and never commits.
Delivery is at-least-once with a stable idempotency key: `claim` commits a lease
(attempts + 1, next_attempt_at pushed out) before anything is sent, so a crashed
dispatcher's alert is retried once the lease runs out, carrying the same delivery id
for the receiver to deduplicate; a sent alert is never picked again.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, exists, func, or_, select, update
from sqlalchemy.orm import Session, joinedload

from storage.engine import NotFoundError
from storage.models import (
    Alert,
    AlertDigest,
    AlertDigestItem,
    CopyKey,
    Destination,
    Licence,
    Match,
    MatchDecision,
    RightsHolder,
    SiteSuppression,
    Story,
    utcnow,
)
from storage.repositories import MATCH_STATUSES, Alerts, _insert, _insert_ignore

ALERT_STATUSES = frozenset({"pending", "sent", "failed", "suppressed"})


def new_delivery_id() -> str:
    """Random, so ids never repeat across databases (a reset must not look like a replay)."""
    return "msg_" + uuid.uuid4().hex


def scope_of(*, holder_id: int | None = None, story_id: int | None = None) -> str:
    if (holder_id is None) == (story_id is None):
        raise ValueError("give exactly one of a rights holder or a story")
    return f"holder:{holder_id}" if holder_id is not None else f"story:{story_id}"


def _story_scopes(session: Session, story_id: int) -> list[Any]:
    """Rows scoped to the story or to its holder."""
    holder_id = session.scalar(select(Story.holder_id).where(Story.id == story_id))
    scopes = [f"story:{story_id}"]
    if holder_id is not None:
        scopes.append(f"holder:{holder_id}")
    return scopes


class Licences:
    def __init__(self, session: Session) -> None:
        self.session = session

    def add(
        self, domain: str, *, holder_id: int | None = None, story_id: int | None = None, credit_line: str | None = None
    ) -> Licence:
        """Add or update a licence; the same (holder or story, domain) is one row."""
        scope = scope_of(holder_id=holder_id, story_id=story_id)
        self._check_owner(holder_id, story_id)
        credit = (credit_line or "").strip() or None
        stmt = _insert(self.session, Licence).values(
            scope=scope, holder_id=holder_id, story_id=story_id, domain=domain, credit_line=credit, created_at=utcnow()
        )
        stmt = stmt.on_conflict_do_update(index_elements=["scope", "domain"], set_={"credit_line": stmt.excluded.credit_line})
        self.session.execute(stmt)
        return self.session.scalars(
            select(Licence)
            .where(Licence.scope == scope, Licence.domain == domain)
            .execution_options(populate_existing=True)
        ).one()

    def _check_owner(self, holder_id: int | None, story_id: int | None) -> None:
        if holder_id is not None and self.session.get(RightsHolder, holder_id) is None:
            raise NotFoundError(f"no rights holder with id {holder_id}")
        if story_id is not None and self.session.get(Story, story_id) is None:
            raise NotFoundError(f"no story with id {story_id}")

    def remove(self, licence_id: int) -> bool:
        return bool(self.session.execute(delete(Licence).where(Licence.id == licence_id)).rowcount)

    def for_story(self, story_id: int) -> list[Licence]:
        stmt = select(Licence).where(Licence.scope.in_(_story_scopes(self.session, story_id)))
        return list(self.session.scalars(stmt.order_by(Licence.domain, Licence.id)))

    def list(self) -> list[Licence]:
        return list(self.session.scalars(select(Licence).order_by(Licence.scope, Licence.domain)))


class Suppressions:
    def __init__(self, session: Session) -> None:
        self.session = session

    def add(
        self, site: str, *, holder_id: int | None = None, story_id: int | None = None, match_id: int | None = None
    ) -> None:
        scope = scope_of(holder_id=holder_id, story_id=story_id)
        _insert_ignore(
            self.session,
            SiteSuppression,
            {"scope": scope, "holder_id": holder_id, "story_id": story_id, "site": site, "match_id": match_id,
             "created_at": utcnow()},
            ["scope", "site"],
        )

    def sites_for_story(self, story_id: int) -> list[str]:
        stmt = select(SiteSuppression.site).where(SiteSuppression.scope.in_(_story_scopes(self.session, story_id)))
        return sorted(set(self.session.scalars(stmt)))


class Decisions:
    def __init__(self, session: Session) -> None:
        self.session = session

    def record(self, match_id: int, decision: str) -> tuple[Match, str]:
        """Set the match's status to a person's decision and keep the history row."""
        if decision not in MATCH_STATUSES:
            raise ValueError(f"decision must be one of {sorted(MATCH_STATUSES)}, not {decision!r}")
        match = self.session.get(Match, match_id, options=[joinedload(Match.page), joinedload(Match.story)])
        if match is None:
            raise NotFoundError(f"no match with id {match_id} (see `copyhound matches`)")
        previous = match.status
        match.status = decision
        self.session.add(MatchDecision(match_id=match_id, decision=decision, previous_status=previous, created_at=utcnow()))
        self.session.flush()
        return match, previous

    def for_match(self, match_id: int) -> list[MatchDecision]:
        stmt = select(MatchDecision).where(MatchDecision.match_id == match_id)
        return list(self.session.scalars(stmt.order_by(MatchDecision.id)))


class CopyKeys:
    def __init__(self, session: Session) -> None:
        self.session = session

    def claim(self, story_id: int, match_id: int, keys: Sequence[str]) -> int:
        """Register the keys of a copy; the match that owns the copy is returned.

        The first match to claim any of the keys owns the copy; later variants add
        their other keys under that owner, so a chain AMP -> canonical -> mirror stays
        one copy. Concurrent claims are serialised by the unique (story, key).
        """
        if not keys:
            return match_id
        owners = self.session.scalars(
            select(CopyKey.match_id)
            .where(CopyKey.story_id == story_id, CopyKey.key.in_(list(keys)))
            .order_by(CopyKey.id)
        ).all()
        owner = owners[0] if owners else match_id
        for key in keys:
            _insert_ignore(self.session, CopyKey, {"story_id": story_id, "key": key, "match_id": owner}, ["story_id", "key"])
        # Re-read: a concurrent worker may have won a key between our read and insert.
        first = self.session.scalars(
            select(CopyKey.match_id)
            .where(CopyKey.story_id == story_id, CopyKey.key.in_(list(keys)))
            .order_by(CopyKey.id)
            .limit(1)
        ).first()
        return first if first is not None else owner


class Outbox:
    """Queueing and delivery bookkeeping for alerts and digests."""

    def __init__(self, session: Session) -> None:
        self.session = session

    # --- queueing -------------------------------------------------------------------

    def enqueue(self, match: Match, *, event: str, payload: dict[str, Any], default_events: Iterable[str]) -> list[Alert]:
        """One pending alert per enabled destination of the story's holder that wants
        `event` (see `storage.repositories.Alerts.enqueue`): once per occurrence of the
        event, as `storage.repositories.alert_occurrence` tells them apart."""
        return Alerts(self.session).enqueue(match, event=event, payload=payload, default_events=default_events)

    def suppress_for_match(self, match_id: int, *, keep_events: Iterable[str] = ()) -> int:
        """Withdraw the match's undelivered alerts after a person's decision."""
        stmt = (
            update(Alert)
            .where(Alert.match_id == match_id, Alert.status.in_(("pending", "failed")))
            .values(status="suppressed", next_attempt_at=None)
        )
        keep = list(keep_events)
        if keep:
            stmt = stmt.where(Alert.event.not_in(keep))
        return self.session.execute(stmt.execution_options(synchronize_session=False)).rowcount or 0

    # --- immediate delivery ------------------------------------------------------------

    def claim(self, *, now: datetime, lease: timedelta, limit: int = 1, exclude: Sequence[int] = ()) -> list[Alert]:
        """Take due alerts of immediate destinations for one delivery attempt each.

        The caller commits right away: from then on the attempt is counted and no other
        dispatcher picks the row until `now + lease`.
        """
        stmt = (
            select(Alert)
            .outerjoin(Destination, Destination.id == Alert.destination_id)
            .where(
                Alert.status == "pending",
                or_(Alert.next_attempt_at.is_(None), Alert.next_attempt_at <= now),
                or_(Destination.id.is_(None), Destination.digest == "immediate"),
                ~exists().where(AlertDigestItem.alert_id == Alert.id),
            )
            .order_by(Alert.created_at, Alert.id)
            .limit(limit)
        )
        if exclude:
            stmt = stmt.where(Alert.id.not_in(list(exclude)))
        if self.session.get_bind().dialect.name == "postgresql":
            stmt = stmt.with_for_update(of=Alert, skip_locked=True)
        alerts = list(self.session.scalars(stmt))
        for alert in alerts:
            alert.attempts += 1
            alert.next_attempt_at = now + lease
            if alert.delivery_id is None:
                alert.delivery_id = new_delivery_id()
        self.session.flush()
        return alerts

    def mark_sent(self, alert_id: int, *, now: datetime) -> None:
        self.session.execute(
            update(Alert)
            .where(Alert.id == alert_id)
            .values(status="sent", sent_at=now, next_attempt_at=None, last_error=None)
            .execution_options(synchronize_session=False)
        )

    def mark_failed_attempt(self, alert_id: int, *, error: str, retry_at: datetime | None) -> None:
        """Record a failed attempt: retry at `retry_at`, or give up (status failed) when None."""
        values: dict[str, Any] = {"last_error": error[:2000], "next_attempt_at": retry_at}
        if retry_at is None:
            values["status"] = "failed"
        self.session.execute(
            update(Alert).where(Alert.id == alert_id, Alert.status == "pending").values(**values)
            .execution_options(synchronize_session=False)
        )

    def mark_suppressed(self, alert_id: int, reason: str) -> None:
        self.session.execute(
            update(Alert).where(Alert.id == alert_id)
            .values(status="suppressed", last_error=reason, next_attempt_at=None)
            .execution_options(synchronize_session=False)
        )

    # --- digests ---------------------------------------------------------------------

    def cut_digests(self, *, now: datetime, window_start: Any) -> list[AlertDigest]:
        """Group pending alerts of digest destinations from finished windows into digests.

        `window_start(period, now)` gives the start of the current window; alerts
        created before it are due. The unique (destination, window_end) makes cutting
        the same window twice a no-op.
        """
        made: list[AlertDigest] = []
        destinations = self.session.scalars(
            select(Destination).where(Destination.digest != "immediate").order_by(Destination.id)
        ).all()
        for destination in destinations:
            end = window_start(destination.digest, now)
            alert_ids = self.session.scalars(
                select(Alert.id)
                .where(
                    Alert.destination_id == destination.id,
                    Alert.status == "pending",
                    Alert.created_at < end,
                    ~exists().where(AlertDigestItem.alert_id == Alert.id),
                )
                .order_by(Alert.created_at, Alert.id)
            ).all()
            if not alert_ids:
                continue
            digest_id = _insert_ignore(
                self.session,
                AlertDigest,
                {
                    "destination_id": destination.id, "period": destination.digest, "window_end": end,
                    "delivery_id": new_delivery_id(), "status": "pending", "attempts": 0, "created_at": now,
                },
                ["destination_id", "window_end"],
            )
            if digest_id is None:  # this window was cut before: late alerts join it if unsent
                digest = self.session.scalars(
                    select(AlertDigest).where(AlertDigest.destination_id == destination.id, AlertDigest.window_end == end)
                ).one()
                if digest.status != "pending" or digest.attempts:
                    continue
                digest_id = digest.id
            for alert_id in alert_ids:
                self.session.execute(
                    _insert(self.session, AlertDigestItem)
                    .values(alert_id=alert_id, digest_id=digest_id)
                    .on_conflict_do_nothing(index_elements=["alert_id"])
                )
            made.append(self.session.get(AlertDigest, digest_id))
        self.session.flush()
        return made

    def claim_digests(
        self, *, now: datetime, lease: timedelta, limit: int = 1, exclude: Sequence[int] = ()
    ) -> list[AlertDigest]:
        stmt = (
            select(AlertDigest)
            .where(
                AlertDigest.status == "pending",
                or_(AlertDigest.next_attempt_at.is_(None), AlertDigest.next_attempt_at <= now),
            )
            .order_by(AlertDigest.created_at, AlertDigest.id)
            .limit(limit)
        )
        if exclude:
            stmt = stmt.where(AlertDigest.id.not_in(list(exclude)))
        if self.session.get_bind().dialect.name == "postgresql":
            stmt = stmt.with_for_update(skip_locked=True)
        digests = list(self.session.scalars(stmt))
        for digest in digests:
            digest.attempts += 1
            digest.next_attempt_at = now + lease
        self.session.flush()
        return digests

    def digest_alerts(self, digest_id: int) -> list[Alert]:
        stmt = (
            select(Alert)
            .join(AlertDigestItem, AlertDigestItem.alert_id == Alert.id)
            .where(AlertDigestItem.digest_id == digest_id, Alert.status == "pending")
            .order_by(Alert.created_at, Alert.id)
        )
        return list(self.session.scalars(stmt))

    def mark_digest(self, digest_id: int, *, now: datetime, error: str | None = None, retry_at: datetime | None = None) -> None:
        """Sent when `error` is None; else a failed attempt, final when `retry_at` is None.

        The digest's alerts follow it: sent together, or failed together.
        """
        digest = self.session.get(AlertDigest, digest_id)
        if digest is None:
            raise NotFoundError(f"no digest with id {digest_id}")
        members = select(AlertDigestItem.alert_id).where(AlertDigestItem.digest_id == digest_id)
        if error is None:
            digest.status, digest.sent_at, digest.next_attempt_at, digest.last_error = "sent", now, None, None
            alert_values: dict[str, Any] = {"status": "sent", "sent_at": now, "last_error": None, "next_attempt_at": None}
        else:
            digest.last_error, digest.next_attempt_at = error[:2000], retry_at
            alert_values = {"last_error": error[:2000], "attempts": Alert.attempts + 1}
            if retry_at is None:
                digest.status = "failed"
                alert_values["status"] = "failed"
        self.session.execute(
            update(Alert).where(Alert.id.in_(members), Alert.status == "pending").values(**alert_values)
            .execution_options(synchronize_session=False)
        )
        self.session.flush()

    # --- listing and retrying -------------------------------------------------------------

    def list(self, *, status: str | None = None, limit: int | None = None) -> list[Alert]:
        stmt = select(Alert).options(joinedload(Alert.match).joinedload(Match.page))
        if status is not None:
            stmt = stmt.where(Alert.status == status)
        stmt = stmt.order_by(Alert.id)
        if limit is not None:
            stmt = stmt.limit(limit)
        return list(self.session.scalars(stmt))

    def counts(self) -> dict[str, int]:
        rows = self.session.execute(select(Alert.status, func.count()).group_by(Alert.status)).all()
        return {status: count for status, count in rows}

    def retry(self, alert_ids: Sequence[int] = (), *, now: datetime) -> int:
        """Failed alerts (all, or the given ids) back to pending with a fresh attempt budget.

        The delivery id is kept, so a receiver that did get an earlier attempt can
        still drop the repeat. A failed digest goes back to pending with its alerts.
        """
        failed = select(Alert.id).where(Alert.status == "failed")
        if alert_ids:
            missing = set(alert_ids) - set(self.session.scalars(select(Alert.id).where(Alert.id.in_(list(alert_ids)))))
            if missing:
                raise NotFoundError(f"no alert with id {', '.join(map(str, sorted(missing)))}")
            failed = failed.where(Alert.id.in_(list(alert_ids)))
        ids = list(self.session.scalars(failed))
        if not ids:
            return 0
        self.session.execute(
            update(Alert).where(Alert.id.in_(ids))
            .values(status="pending", attempts=0, next_attempt_at=now)
            .execution_options(synchronize_session=False)
        )
        digest_ids = select(AlertDigestItem.digest_id).where(AlertDigestItem.alert_id.in_(ids))
        self.session.execute(
            update(AlertDigest).where(AlertDigest.id.in_(digest_ids), AlertDigest.status == "failed")
            .values(status="pending", attempts=0, next_attempt_at=now)
            .execution_options(synchronize_session=False)
        )
        return len(ids)


class Destinations:
    def __init__(self, session: Session) -> None:
        self.session = session

    def get(self, destination_id: int) -> Destination:
        destination = self.session.get(Destination, destination_id)
        if destination is None:
            raise NotFoundError(f"no destination with id {destination_id} (see `copyhound alerts destinations`)")
        return destination

    def list(self) -> list[Destination]:
        stmt = select(Destination).options(joinedload(Destination.holder))
        return list(self.session.scalars(stmt.order_by(Destination.id)))

    def set_events(self, destination_id: int, events: Sequence[str] | None) -> Destination:
        destination = self.get(destination_id)
        destination.events = list(events) if events is not None else None
        self.session.flush()
        return destination

    def set_digest(self, destination_id: int, digest: str) -> Destination:
        from storage.repositories import DIGESTS

        if digest not in DIGESTS:
            raise ValueError(f"digest must be one of {sorted(DIGESTS)}, not {digest!r}")
        destination = self.get(destination_id)
        destination.digest = digest
        self.session.flush()
        return destination


__all__ = [
    "ALERT_STATUSES",
    "CopyKeys",
    "Decisions",
    "Destinations",
    "Licences",
    "Outbox",
    "Suppressions",
    "new_delivery_id",
    "scope_of",
]
