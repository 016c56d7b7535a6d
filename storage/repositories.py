"""Repositories: the queries and idempotent saves every other package uses.

Each repository wraps a Session it is given and never commits: the caller owns the
transaction (one unit of work per page, per command), so a page, its matches and
their outbox alerts land together or not at all. Saves that workers may race on use
INSERT ... ON CONFLICT on the table's unique key, so several crawl processes on one
PostgreSQL database never fail with IntegrityError and saving twice stays a no-op.
"""

from __future__ import annotations

import hashlib
import zlib
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import Select, func, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session, joinedload

from storage.engine import NotFoundError, StorageError
from storage.models import (
    Alert,
    CrawlRun,
    Destination,
    Match,
    Page,
    PageSnapshot,
    RightsHolder,
    Source,
    Story,
    utcnow,
)

CHANNELS = frozenset({"email", "webhook"})
DIGESTS = frozenset({"immediate", "hourly", "daily"})
SOURCE_KINDS = frozenset({"start_url", "feed", "sitemap", "search"})
MATCH_STATUSES = frozenset({"active", "removed", "licensed", "false_positive", "ignored"})


def text_hash(text: str) -> str:
    """sha256 of the UTF-8 text: the identity of a story's wording."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _insert(session: Session, model: type) -> Any:
    """The dialect's INSERT construct, which has on_conflict_do_nothing/do_update."""
    name = session.get_bind().dialect.name
    if name == "postgresql":
        return postgresql.insert(model)
    if name == "sqlite":
        return sqlite.insert(model)
    raise StorageError(f"unsupported database dialect {name!r}: use SQLite or PostgreSQL")


def _insert_ignore(session: Session, model: type, values: Mapping[str, Any], keys: list[str]) -> int | None:
    """Insert one row unless its unique key exists; the new id, or None if it existed.

    On PostgreSQL a concurrent uncommitted insert of the same key makes this wait for
    that transaction, then do nothing: the loser sees the winner's row, never an error.
    """
    stmt = (
        _insert(session, model)
        .values(**values)
        .on_conflict_do_nothing(index_elements=keys)
        .returning(model.id)
    )
    return session.execute(stmt).scalar_one_or_none()


def _for_update(stmt: Select[Any], session: Session) -> Select[Any]:
    """Lock the row on PostgreSQL for a read-modify-write; SQLite's write lock already
    covers the whole transaction (storage.engine begins transactions IMMEDIATE)."""
    if session.get_bind().dialect.name == "postgresql":
        return stmt.with_for_update()
    return stmt


class Holders:
    def __init__(self, session: Session) -> None:
        self.session = session

    def get_or_create(self, name: str) -> RightsHolder:
        name = name.strip()
        if not name:
            raise ValueError("rights holder name must not be empty")
        _insert_ignore(self.session, RightsHolder, {"name": name, "created_at": utcnow()}, ["name"])
        holder = self.by_name(name)
        assert holder is not None  # inserted or already there, in this transaction
        return holder

    def by_name(self, name: str) -> RightsHolder | None:
        return self.session.scalars(select(RightsHolder).where(RightsHolder.name == name.strip())).one_or_none()

    def list(self) -> list[RightsHolder]:
        return list(self.session.scalars(select(RightsHolder).order_by(RightsHolder.name)))

    def add_destination(
        self,
        holder: RightsHolder,
        channel: str,
        target: str,
        *,
        secret_env: str | None = None,
        digest: str = "immediate",
    ) -> Destination:
        """Add (or re-configure) a destination; the same (holder, channel, target) is one row.

        Re-adding updates secret_env and digest, so re-running a setup command applies
        changed settings; `enabled`, which a person may have switched off, is kept.
        """
        if channel not in CHANNELS:
            raise ValueError(f"channel must be one of {sorted(CHANNELS)}, not {channel!r}")
        if digest not in DIGESTS:
            raise ValueError(f"digest must be one of {sorted(DIGESTS)}, not {digest!r}")
        target = target.strip()
        if not target:
            raise ValueError("destination target (email address or webhook URL) must not be empty")
        if holder.id is None:
            self.session.flush()
        stmt = _insert(self.session, Destination).values(
            holder_id=holder.id,
            channel=channel,
            target=target,
            secret_env=secret_env,
            digest=digest,
            enabled=True,
        )
        stmt = stmt.on_conflict_do_update(
            index_elements=["holder_id", "channel", "target"],
            set_={"secret_env": stmt.excluded.secret_env, "digest": stmt.excluded.digest},
        )
        self.session.execute(stmt)
        return self.session.scalars(
            select(Destination)
            .where(
                Destination.holder_id == holder.id,
                Destination.channel == channel,
                Destination.target == target,
            )
            .execution_options(populate_existing=True)
        ).one()

    def destinations(self, holder: RightsHolder, *, enabled_only: bool = False) -> list[Destination]:
        stmt = select(Destination).where(Destination.holder_id == holder.id)
        if enabled_only:
            stmt = stmt.where(Destination.enabled.is_(True))
        return list(self.session.scalars(stmt.order_by(Destination.id)))


class Stories:
    def __init__(self, session: Session) -> None:
        self.session = session

    def add(
        self,
        *,
        title: str,
        text: str,
        holder: RightsHolder | None = None,
        canonical_url: str | None = None,
        published_at: datetime | None = None,
        fingerprint: bytes | None = None,
        fingerprint_params: dict[str, Any] | None = None,
    ) -> tuple[Story, bool]:
        """Register a story; the same holder and identical text give back the existing one."""
        if not text or not text.strip():
            raise ValueError("story text must not be empty")
        if fingerprint is not None and fingerprint_params is None:
            raise ValueError("fingerprint_params are required with a fingerprint (scheme, num_perm, seed, shingles)")
        digest = text_hash(text)
        if holder is not None and holder.id is None:
            self.session.flush()
        holder_id = holder.id if holder is not None else None
        existing = self.session.scalars(
            select(Story)
            .where(
                Story.text_hash == digest,
                Story.holder_id.is_(None) if holder_id is None else Story.holder_id == holder_id,
            )
            .order_by(Story.id)
            .limit(1)
        ).first()
        if existing is not None:
            return existing, False
        story = Story(
            title=title,
            text=text,
            text_hash=digest,
            holder=holder,
            canonical_url=canonical_url,
            published_at=published_at,
            fingerprint=fingerprint,
            fingerprint_params=fingerprint_params,
        )
        self.session.add(story)
        self.session.flush()
        return story, True

    def get(self, story_id: int) -> Story | None:
        return self.session.get(Story, story_id)

    def list(self) -> list[Story]:
        return list(self.session.scalars(select(Story).order_by(Story.id)))

    def remove(self, story_id: int) -> bool:
        """Delete a story; the database cascades to its sources, matches and alerts."""
        story = self.session.get(Story, story_id)
        if story is None:
            return False
        self.session.delete(story)
        self.session.flush()
        return True


class Sources:
    def __init__(self, session: Session) -> None:
        self.session = session

    def add(self, story_id: int, kind: str, url: str, *, max_depth: int = 2, max_pages: int = 200) -> Source:
        """Add a source; re-adding the same (story, kind, url) updates its limits only."""
        if kind not in SOURCE_KINDS:
            raise ValueError(f"source kind must be one of {sorted(SOURCE_KINDS)}, not {kind!r}")
        url = url.strip()
        if not url:
            raise ValueError("source URL must not be empty")
        if max_depth < 0 or max_pages < 1:
            raise ValueError(f"need max_depth >= 0 and max_pages >= 1, got {max_depth} and {max_pages}")
        if self.session.get(Story, story_id) is None:
            raise NotFoundError(f"no story with id {story_id}")
        stmt = _insert(self.session, Source).values(
            story_id=story_id,
            kind=kind,
            url=url,
            max_depth=max_depth,
            max_pages=max_pages,
            created_at=utcnow(),
        )
        stmt = stmt.on_conflict_do_update(
            index_elements=["story_id", "kind", "url"],
            set_={"max_depth": stmt.excluded.max_depth, "max_pages": stmt.excluded.max_pages},
        )
        self.session.execute(stmt)
        return self.session.scalars(
            select(Source)
            .where(Source.story_id == story_id, Source.kind == kind, Source.url == url)
            .execution_options(populate_existing=True)
        ).one()

    def for_story(self, story_id: int) -> list[Source]:
        return list(self.session.scalars(select(Source).where(Source.story_id == story_id).order_by(Source.id)))


class Pages:
    def __init__(self, session: Session) -> None:
        self.session = session

    def upsert(
        self,
        *,
        url: str,
        canonical_url: str | None = None,
        site: str | None = None,
        http_status: int | None = None,
        content_type: str | None = None,
        content_hash: str | None = None,
        title: str | None = None,
        text: str | None = None,
        published: str | None = None,
        site_name: str | None = None,
        etag: str | None = None,
        last_modified: str | None = None,
        fetched_at: datetime | None = None,
    ) -> tuple[Page, bool]:
        """Save a fetch of `url`; `changed` says whether the content is new to us.

        Unchanged content (same content_hash, or no hash at all, e.g. a 304) only
        refreshes fetched_at, http_status and the cache validators, so downstream work
        (matching, alerts) can be skipped by checksum.
        """
        if not url:
            raise ValueError("page URL must not be empty")
        fetched = fetched_at or utcnow()
        content = {
            "canonical_url": canonical_url,
            "site": site,
            "content_type": content_type,
            "content_hash": content_hash,
            "title": title,
            "text": text,
            "published": published,
            "site_name": site_name,
        }
        new_id = _insert_ignore(
            self.session,
            Page,
            {
                "url": url,
                "http_status": http_status,
                "fetched_at": fetched,
                "etag": etag,
                "last_modified": last_modified,
                **content,
            },
            ["url"],
        )
        if new_id is not None:
            page = self.session.get(Page, new_id, populate_existing=True)
            assert page is not None
            return page, True

        page = self.session.scalars(
            _for_update(select(Page).where(Page.url == url), self.session).execution_options(
                populate_existing=True
            )
        ).one()
        changed = content_hash is not None and content_hash != page.content_hash
        page.fetched_at = fetched
        page.http_status = http_status
        if etag is not None:
            page.etag = etag
        if last_modified is not None:
            page.last_modified = last_modified
        if changed:
            for key, value in content.items():
                setattr(page, key, value)
        self.session.flush()
        return page, changed

    def by_url(self, url: str) -> Page | None:
        return self.session.scalars(select(Page).where(Page.url == url)).one_or_none()

    def pending_match_ids(self, *, limit: int = 100_000) -> list[int]:
        """Pages whose current text has not been matched yet, oldest first."""
        query = (
            select(Page.id)
            .where(Page.text.is_not(None), or_(Page.matched_hash.is_(None), Page.matched_hash != Page.content_hash))
            .order_by(Page.id)
            .limit(limit)
        )
        return list(self.session.scalars(query))

    def recent_texts(self, *, limit: int) -> list[str]:
        """Texts of the most recently fetched pages: the background for the matcher."""
        query = select(Page.text).where(Page.text.is_not(None)).order_by(Page.fetched_at.desc(), Page.id.desc()).limit(limit)
        return list(self.session.scalars(query))

    def get(self, page_id: int) -> Page | None:
        return self.session.get(Page, page_id)


class Matches:
    def __init__(self, session: Session) -> None:
        self.session = session

    def upsert(
        self,
        *,
        story_id: int,
        page_id: int,
        kind: str,
        confidence: float,
        story_coverage: float,
        page_coverage: float,
        scores: dict[str, Any],
        evidence: list[Any],
        seen_at: datetime | None = None,
    ) -> tuple[Match, bool]:
        """Record the verdict for (story, page); `is_new` is True only the first time.

        A re-seen match refreshes last_seen and the verdict, but keeps first_seen (when
        the copy appeared) and status (a person's decision, e.g. "licensed").
        """
        if self.session.get(Story, story_id) is None:
            raise NotFoundError(f"no story with id {story_id}")
        if self.session.get(Page, page_id) is None:
            raise NotFoundError(f"no page with id {page_id}")
        seen = seen_at or utcnow()
        verdict = {
            "kind": kind,
            "confidence": float(confidence),
            "story_coverage": float(story_coverage),
            "page_coverage": float(page_coverage),
            "scores": dict(scores),
            "evidence": list(evidence),
        }
        new_id = _insert_ignore(
            self.session,
            Match,
            {
                "story_id": story_id,
                "page_id": page_id,
                "first_seen": seen,
                "last_seen": seen,
                "status": "active",
                **verdict,
            },
            ["story_id", "page_id"],
        )
        if new_id is not None:
            match = self.session.get(Match, new_id, populate_existing=True)
            assert match is not None
            return match, True

        match = self.session.scalars(
            _for_update(
                select(Match).where(Match.story_id == story_id, Match.page_id == page_id), self.session
            ).execution_options(populate_existing=True)
        ).one()
        if match.last_seen is None or seen > match.last_seen:
            match.last_seen = seen
        for key, value in verdict.items():
            if getattr(match, key) != value:
                setattr(match, key, value)
        self.session.flush()
        return match, False

    def touch_page(self, page_id: int, *, seen_at: datetime | None = None) -> int:
        """A page was re-fetched unchanged: its matches were seen again. Returns how many.

        Only last_seen moves (never backwards); verdicts, first_seen and status stay.
        """
        seen = seen_at or utcnow()
        self.session.execute(
            update(Match)
            .where(Match.page_id == page_id, Match.last_seen < seen)
            .values(last_seen=seen)
            .execution_options(synchronize_session="fetch")
        )
        return self.session.scalar(select(func.count()).select_from(Match).where(Match.page_id == page_id)) or 0

    def get(self, match_id: int) -> Match | None:
        return self.session.get(Match, match_id, options=[joinedload(Match.page), joinedload(Match.story)])

    def set_status(self, match_id: int, status: str) -> Match:
        """A person's decision about a match (licensed, false positive...)."""
        if status not in MATCH_STATUSES:
            raise ValueError(f"match status must be one of {sorted(MATCH_STATUSES)}, not {status!r}")
        match = self.session.get(Match, match_id)
        if match is None:
            raise NotFoundError(f"no match with id {match_id}")
        match.status = status
        self.session.flush()
        return match

    def list(
        self,
        *,
        story_id: int | None = None,
        kind: str | None = None,
        status: str | None = None,
        site: str | None = None,
        since: datetime | None = None,
    ) -> list[Match]:
        stmt = select(Match).options(joinedload(Match.page), joinedload(Match.story))
        if story_id is not None:
            stmt = stmt.where(Match.story_id == story_id)
        if kind is not None:
            stmt = stmt.where(Match.kind == kind)
        if status is not None:
            stmt = stmt.where(Match.status == status)
        if site is not None:
            stmt = stmt.where(Match.page.has(Page.site == site))
        if since is not None:
            stmt = stmt.where(Match.first_seen >= since)
        return list(self.session.scalars(stmt.order_by(Match.first_seen, Match.id)))


# Alert events as crawler.alerts.policy names them: copy.new happens once per copy,
# these two at status changes, any other at a version of the page.
_ONCE_PER_COPY = frozenset({"copy.new"})
_STATUS_EVENTS = frozenset({"copy.removed", "copy.reappeared"})


def alert_occurrence(match: Match, event: str) -> str:
    """Which occurrence of `event` in the copy's life an alert is about: the last part
    of the alert's key (match, destination, event, occurrence).

    It must come out the same when one occurrence is recorded again (a re-run crawl,
    a retry after a crash, a second worker) and differ between occurrences:

    - copy.new: "1". A copy is new once.
    - copy.removed, copy.reappeared: the match's `status_period`, which the status
      change that caused the alert has just moved on (2, 3, ...). Recording the same
      change again finds the status already changed, or, in a worker that read it
      before, computes the very same period.
    - copy.changed, credit.missing (and any later event): "<status_period>:<page
      content hash>": once per version of the page while the status holds. The same
      text again is the same occurrence; a new text is a new one; a copy taken down
      and put back is told about again. (A text changing back to a version already
      alerted in the same period is not alerted twice.)

    Rows from before revision 0005 are occurrence "1" and periods start at 1, so a
    later occurrence never collides with them.
    """
    if event in _ONCE_PER_COPY:
        return "1"
    period = match.status_period or 1
    if event in _STATUS_EVENTS:
        return str(period)
    return f"{period}:{match.page.content_hash or ''}"


class Alerts:
    def __init__(self, session: Session) -> None:
        self.session = session

    def enqueue(
        self,
        match: Match,
        *,
        event: str = "copy.new",
        payload: dict[str, Any],
        default_events: Iterable[str] | None = None,
    ) -> list[Alert]:
        """Write one pending outbox row per enabled destination of the story's holder.

        Called in the match's own transaction, so an alert exists exactly when its match
        does; the (match, destination, event, occurrence) key makes repeats and races
        no-ops while a later occurrence of the event (see `alert_occurrence`) gets rows
        of its own. With `default_events`, only destinations that want `event` get a
        row: their own `events` list, or these defaults when they have none.
        """
        if match.id is None:
            self.session.flush()
        occurrence = alert_occurrence(match, event)
        destinations = self.session.scalars(
            select(Destination)
            .join(Story, Story.holder_id == Destination.holder_id)
            .where(Story.id == match.story_id, Destination.enabled.is_(True))
            .order_by(Destination.id)
        ).all()
        created_ids: list[int] = []
        now = utcnow()
        defaults = None if default_events is None else set(default_events)
        for destination in destinations:
            if defaults is not None and event not in (set(destination.events) if destination.events is not None else defaults):
                continue
            new_id = _insert_ignore(
                self.session,
                Alert,
                {
                    "match_id": match.id,
                    "destination_id": destination.id,
                    "event": event,
                    "occurrence": occurrence,
                    "channel": destination.channel,
                    "payload": dict(payload),
                    "status": "pending",
                    "attempts": 0,
                    "created_at": now,
                },
                ["match_id", "destination_id", "event", "occurrence"],
            )
            if new_id is not None:
                created_ids.append(new_id)
        if not created_ids:
            return []
        return list(self.session.scalars(select(Alert).where(Alert.id.in_(created_ids)).order_by(Alert.id)))

    def pending(self, *, now: datetime | None = None, limit: int = 100, skip_locked: bool = False) -> list[Alert]:
        """Pending alerts that are due, oldest first.

        `skip_locked=True` (PostgreSQL) locks the returned rows for this transaction and
        skips rows another dispatcher holds, so parallel dispatchers never send twice.
        """
        due = now or utcnow()
        stmt = (
            select(Alert)
            .where(
                Alert.status == "pending",
                or_(Alert.next_attempt_at.is_(None), Alert.next_attempt_at <= due),
            )
            .order_by(Alert.created_at, Alert.id)
            .limit(limit)
        )
        if skip_locked and self.session.get_bind().dialect.name == "postgresql":
            stmt = stmt.with_for_update(skip_locked=True)
        return list(self.session.scalars(stmt))

    def list(self, *, status: str | None = None) -> list[Alert]:
        stmt = select(Alert)
        if status is not None:
            stmt = stmt.where(Alert.status == status)
        return list(self.session.scalars(stmt.order_by(Alert.id)))


class CrawlRuns:
    """Crawl runs. A run names the process that will close it (pid, host, boot id):
    one killed hard leaves its row "running", and only that name lets a later
    process tell an abandoned run from one still in progress."""

    def __init__(self, session: Session) -> None:
        self.session = session

    def start(
        self, story_id: int | None, *, pid: int | None = None, host: str | None = None, boot: str | None = None
    ) -> CrawlRun:
        run = CrawlRun(
            story_id=story_id, started_at=utcnow(), status="running", counts={},
            worker_pid=pid, worker_host=host, worker_boot=boot,
        )
        self.session.add(run)
        self.session.flush()
        return run

    def set_worker(self, run_id: int, pid: int) -> None:
        """The worker process now owns the run (same host: it is the starter's child)."""
        self.session.execute(update(CrawlRun).where(CrawlRun.id == run_id).values(worker_pid=pid))

    def running(self, story_id: int | None = None) -> list[CrawlRun]:
        stmt = select(CrawlRun).where(CrawlRun.status == "running")
        if story_id is not None:
            stmt = stmt.where(CrawlRun.story_id == story_id)
        return list(self.session.scalars(stmt.order_by(CrawlRun.id)))

    def interrupt(self, run_id: int, reason: str) -> bool:
        """Close a run that is still "running" as interrupted, saying why. False, and
        nothing written, when it has ended meanwhile: closing twice, or two processes
        closing at once, changes nothing more."""
        result = self.session.execute(
            update(CrawlRun)
            .where(CrawlRun.id == run_id, CrawlRun.status == "running")
            .values(status="interrupted", finished_at=utcnow(), error=reason)
        )
        return result.rowcount == 1

    def finish(self, run_id: int, *, status: str, counts: dict[str, Any], error: str | None = None) -> CrawlRun:
        run = self.session.get(CrawlRun, run_id)
        if run is None:
            raise NotFoundError(f"no crawl run with id {run_id}")
        run.status = status
        run.counts = dict(counts)
        run.error = error
        run.finished_at = utcnow()
        self.session.flush()
        return run

    def latest(self, story_id: int | None = None, limit: int = 20) -> list[CrawlRun]:
        stmt = select(CrawlRun)
        if story_id is not None:
            stmt = stmt.where(CrawlRun.story_id == story_id)
        return list(self.session.scalars(stmt.order_by(CrawlRun.started_at.desc(), CrawlRun.id.desc()).limit(limit)))


__all__ = [
    "CHANNELS",
    "MATCH_STATUSES",
    "SOURCE_KINDS",
    "Alerts",
    "CrawlRuns",
    "Holders",
    "Matches",
    "Pages",
    "Sources",
    "Stories",
    "text_hash",
]


class Snapshots:
    """Distinct versions of a page's raw bytes, kept as evidence."""

    def __init__(self, session: Session) -> None:
        self.session = session

    def add(
        self,
        page_id: int,
        *,
        body: bytes,
        headers: Mapping[str, str],
        http_status: int | None,
        content_hash: str | None,
        fetched_at: datetime | None = None,
    ) -> bool:
        """Keep this body unless the page already has a snapshot of the same bytes."""
        values = {
            "page_id": page_id,
            "fetched_at": fetched_at or utcnow(),
            "http_status": http_status,
            "headers": dict(headers),
            "body": zlib.compress(body, 6),
            "body_sha256": hashlib.sha256(body).hexdigest(),
            "content_hash": content_hash,
        }
        return _insert_ignore(self.session, PageSnapshot, values, ["page_id", "body_sha256"]) is not None

    def for_page(self, page_id: int) -> list[PageSnapshot]:
        query = select(PageSnapshot).where(PageSnapshot.page_id == page_id).order_by(PageSnapshot.fetched_at, PageSnapshot.id)
        return list(self.session.scalars(query))

    @staticmethod
    def body_of(snapshot: PageSnapshot) -> bytes:
        return zlib.decompress(snapshot.body)
