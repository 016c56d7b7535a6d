"""Copy chains: which stored copy was copied from another copy rather than from the story.

Why not compare the two verdicts' coverages: a copy of a copy usually also shares a lot
with the story (it is derived from it, through the middle copy), and coverages are
shares of texts of different lengths. On mission 004 (which expands 003) the share of
004 that comes from 003 (0.29) is *lower* than the share that comes from the story
(0.35), though 004 carries 003's subheads and reworded sentences. What gives a copy of
a copy away is wording the two copies share and the story does not have: so each
character of a copy is attributed to whichever source aligns it more closely
(`crawler.matching.compare` on both), and copies X, Y are linked when one of them has
a substantial part that is closer to the other than to the story, and more of such
text than text closer to the story. The link is symmetric evidence ("these two copies
are closer to each other than to the story"); time gives its direction: the copy seen
first is the source.

`find_edges` is pure (texts in, edges out); `record_edges` loads a story's copies and
stores the edges idempotently.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete, select
from sqlalchemy.orm import Session, joinedload

from crawler.matching.compare import compare
from crawler.matching.align import PreparedText, prepare
from crawler.matching.verdict import Verdict
from storage.models import CopyEdge, Match, Story, utcnow
from storage.repositories import _insert

# A character of a copy is "closer to X" when X's aligned passage over it is this much
# more similar than the story's (or the story does not align it at all). Below it the
# two are a tie: rewording the same story sentence twice lands within noise of it.
ATTRIBUTION_MARGIN = 0.05
# Share of a copy's derived text that must be closer to the other copy than to the
# story. Mission: 003 vs 004 reaches 0.64; unrelated rewrites of the same story 0.00-0.48
# (001/003, two condensations that picked the same sentences) — but those have more text
# closer to the story than to each other, which the dominance rule below rejects.
MIN_CLOSER_SHARE = 0.25
# ... and at least this many characters: a shared headline alone is no chain.
MIN_CLOSER_CHARS = 200
# Candidate sources examined per copy (the earlier copies sharing most words that the
# story lacks): keeps the work linear in the number of copies, not quadratic.
MAX_CANDIDATES = 5
# Copies considered per story (most recently first seen are dropped beyond this).
MAX_COPIES = 300
# Texts longer than this are cut before comparing: evidence of a chain is spread over
# the text, and compare's cost grows with length.
MAX_TEXT_CHARS = 200_000

_WORD = re.compile(r"\w{4,}", re.UNICODE)


@dataclass(frozen=True, slots=True)
class Edge:
    """`copy_id` was copied from `source_id` (both page ids), not straight from the story."""

    source_id: int
    copy_id: int
    kind: str  # the verdict of the copy against its source: copy, rewrite, ...
    similarity: float  # share of the copy's derived text closer to the source than to the story


@dataclass(frozen=True, slots=True)
class _Copy:
    page_id: int
    text: str
    first_seen: datetime
    prepared: PreparedText
    novel: frozenset[str]  # words the story does not have


def _words(text: str) -> set[str]:
    return {w.casefold() for w in _WORD.findall(text)}


def _coverage(verdict: Verdict, length: int) -> list[float]:
    """Per character of the page: the best similarity of a passage covering it."""
    best = [0.0] * length
    for p in verdict.passages:
        for i in range(max(0, p.page_start), min(p.page_end, length)):
            if p.similarity > best[i]:
                best[i] = p.similarity
    return best


def attribution(from_story: Verdict, from_other: Verdict, length: int) -> tuple[int, int, int]:
    """(chars closer to the other copy, chars closer to the story, chars tied)."""
    story_cov = _coverage(from_story, length)
    other_cov = _coverage(from_other, length)
    closer_other = closer_story = tied = 0
    for o, s in zip(other_cov, story_cov, strict=True):
        if not o and not s:
            continue
        if o > s + ATTRIBUTION_MARGIN:
            closer_other += 1
        elif s > o + ATTRIBUTION_MARGIN:
            closer_story += 1
        else:
            tied += 1
    return closer_other, closer_story, tied


def _closer_share(story: PreparedText, source: _Copy, copy: _Copy, from_story: Verdict) -> tuple[float, Verdict] | None:
    """How much of `copy` is closer to `source` than to the story, if that is a chain."""
    from_source = compare(source.prepared, copy.prepared)
    if not from_source.derived:
        return None
    closer, story_side, tied = attribution(from_story, from_source, len(copy.prepared.text))
    derived = closer + story_side + tied
    if not derived or closer < MIN_CLOSER_CHARS or closer <= story_side:
        return None
    share = closer / derived
    return (share, from_source) if share >= MIN_CLOSER_SHARE else None


def find_edges(story_text: str, copies: Sequence[tuple[int, str, datetime]]) -> list[Edge]:
    """Edges source -> copy among `copies` ((page_id, text, first_seen) of each).

    Each copy gets at most one source: the earlier copy it is closest to. Copies with
    the same first_seen are ordered by page id. Empty texts are skipped.
    """
    story = prepare(story_text[:MAX_TEXT_CHARS])
    story_words = _words(story.text)
    items: list[_Copy] = []
    for page_id, text, first_seen in sorted(copies, key=lambda c: (c[2], c[0]))[:MAX_COPIES]:
        if not text or not text.strip():
            continue
        text = text[:MAX_TEXT_CHARS]
        items.append(_Copy(page_id, text, first_seen, prepare(text), frozenset(_words(text) - story_words)))
    from_story: dict[int, Verdict] = {}
    edges: list[Edge] = []
    for index, copy in enumerate(items):
        # Earlier copies sharing the most words the story lacks: the only ones that
        # can hold wording the copy took from them.
        ranked = sorted(
            ((len(copy.novel & earlier.novel), -i, earlier) for i, earlier in enumerate(items[:index])),
            key=lambda r: (r[0], r[1]),
            reverse=True,
        )
        best: tuple[float, _Copy, Verdict] | None = None
        for shared, _, earlier in ranked[:MAX_CANDIDATES]:
            if not shared:
                break
            found = _linked(story, earlier, copy, from_story)
            if found is not None and (best is None or found[0] > best[0]):
                best = (found[0], earlier, found[1])
        if best is not None:
            share, source, verdict = best
            edges.append(Edge(source.page_id, copy.page_id, verdict.kind, round(share, 3)))
    return edges


def _linked(story: PreparedText, earlier: _Copy, later: _Copy, cache: dict[int, Verdict]) -> tuple[float, Verdict] | None:
    """Evidence either way round (the later copy may expand or condense the earlier),
    with the verdict of the later copy against the earlier one."""
    for copy in (later, earlier):
        if copy.page_id not in cache:
            cache[copy.page_id] = compare(story, copy.prepared)
    forward = _closer_share(story, earlier, later, cache[later.page_id])
    backward = _closer_share(story, later, earlier, cache[earlier.page_id])
    shares = [f[0] for f in (forward, backward) if f is not None]
    if not shares:
        return None
    verdict = forward[1] if forward is not None else compare(earlier.prepared, later.prepared)
    return max(shares), verdict


# Matches a person said are not copies cannot be links of a chain; every other status
# (removed, licensed, ignored) still tells who copied whom.
EXCLUDED_STATUSES = ("false_positive",)


def record_edges(session: Session, story_id: int) -> list[Edge]:
    """Compute the story's copy chains and make the stored edges equal to them.

    Idempotent: re-running stores nothing new; an edge that no longer holds (a copy's
    text changed, or a person said a page is not a copy) is removed. Copies beyond
    MAX_COPIES are not looked at, and their edges are kept. Runs in the caller's
    transaction and never commits.
    """
    story = session.get(Story, story_id)
    if story is None:
        return []
    matches = session.scalars(
        select(Match)
        .options(joinedload(Match.page))
        .where(Match.story_id == story_id, Match.status.not_in(EXCLUDED_STATUSES))
        .order_by(Match.first_seen, Match.id)
    ).all()
    copies = [(m.page_id, m.page.text, m.first_seen) for m in matches if m.page is not None and m.page.text]
    not_examined = {page_id for page_id, _, _ in copies[MAX_COPIES:]}
    copies = copies[:MAX_COPIES]
    edges = find_edges(story.text, copies)
    keep = {(e.source_id, e.copy_id) for e in edges}
    for old in session.scalars(select(CopyEdge).where(CopyEdge.story_id == story_id)).all():
        if (old.source_page_id, old.copy_page_id) not in keep and old.copy_page_id not in not_examined:
            session.execute(delete(CopyEdge).where(CopyEdge.id == old.id))
    for edge in edges:
        stmt = _insert(session, CopyEdge).values(
            story_id=story_id,
            source_page_id=edge.source_id,
            copy_page_id=edge.copy_id,
            kind=edge.kind,
            similarity=edge.similarity,
            created_at=utcnow(),
        )
        stmt = stmt.on_conflict_do_update(
            index_elements=["story_id", "source_page_id", "copy_page_id"],
            set_={"kind": stmt.excluded.kind, "similarity": stmt.excluded.similarity},
        )
        session.execute(stmt)
    session.flush()
    return edges

