"""Store fetched pages, then match them against the stories: two phases, each page
one short transaction in each.

Why two phases: independent reports of one event share its names, figures and
public quotes, and only the pages a crawl collects tell which details are the
event's (many pages carry them) and which are the story's own (only it and its
copies do). So pages are stored while the crawl runs, and matched after it with a
background learned from the stored pages. A page whose text changed carries a
`matched_hash` that differs from its `content_hash` until matched, so a crash
between the phases is resumed by the next run and nothing is matched twice.

Knows storage and the matcher, not Scrapy: the pipeline, the worker, the demo and
tests call it the same way.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, fields
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import sessionmaker

from crawler.alerts import policy
from crawler.alerts.outbox import on_match, on_page_gone
from crawler.alerts.payload import build_payload
from crawler.chains import record_edges
from crawler.items import GONE_OR_MOVED, GONE_STATUSES, REDIRECT_STATUSES
from crawler.matching import Matcher
from crawler.matching.background import Background
from crawler.matching.matcher import MATCH_BATCH
from crawler.matching.verdict import Verdict
from crawler.urls import canonical
from storage.alert_repositories import Outbox
from storage.models import Match, Page, Story, utcnow
from storage.repositories import Matches, Pages, Snapshots, Stories

# Pages the background is learned from: the most recently fetched ones.
BACKGROUND_PAGES = 5000
# Match statuses a removal applies to; removed ones already are, and a person's
# false_positive/ignored verdicts stay as they are.
LIVE_STATUSES = ("active", "licensed")
_URL_LENGTH = Page.__table__.c.canonical_url.type.length


@dataclass
class Counts:
    pages_stored: int = 0
    pages_unchanged: int = 0
    pages_matched: int = 0
    own_pages: int = 0
    matches_new: int = 0
    matches_changed: int = 0
    matches_seen: int = 0
    matches_removed: int = 0
    matches_reappeared: int = 0
    not_modified: int = 0
    pages_gone: int = 0
    pages_moved: int = 0  # of pages_gone: their URL now redirects elsewhere
    alerts_queued: int = 0

    def __iadd__(self, other: Counts) -> Counts:
        for f in fields(self):
            setattr(self, f.name, getattr(self, f.name) + getattr(other, f.name))
        return self

    def as_dict(self) -> dict[str, int]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


def store_page(
    factory: sessionmaker,
    *,
    url: str,
    text: str,
    body: bytes = b"",
    headers: Mapping[str, str] | None = None,
    fetched_at: datetime | None = None,
    **page_fields,
) -> Counts:
    """Phase one: save a fetched page and a snapshot of its bytes.

    Unchanged text only refreshes what was seen."""
    seen = fetched_at or utcnow()
    with factory.begin() as session:
        was_gone = session.scalar(select(Page.http_status).where(Page.url == url)) in GONE_OR_MOVED
        page, changed = Pages(session).upsert(url=url, text=text, fetched_at=seen, **page_fields)
        if was_gone:  # the page's own canonical URL again, not a redirect's target
            page.canonical_url = page_fields.get("canonical_url")
        if not changed and was_gone:
            _rematch_if_removed(session, page)
        if body:
            Snapshots(session).add(
                page.id, body=body, headers=headers or {}, http_status=page.http_status,
                content_hash=page.content_hash, fetched_at=seen,
            )
        if changed or page.matched_hash != page.content_hash:
            return Counts(pages_stored=int(changed), pages_unchanged=int(not changed))
        return Counts(pages_unchanged=1, matches_seen=Matches(session).touch_page(page.id, seen_at=seen))


class MatchPhase:
    """Phase two: match every page waiting for it against the stories' index."""

    def __init__(self, factory: sessionmaker, stories: Iterable[Story], background: Background | None, *, focus_story_id: int | None = None) -> None:
        self.factory = factory
        stories = list(stories)
        self.focus = (focus_story_id,) if focus_story_id else ()
        self.own_urls = {s.id: canonical(s.canonical_url) for s in stories if s.canonical_url}
        self.story_ids = {s.id for s in stories}
        self.changed_stories: set[int] = set()  # stories with new or changed copies this run
        self.matcher = Matcher.build(((s.id, s.text) for s in stories), background=background)

    @classmethod
    def load(cls, factory: sessionmaker, *, focus_story_id: int | None = None, background_pages: int = BACKGROUND_PAGES) -> MatchPhase:
        with factory.begin() as session:
            stories = Stories(session).list()
            texts = Pages(session).recent_texts(limit=background_pages)
        background = Background.from_texts(texts) if texts else None
        return cls(factory, stories, background, focus_story_id=focus_story_id)

    def run(self, *, on_page: Callable[[Counts], None] | None = None) -> Counts:
        with self.factory.begin() as session:
            pending = Pages(session).pending_match_ids()
        total = Counts()
        for start in range(0, len(pending), MATCH_BATCH):
            chunk = pending[start : start + MATCH_BATCH]
            # Judged outside any write transaction, then recorded one page at a time.
            with self.factory.begin() as session:
                rows = session.execute(
                    select(Page.id, Page.text, Page.content_hash).where(Page.id.in_(chunk), Page.text.is_not(None))
                ).all()
            found = self.matcher.match_many([r.text for r in rows], include=self.focus)
            for row, verdicts in zip(rows, found):
                total += self.record_page(row.id, row.content_hash, verdicts)
                if on_page:
                    on_page(total)
        # Copies of copies: who copied whom, once the story's copies are all known.
        for story_id in sorted(self.changed_stories):
            with self.factory.begin() as session:
                record_edges(session, story_id)
        return total

    def record_page(self, page_id: int, content_hash: str, verdicts: list[tuple[int, Verdict]]) -> Counts:
        """Store the verdicts on one page's content, in one short transaction."""
        counts = Counts(pages_matched=1)
        with self.factory.begin() as session:
            page = session.get(Page, page_id)
            if page is None or page.content_hash != content_hash or page.matched_hash == content_hash:
                return Counts()  # changed since it was judged, or another worker got there first
            seen = page.fetched_at
            derived: set[int] = set()
            page_urls = {canonical(page.url)} | ({canonical(page.canonical_url)} if page.canonical_url else set())
            matches = Matches(session)
            for story_id, verdict in verdicts:
                if not verdict.derived:
                    continue
                derived.add(story_id)
                if self.own_urls.get(story_id) in page_urls:
                    counts.own_pages += 1
                    continue
                match, is_new = matches.upsert(
                    story_id=story_id,
                    page_id=page.id,
                    kind=verdict.kind,
                    confidence=verdict.confidence,
                    story_coverage=verdict.story_coverage,
                    page_coverage=verdict.page_coverage,
                    scores=verdict.scores,
                    evidence=verdict.evidence(),
                    seen_at=seen,
                )
                if is_new:
                    counts.matches_new += 1
                else:
                    counts.matches_changed += 1
                self.changed_stories.add(story_id)
                was_removed = match.status == "removed"
                # Licences, suppressions and known mirrors decide which alerts, if any.
                counts.alerts_queued += len(on_match(session, match, is_new=is_new, page_changed=True))
                if was_removed and match.status != "removed":
                    counts.matches_reappeared += 1
            # Copies whose page no longer carries the story: taken down by editing.
            scope = self.focus or tuple(self.story_ids)
            for match in session.scalars(
                select(Match).where(Match.page_id == page.id, Match.status.in_(LIVE_STATUSES), Match.story_id.in_(scope))
            ):
                if match.story_id not in derived:
                    counts.matches_removed += 1
                    counts.alerts_queued += _remove(session, match)
            page.matched_hash = page.content_hash
        return counts


def record_gone(
    factory: sessionmaker, url: str, status: int, *, location: str | None = None, fetched_at: datetime | None = None
) -> Counts:
    """A known page no longer serves its copy at its URL: it answered 404/410, or it
    redirects (301/302/303/307/308) to another page, `location`, which is how
    publishers usually take a copy down. Its copies are removed (`copy.removed` queued).

    A redirect is kept without a column of its own: `http_status` holds the redirect's
    status and `canonical_url` where the URL now leads (the address a 301 names for
    it). Its cache validators are dropped, so a page coming back is fetched in full
    and `store_page` gives it its own canonical URL again.

    One short transaction; recording the same answer again changes nothing. A page
    never stored (nothing known about it) is only counted."""
    if status in REDIRECT_STATUSES:
        if not location:
            raise ValueError(f"a page that redirects ({status}) needs the location it redirects to")
    elif status in GONE_STATUSES:
        if location is not None:
            raise ValueError(f"a page that answers {status} has no location, got {location!r}")
    else:
        raise ValueError(f"a gone page answers one of {GONE_OR_MOVED}, not {status}")
    moved = int(location is not None)
    seen = fetched_at or utcnow()
    with factory.begin() as session:
        page = Pages(session).by_url(url)
        if page is None:
            return Counts(pages_gone=1, pages_moved=moved)
        if location is not None:
            # A target too long for the column is not worth losing the removal over.
            page.canonical_url = location if len(location) <= _URL_LENGTH else None
            page.etag = page.last_modified = None
        elif page.http_status in REDIRECT_STATUSES:
            page.canonical_url = None  # the old redirect's target no longer applies
        page.http_status = status
        page.fetched_at = seen
        live = list(session.scalars(select(Match).where(Match.page_id == page.id, Match.status.in_(LIVE_STATUSES))))
        queued = on_page_gone(session, page.id)
        removed = sum(1 for m in live if m.status == "removed")
        return Counts(pages_gone=1, pages_moved=moved, matches_removed=removed, alerts_queued=len(queued))


def record_not_modified(
    factory: sessionmaker,
    url: str,
    *,
    etag: str | None = None,
    last_modified: str | None = None,
    fetched_at: datetime | None = None,
) -> Counts:
    """A conditional GET answered 304: the stored page is current. Refresh when it was
    seen and touch its matches, as for unchanged text; a page that was gone and is
    back is matched again, so a copy reappears only if its text is still derived."""
    seen = fetched_at or utcnow()
    with factory.begin() as session:
        page = Pages(session).by_url(url)
        if page is None:
            return Counts(not_modified=1)
        was_gone = page.http_status in GONE_OR_MOVED
        page.fetched_at = seen
        page.http_status = 200
        if etag:
            page.etag = etag
        if last_modified:
            page.last_modified = last_modified
        if was_gone and _rematch_if_removed(session, page):
            return Counts(not_modified=1)
        return Counts(not_modified=1, matches_seen=Matches(session).touch_page(page.id, seen_at=seen))


def _rematch_if_removed(session, page: Page) -> bool:
    """A page that was gone answers again: if it held removed copies, queue it for the
    match phase, whose verdict decides whether they reappeared (`copy.reappeared`)."""
    removed = session.scalar(select(Match.id).where(Match.page_id == page.id, Match.status == "removed").limit(1))
    if removed is None:
        return False
    page.matched_hash = None
    session.flush()
    return True


def _remove(session, match: Match) -> int:
    """Mark one copy removed and queue its alerts (the policy decides which); returns
    how many were queued. `on_page_gone` does this for every copy on a page."""
    decision = policy.decide_removed(match.status)
    match.status = decision.status
    queued = 0
    for event in decision.events:
        queued += len(
            Outbox(session).enqueue(
                match, event=event, payload=build_payload(match, event=event), default_events=policy.DEFAULT_EVENTS
            )
        )
    session.flush()
    return queued
