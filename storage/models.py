"""Typed SQLAlchemy 2.0 models: the contract every other package codes against.

Times are timezone-aware UTC. Uniqueness constraints carry the idempotency rules:
a page is one row per URL, a match one row per (story, page), an alert one row per
(match, destination, event, occurrence), so saving anything twice is a no-op.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    DateTime,
    Dialect,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship, validates


def utcnow() -> datetime:
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """`DateTime(timezone=True)` that always hands back aware UTC datetimes.

    SQLite has no time-zone type: it stores the wall-clock digits and returns naive
    values, which then cannot be compared with `utcnow()` (TypeError) and would be
    silently wrong for non-UTC input. Values are converted to UTC on the way in (naive
    input is taken to be UTC already) and tagged UTC on the way out, on every backend.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


# Deterministic constraint names: migrations can then drop or alter a constraint by
# name, which SQLite batch mode needs and which unnamed constraints make impossible.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {dict[str, Any]: JSON, list[Any]: JSON, datetime: UTCDateTime}


class RightsHolder(Base):
    """Who owns stories and where their alerts go."""

    __tablename__ = "rights_holders"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    destinations: Mapped[list[Destination]] = relationship(
        back_populates="holder", cascade="all, delete-orphan"
    )
    stories: Mapped[list[Story]] = relationship(back_populates="holder")


class Destination(Base):
    """One alert destination of a holder: an email address or a webhook URL.

    The webhook secret is never stored: `secret_env` names the environment variable
    that holds it, so the database can be shared or backed up without leaking it.
    """

    __tablename__ = "destinations"
    __table_args__ = (UniqueConstraint("holder_id", "channel", "target"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    holder_id: Mapped[int] = mapped_column(ForeignKey("rights_holders.id", ondelete="CASCADE"))
    channel: Mapped[str] = mapped_column(String(20))  # "email" | "webhook"
    target: Mapped[str] = mapped_column(String(2000))
    secret_env: Mapped[str | None] = mapped_column(String(200))
    digest: Mapped[str] = mapped_column(String(20), default="immediate")
    enabled: Mapped[bool] = mapped_column(default=True)
    # Alert types this destination receives; None means the defaults of
    # crawler.alerts.policy.DEFAULT_EVENTS (so new defaults reach old rows).
    events: Mapped[list[Any] | None] = mapped_column(JSON)

    holder: Mapped[RightsHolder] = relationship(back_populates="destinations")


class Story(Base):
    """A story being monitored (the seed)."""

    __tablename__ = "stories"

    id: Mapped[int] = mapped_column(primary_key=True)
    holder_id: Mapped[int | None] = mapped_column(
        ForeignKey("rights_holders.id", ondelete="SET NULL")
    )
    title: Mapped[str] = mapped_column(String(1000))
    canonical_url: Mapped[str | None] = mapped_column(String(2000))
    text: Mapped[str] = mapped_column(Text)
    text_hash: Mapped[str] = mapped_column(String(64), index=True)
    published_at: Mapped[datetime | None]
    # Serialised sketch plus the parameters it was made with (scheme, num_perm, seed,
    # shingling): sketches made with other parameters must never be compared.
    fingerprint: Mapped[bytes | None] = mapped_column(LargeBinary)
    fingerprint_params: Mapped[dict[str, Any] | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    holder: Mapped[RightsHolder | None] = relationship(back_populates="stories")
    sources: Mapped[list[Source]] = relationship(
        back_populates="story", cascade="all, delete-orphan", passive_deletes=True
    )
    matches: Mapped[list[Match]] = relationship(
        back_populates="story", cascade="all, delete-orphan", passive_deletes=True
    )


class Source(Base):
    """Where to look for copies of a story: a start URL, a feed or a sitemap."""

    __tablename__ = "sources"
    __table_args__ = (UniqueConstraint("story_id", "kind", "url"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    story_id: Mapped[int] = mapped_column(ForeignKey("stories.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(20))  # "start_url" | "feed" | "sitemap"
    url: Mapped[str] = mapped_column(String(2000))
    max_depth: Mapped[int] = mapped_column(Integer, default=2)
    max_pages: Mapped[int] = mapped_column(Integer, default=200)
    # Per-source settings that are not columns (a search query, a "since" date).
    options: Mapped[dict[str, Any] | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    story: Mapped[Story] = relationship(back_populates="sources")


class Page(Base):
    """A fetched web page, one row per URL; re-fetches update it in place."""

    __tablename__ = "pages"

    id: Mapped[int] = mapped_column(primary_key=True)
    url: Mapped[str] = mapped_column(String(2000), unique=True)
    canonical_url: Mapped[str | None] = mapped_column(String(2000), index=True)
    site: Mapped[str | None] = mapped_column(String(300))
    http_status: Mapped[int | None]
    content_type: Mapped[str | None] = mapped_column(String(200))
    fetched_at: Mapped[datetime] = mapped_column(default=utcnow)
    content_hash: Mapped[str | None] = mapped_column(String(64))
    # content_hash of the text last matched: a page whose content_hash differs is
    # waiting for the match phase (a crash between storing and matching resumes here).
    matched_hash: Mapped[str | None] = mapped_column(String(64))
    etag: Mapped[str | None] = mapped_column(String(500))
    last_modified: Mapped[str | None] = mapped_column(String(100))
    title: Mapped[str | None] = mapped_column(Text)
    text: Mapped[str | None] = mapped_column(Text)
    published: Mapped[str | None] = mapped_column(String(40))
    site_name: Mapped[str | None] = mapped_column(String(300))

    matches: Mapped[list[Match]] = relationship(
        back_populates="page", cascade="all, delete-orphan", passive_deletes=True
    )


class Match(Base):
    """The matcher's verdict for one (story, page) pair, with its evidence."""

    __tablename__ = "matches"
    __table_args__ = (UniqueConstraint("story_id", "page_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    story_id: Mapped[int] = mapped_column(ForeignKey("stories.id", ondelete="CASCADE"))
    # Indexed: ON DELETE CASCADE from pages would otherwise scan the whole table.
    page_id: Mapped[int] = mapped_column(ForeignKey("pages.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(20))
    confidence: Mapped[float] = mapped_column(Float)
    story_coverage: Mapped[float] = mapped_column(Float)
    page_coverage: Mapped[float] = mapped_column(Float)
    scores: Mapped[dict[str, Any]] = mapped_column(default=dict)
    evidence: Mapped[list[Any]] = mapped_column(default=list)
    first_seen: Mapped[datetime] = mapped_column(default=utcnow)
    last_seen: Mapped[datetime] = mapped_column(default=utcnow)
    # "active" | "removed" | "licensed" | "false_positive" | "ignored"
    status: Mapped[str] = mapped_column(String(20), default="active")
    # Which stretch of one status the match is in: 1 when first saved (and for rows
    # from before revision 0005), +1 at each change of `status`. An alert about a
    # status change is keyed by the period it opened (see storage.repositories
    # .alert_occurrence): taken down twice is two alerts, recorded twice is one.
    status_period: Mapped[int] = mapped_column(Integer, default=1, server_default="1")

    story: Mapped[Story] = relationship(back_populates="matches")
    page: Mapped[Page] = relationship(back_populates="matches")
    alerts: Mapped[list[Alert]] = relationship(
        back_populates="match", cascade="all, delete-orphan", passive_deletes=True
    )

    @validates("status")
    def _count_status_change(self, _key: str, value: str) -> str:
        """Every writer of `status` (policy, removals, a person's decision) moves the
        period in the same flush, so it cannot be forgotten or run in another
        transaction. The new value is computed here, not in SQL: two workers recording
        the same change both write the same period and so key the same alert."""
        current = self.status
        if current is not None and value != current:
            self.status_period = (self.status_period or 1) + 1
        return value


class Alert(Base):
    """Outbox row: written in the match's transaction, delivered later by the dispatcher.

    One row per (match, destination, event, occurrence): `occurrence` tells a second
    taking-down of a copy from the same taking-down recorded twice (see
    storage.repositories.alert_occurrence).
    """

    __tablename__ = "alerts"
    __table_args__ = (
        UniqueConstraint("match_id", "destination_id", "event", "occurrence"),
        # The dispatcher's query: pending rows whose retry time has come.
        Index("ix_alerts_status_next_attempt_at", "status", "next_attempt_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    match_id: Mapped[int] = mapped_column(ForeignKey("matches.id", ondelete="CASCADE"))
    destination_id: Mapped[int | None] = mapped_column(
        ForeignKey("destinations.id", ondelete="SET NULL")
    )
    event: Mapped[str] = mapped_column(String(40), default="copy.new")
    # "1" for copy.new and for every row from before revision 0005.
    occurrence: Mapped[str] = mapped_column(String(80), default="1", server_default="1")
    channel: Mapped[str] = mapped_column(String(20))
    payload: Mapped[dict[str, Any]] = mapped_column(default=dict)
    status: Mapped[str] = mapped_column(String(20), default="pending")  # pending|sent|failed
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    next_attempt_at: Mapped[datetime | None]
    sent_at: Mapped[datetime | None]
    # Idempotency key sent with every attempt (webhook-id, Message-ID): set once, at
    # the first delivery attempt, so receivers can drop a retried duplicate.
    delivery_id: Mapped[str | None] = mapped_column(String(64), index=True, unique=True)

    match: Mapped[Match] = relationship(back_populates="alerts")


class CrawlRun(Base):
    """One crawl of one story: when, how it ended, and what it counted."""

    __tablename__ = "crawl_runs"

    id: Mapped[int] = mapped_column(primary_key=True)
    story_id: Mapped[int | None] = mapped_column(
        ForeignKey("stories.id", ondelete="SET NULL"), index=True
    )
    started_at: Mapped[datetime] = mapped_column(default=utcnow)
    finished_at: Mapped[datetime | None]
    status: Mapped[str] = mapped_column(String(20), default="running")
    counts: Mapped[dict[str, Any]] = mapped_column(default=dict)
    error: Mapped[str | None] = mapped_column(Text)
    # The process that will close the run (revision 0004): the crawl worker, or the
    # process starting it until the worker exists. A hard kill leaves the row
    # "running"; pid, host and boot id let a later process prove the worker gone.
    # NULL on rows from before 0004.
    worker_pid: Mapped[int | None]
    worker_host: Mapped[str | None] = mapped_column(String(255))
    worker_boot: Mapped[str | None] = mapped_column(String(64))


# --- Alert delivery (revision 0002) ------------------------------------------------
# `scope` is "holder:<id>" or "story:<id>": one non-null text key, so the unique
# constraints make re-adding a rule a no-op (NULLs never conflict in SQL).


class Licence(Base):
    """A partner domain licensed to republish, optionally bound to carry a credit line."""

    __tablename__ = "licences"
    __table_args__ = (UniqueConstraint("scope", "domain"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    scope: Mapped[str] = mapped_column(String(40))
    holder_id: Mapped[int | None] = mapped_column(
        ForeignKey("rights_holders.id", ondelete="CASCADE"), index=True
    )
    story_id: Mapped[int | None] = mapped_column(ForeignKey("stories.id", ondelete="CASCADE"), index=True)
    domain: Mapped[str] = mapped_column(String(300))
    credit_line: Mapped[str | None] = mapped_column(String(300))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class SiteSuppression(Base):
    """A site a person chose to ignore (`matches mark --ignore-site`): no alerts from it."""

    __tablename__ = "site_suppressions"
    __table_args__ = (UniqueConstraint("scope", "site"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    scope: Mapped[str] = mapped_column(String(40))
    holder_id: Mapped[int | None] = mapped_column(
        ForeignKey("rights_holders.id", ondelete="CASCADE"), index=True
    )
    story_id: Mapped[int | None] = mapped_column(ForeignKey("stories.id", ondelete="CASCADE"), index=True)
    site: Mapped[str] = mapped_column(String(300))
    match_id: Mapped[int | None] = mapped_column(ForeignKey("matches.id", ondelete="SET NULL"), index=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class MatchDecision(Base):
    """A person's verdict on a match, kept as history (the match's status is the latest)."""

    __tablename__ = "match_decisions"

    id: Mapped[int] = mapped_column(primary_key=True)
    match_id: Mapped[int] = mapped_column(ForeignKey("matches.id", ondelete="CASCADE"), index=True)
    decision: Mapped[str] = mapped_column(String(20))
    previous_status: Mapped[str] = mapped_column(String(20))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class CopyKey(Base):
    """Identities of one copy of a story: its normalised URL and its text hash.

    AMP, print and mirror variants of a page share one of these keys with the first
    match seen, so they are recognised as the same copy and never alerted again.
    """

    __tablename__ = "copy_keys"
    __table_args__ = (UniqueConstraint("story_id", "key"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    story_id: Mapped[int] = mapped_column(ForeignKey("stories.id", ondelete="CASCADE"))
    key: Mapped[str] = mapped_column(String(80))
    match_id: Mapped[int] = mapped_column(ForeignKey("matches.id", ondelete="CASCADE"), index=True)


class AlertDigest(Base):
    """One hourly or daily message grouping a destination's alerts of one time window."""

    __tablename__ = "alert_digests"
    __table_args__ = (
        UniqueConstraint("destination_id", "window_end"),
        Index("ix_alert_digests_status_next_attempt_at", "status", "next_attempt_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    destination_id: Mapped[int | None] = mapped_column(ForeignKey("destinations.id", ondelete="SET NULL"))
    period: Mapped[str] = mapped_column(String(20))
    window_end: Mapped[datetime]
    delivery_id: Mapped[str] = mapped_column(String(64), unique=True)
    status: Mapped[str] = mapped_column(String(20), default="pending")  # pending|sent|failed
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    next_attempt_at: Mapped[datetime | None]
    sent_at: Mapped[datetime | None]


class AlertDigestItem(Base):
    """Membership of an alert in a digest; an alert belongs to at most one digest."""

    __tablename__ = "alert_digest_items"

    alert_id: Mapped[int] = mapped_column(ForeignKey("alerts.id", ondelete="CASCADE"), primary_key=True)
    digest_id: Mapped[int] = mapped_column(ForeignKey("alert_digests.id", ondelete="CASCADE"), index=True)


class PageSnapshot(Base):
    """The bytes of one distinct version of a page, as fetched: the evidence a takedown
    notice rests on (raw body, headers, hash), kept even after the page changes."""

    __tablename__ = "page_snapshots"
    __table_args__ = (UniqueConstraint("page_id", "body_sha256"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    page_id: Mapped[int] = mapped_column(ForeignKey("pages.id", ondelete="CASCADE"), index=True)
    fetched_at: Mapped[datetime] = mapped_column(default=utcnow)
    http_status: Mapped[int | None]
    headers: Mapped[dict[str, Any]] = mapped_column(default=dict)
    body: Mapped[bytes] = mapped_column(LargeBinary)  # zlib-compressed
    body_sha256: Mapped[str] = mapped_column(String(64))
    content_hash: Mapped[str | None] = mapped_column(String(64))


class CopyEdge(Base):
    """`copy_page` derives from `source_page` more closely than from the story itself:
    a copy of a copy. Edges make the chain of who copied whom."""

    __tablename__ = "copy_edges"
    __table_args__ = (UniqueConstraint("story_id", "source_page_id", "copy_page_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    story_id: Mapped[int] = mapped_column(ForeignKey("stories.id", ondelete="CASCADE"), index=True)
    source_page_id: Mapped[int] = mapped_column(ForeignKey("pages.id", ondelete="CASCADE"))
    copy_page_id: Mapped[int] = mapped_column(ForeignKey("pages.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(20))
    similarity: Mapped[float] = mapped_column(Float)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
