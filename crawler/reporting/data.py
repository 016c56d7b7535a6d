"""Everything a story's report shows, read in one transaction into plain values.

The template never touches the ORM: loading is here, drawing is in the template, and
each missing piece (a page row, its text, its snapshots) becomes a sentence in
`missing` instead of an exception, so a report always renders and says what it lacks.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import select
from sqlalchemy.orm import Session

from crawler.alerts.render import KIND_NAMES
from crawler.items import GONE_OR_MOVED, REDIRECT_STATUSES
from crawler.reporting.chart import Chart, build_chart, colour
from crawler.reporting.passages import AlignedPassage, Piece, aligned_passages, full_text_pieces
from storage.engine import NotFoundError
from storage.models import Alert, CopyEdge, Match, MatchDecision, Page, PageSnapshot, Story, utcnow
from storage.repositories import alert_occurrence

# Copies shown in full (side-by-side texts); the rest are listed in the summary table.
MAX_DETAILED_COPIES = 200
# Statuses that say "not a copy": listed, but not counted in the summary.
NOT_COPIES = frozenset({"false_positive"})

EVENT_LABELS = {
    "copy.new": "alerted: new copy",
    "copy.changed": "alerted: copy changed",
    "copy.removed": "alerted: copy removed",
    "copy.reappeared": "alerted: copy reappeared",
    "credit.missing": "alerted: credit line missing",
}
DECISION_LABELS = {
    "licensed": "marked licensed",
    "false_positive": "marked not a copy (false positive)",
    "ignored": "marked ignored (site ignored)",
    "active": "marked active again",
    "removed": "marked removed",
}
SCORE_NAMES = {
    "verbatim_story": "story in verbatim runs",
    "verbatim_page": "page in verbatim runs",
    "verbatim_run": "longest verbatim run (words)",
    "story_sent_cov": "story sentences aligned",
    "page_sent_cov": "page sentences aligned",
    "mean_sim": "mean similarity of aligned sentences",
    "order": "aligned in story order",
    "aligned_strong": "aligned sentences",
    "fuzzy_share": "fuzzy (respelt) word share",
    "rare_matched": "names and figures matched",
}


@dataclass(frozen=True, slots=True)
class Event:
    when: datetime | None
    label: str
    detail: str = ""


@dataclass(frozen=True, slots=True)
class ChainLink:
    match_id: int | None
    page_id: int
    site: str
    url: str
    first_seen: datetime | None
    kind: str
    similarity: float


@dataclass
class CopyView:
    match_id: int
    page_id: int
    url: str
    href: str | None  # only http(s) URLs become links
    site: str
    title: str
    kind: str
    kind_name: str
    colour: str
    status: str
    confidence: float
    story_coverage: float
    page_coverage: float
    first_seen: datetime
    last_seen: datetime
    fetched_at: datetime | None
    http_status: int | None
    scores: list[tuple[str, str, float]]
    passages: list[AlignedPassage]
    story_pieces: list[Piece]
    page_pieces: list[Piece]
    events: list[Event]
    missing: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    sources: list[ChainLink] = field(default_factory=list)
    copied_by: list[ChainLink] = field(default_factory=list)
    snapshots: int = 0
    latest_sha256: str | None = None
    detailed: bool = True


@dataclass(frozen=True, slots=True)
class ChainNode:
    link: ChainLink
    children: tuple[ChainNode, ...]


@dataclass
class ReportData:
    story_id: int
    title: str
    url: str | None
    href: str | None
    holder: str | None
    published_at: datetime | None
    story_text: str
    words: int
    generated_at: datetime
    copies: list[CopyView]
    by_kind: list[tuple[str, str, int]]  # kind name, colour, count
    by_site: list[tuple[str, int, datetime]]  # site, copies, first seen
    chart: Chart
    chains: list[ChainNode]
    missing: list[str]
    not_detailed: int = 0


def safe_href(url: str | None) -> str | None:
    """A URL fit for href: http(s) only, so a stored `javascript:` URL stays text."""
    if not url:
        return None
    try:
        scheme = urlsplit(url.strip()).scheme.lower()
    except ValueError:
        return None
    return url.strip() if scheme in ("http", "https") else None


def _site_of(page: Page | None, url: str) -> str:
    if page is not None and page.site:
        return page.site
    try:
        return urlsplit(url).netloc or "unknown site"
    except ValueError:
        return "unknown site"


def load_report(session: Session, story_id: int) -> ReportData:
    story = session.get(Story, story_id)
    if story is None:
        raise NotFoundError(f"no story with id {story_id} (see `copyhound seed list`)")
    matches = session.scalars(
        select(Match).where(Match.story_id == story_id).order_by(Match.first_seen, Match.id)
    ).all()
    page_ids = [m.page_id for m in matches]
    pages = {p.id: p for p in session.scalars(select(Page).where(Page.id.in_(page_ids)))} if page_ids else {}
    match_of_page = {m.page_id: m for m in matches}
    edges = session.scalars(select(CopyEdge).where(CopyEdge.story_id == story_id).order_by(CopyEdge.id)).all()

    copies: list[CopyView] = []
    for n, match in enumerate(matches):
        copies.append(_copy_view(session, story, match, pages.get(match.page_id), detailed=n < MAX_DETAILED_COPIES))

    def link(page_id: int, kind: str = "", similarity: float = 0.0) -> ChainLink:
        m = match_of_page.get(page_id)
        page = pages.get(page_id) or session.get(Page, page_id)
        url = page.url if page is not None else f"page {page_id} (no longer stored)"
        return ChainLink(m.id if m else None, page_id, _site_of(page, url), url, m.first_seen if m else None, kind, similarity)

    views = {c.page_id: c for c in copies}
    for e in edges:
        if e.copy_page_id in views:
            views[e.copy_page_id].sources.append(link(e.source_page_id, e.kind, e.similarity))
        if e.source_page_id in views:
            views[e.source_page_id].copied_by.append(link(e.copy_page_id, e.kind, e.similarity))

    counted = [c for c in copies if c.status not in NOT_COPIES]
    kinds = Counter(c.kind for c in counted)
    by_kind = [(KIND_NAMES.get(k, k), colour(k), n) for k, n in kinds.most_common()]
    site_first: dict[str, datetime] = {}
    site_count: Counter[str] = Counter()
    for c in counted:
        site_count[c.site] += 1
        site_first.setdefault(c.site, c.first_seen)
    by_site = [(s, n, site_first[s]) for s, n in site_count.most_common()]
    chart = build_chart([(c.first_seen, c.kind, c.site) for c in counted])

    missing: list[str] = []
    if not matches:
        missing.append("No copies of this story have been found yet: there is nothing to compare.")
    # One line per reason, naming the copies it applies to: a store from before
    # snapshots were kept should not produce hundreds of identical lines.
    by_reason: dict[str, list[int]] = {}
    for c in copies:
        for m in c.missing:
            by_reason.setdefault(m, []).append(c.match_id)
    for reason, ids in by_reason.items():
        label = "Match" if len(ids) == 1 else "Matches"
        shown = ", ".join(str(i) for i in ids[:20]) + (f" and {len(ids) - 20} more" if len(ids) > 20 else "")
        missing.append(f"{label} {shown}: {reason}")
    return ReportData(
        story_id=story.id,
        title=story.title,
        url=story.canonical_url,
        href=safe_href(story.canonical_url),
        holder=story.holder.name if story.holder else None,
        published_at=story.published_at,
        story_text=story.text,
        words=len(story.text.split()),
        generated_at=utcnow(),
        copies=copies,
        by_kind=by_kind,
        by_site=by_site,
        chart=chart,
        chains=_chains(edges, link),
        missing=missing,
        not_detailed=sum(1 for c in copies if not c.detailed),
    )


def _chains(edges, link) -> list[ChainNode]:
    """Trees of copies: roots are copies taken from the story, children were copied from
    their parent. Bounded: a page appears once, so even inconsistent edges terminate."""
    children: dict[int, list[Any]] = {}
    targets = set()
    for e in edges:
        children.setdefault(e.source_page_id, []).append(e)
        targets.add(e.copy_page_id)
    seen: set[int] = set()

    def node(page_id: int, kind: str, similarity: float) -> ChainNode:
        seen.add(page_id)
        kids = []
        for e in children.get(page_id, []):
            if e.copy_page_id not in seen:
                kids.append(node(e.copy_page_id, e.kind, e.similarity))
        kids.sort(key=lambda k: (k.link.first_seen is None, k.link.first_seen or datetime.min, k.link.page_id))
        return ChainNode(link(page_id, kind, similarity), tuple(kids))

    roots = [pid for pid in children if pid not in targets] or list(children)[:1]
    trees = [node(pid, "", 0.0) for pid in roots if pid not in seen]
    return sorted(trees, key=lambda t: (t.link.first_seen is None, t.link.first_seen or datetime.min, t.link.page_id))


def _copy_view(session: Session, story: Story, match: Match, page: Page | None, *, detailed: bool) -> CopyView:
    missing: list[str] = []
    if page is None:
        url = f"page {match.page_id}"
        missing.append(
            "the page record is gone from the store: its URL, text and raw snapshots are missing; "
            "the passages below are the ones recorded when it was matched"
        )
    else:
        url = page.url
    page_text = page.text if page is not None else None
    if page is not None and not page_text:
        missing.append("the page's text is no longer stored: passages are shown as recorded at matching time")
    if page is not None and page.http_status in GONE_OR_MOVED:
        answer = (f"redirected (HTTP {page.http_status}) to {page.canonical_url or 'another page'}"
                  if page.http_status in REDIRECT_STATUSES else f"answered HTTP {page.http_status}")
        missing.append(
            f"the page {answer} when last fetched"
            f"{' on ' + _when(page.fetched_at) if page.fetched_at else ''}: the copy was taken down; "
            "what is shown is the text stored before"
        )
    snapshots = session.execute(
        select(PageSnapshot.fetched_at, PageSnapshot.body_sha256, PageSnapshot.http_status)
        .where(PageSnapshot.page_id == match.page_id)
        .order_by(PageSnapshot.fetched_at, PageSnapshot.id)
    ).all()
    if page is not None and not snapshots:
        missing.append("no raw snapshot of the page is stored: `copyhound evidence` can give its text but not the HTML as fetched")

    passages, notes = aligned_passages(match.evidence, story.text, page_text)
    if not passages:
        notes.append("The matcher recorded no aligned passages for this copy.")
    story_pieces = full_text_pieces(story.text, passages, side="story") if detailed else []
    page_pieces = full_text_pieces(page_text, passages, side="page") if detailed and page_text else []
    if page_text and any(p.gap for p in page_pieces):
        notes.append(f"The page text is long ({len(page_text):,} characters): only the parts around the passages are shown.")

    events = [Event(match.first_seen, "first seen", f"matched as {KIND_NAMES.get(match.kind, match.kind)}")]
    for i, (fetched_at, sha, status) in enumerate(snapshots):
        label = "page fetched" if i == 0 else "page changed"
        events.append(Event(fetched_at, label, f"HTTP {status or '?'}, body sha256 {sha[:16]}…"))
    alerts = session.scalars(select(Alert).where(Alert.match_id == match.id).order_by(Alert.created_at, Alert.id)).all()
    occurrences: dict[str, list[str]] = {}  # event -> its occurrences, in the order they happened
    for a in alerts:
        delivery = {"sent": f"sent {_when(a.sent_at)}" if a.sent_at else "sent", "pending": "waiting to be sent",
                    "failed": f"delivery failed after {a.attempts} attempt(s)", "suppressed": "withdrawn"}
        seen = occurrences.setdefault(a.event, [])
        if a.occurrence not in seen:
            seen.append(a.occurrence)
        nth = seen.index(a.occurrence) + 1
        label = EVENT_LABELS.get(a.event, f"alerted: {a.event}") + (f" ({_ordinal(nth)} time)" if nth > 1 else "")
        events.append(Event(a.created_at, label, f"{a.channel}, {delivery.get(a.status, a.status)}"))
    decisions = session.scalars(
        select(MatchDecision).where(MatchDecision.match_id == match.id).order_by(MatchDecision.id)
    ).all()
    for d in decisions:
        events.append(Event(d.created_at, DECISION_LABELS.get(d.decision, f"marked {d.decision}"),
                            f"was {d.previous_status.replace('_', ' ')}"))
    this_removal = alert_occurrence(match, "copy.removed")
    if match.status == "removed" and not any(a.event == "copy.removed" and a.occurrence == this_removal for a in alerts):
        events.append(Event(page.fetched_at if page is not None else None, "removed", "the page is gone from its site"))
    events.append(Event(match.last_seen, "last seen", f"status now: {match.status.replace('_', ' ')}"))
    events.sort(key=lambda e: (e.when is None, e.when or datetime.min))

    scores = []
    for key, name in SCORE_NAMES.items():
        value = (match.scores or {}).get(key)
        if isinstance(value, int | float):
            scores.append((key, name, float(value)))
    return CopyView(
        match_id=match.id,
        page_id=match.page_id,
        url=url,
        href=safe_href(page.url) if page is not None else None,
        site=_site_of(page, url),
        title=(page.title if page is not None and page.title else "") or url,
        kind=match.kind,
        kind_name=KIND_NAMES.get(match.kind, match.kind),
        colour=colour(match.kind),
        status=match.status,
        confidence=match.confidence,
        story_coverage=match.story_coverage,
        page_coverage=match.page_coverage,
        first_seen=match.first_seen,
        last_seen=match.last_seen,
        fetched_at=page.fetched_at if page is not None else None,
        http_status=page.http_status if page is not None else None,
        scores=scores,
        passages=passages,
        story_pieces=story_pieces,
        page_pieces=page_pieces,
        events=events,
        missing=missing,
        notes=notes,
        snapshots=len(snapshots),
        latest_sha256=snapshots[-1][1] if snapshots else None,
        detailed=detailed,
    )


def _ordinal(n: int) -> str:
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


def _when(value: datetime | None) -> str:
    return value.strftime("%Y-%m-%d %H:%M UTC") if value else "unknown"
