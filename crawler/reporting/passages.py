"""Aligned passages as a person reads them: checked offsets, shared words, trimmed texts.

Pure functions over plain strings, shared by the HTML report and the evidence pack.
Stored evidence is trusted only as far as it can be checked: a passage's offsets are
verified against the current texts (a page re-fetched with new text keeps its old
evidence until it is matched again), relocated by search when they moved, and shown
from the stored passage text alone when they cannot be found.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from crawler.alerts.render import Segment, highlight

# A passage longer than this is cut in the passage table (the full texts show it all).
MAX_PASSAGE_CHARS = 2000
# Shared words are looked up in at most this much of a passage (difflib is quadratic).
MAX_HIGHLIGHT_CHARS = 20_000
# Passages shown per copy.
MAX_PASSAGES = 60
# Texts longer than this are shown as windows around the passages, not whole.
MAX_FULL_TEXT_CHARS = 60_000
# Characters of context kept around each passage in a cut text.
CONTEXT_CHARS = 600


@dataclass(frozen=True, slots=True)
class AlignedPassage:
    index: int  # 1-based, in the stored order
    similarity: float
    story_text: str
    page_text: str
    story_span: tuple[int, int] | None  # verified char span in the story text
    page_span: tuple[int, int] | None  # verified char span in the page text
    story_segments: tuple[Segment, ...]  # the passage (up to MAX_HIGHLIGHT_CHARS) with shared words
    page_segments: tuple[Segment, ...]
    story_table: tuple[Segment, ...]  # the same, cut to MAX_PASSAGE_CHARS for the passage table
    page_table: tuple[Segment, ...]
    story_cut: int  # characters left out of story_table
    page_cut: int


@dataclass(frozen=True, slots=True)
class Piece:
    """A run of a full text: inside passage(s) or not, a shared word run or not, or a
    `gap` standing for `omitted` characters left out of a long text."""

    text: str
    passages: tuple[int, ...] = ()
    shared: bool = False
    gap: bool = False
    omitted: int = 0

    @property
    def passage(self) -> int | None:
        return self.passages[0] if self.passages else None


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else None


def _locate(text: str | None, fragment: str, start: int | None, end: int | None) -> tuple[int, int] | None:
    """The span of `fragment` in `text`: the stored offsets if they still hold, else the
    first occurrence; None if the text does not contain it (any more)."""
    if not text or not fragment:
        return None
    if start is not None and end is not None and text[start:end] == fragment:
        return start, end
    found = text.find(fragment)
    return (found, found + len(fragment)) if found >= 0 else None


def _cut(segments: Sequence[Segment], text: str, limit: int) -> tuple[tuple[Segment, ...], int]:
    """The segments cut to `limit` characters, and how many characters of `text` that leaves out."""
    kept: list[Segment] = []
    room = limit
    for seg in segments:
        if room <= 0:
            break
        kept.append(seg if len(seg.text) <= room else Segment(seg.text[:room], seg.shared))
        room -= len(kept[-1].text)
    return tuple(kept), max(0, len(text) - limit)


def aligned_passages(
    evidence: Iterable[Mapping[str, Any]] | None,
    story_text: str | None,
    page_text: str | None,
    *,
    limit: int = MAX_PASSAGES,
) -> tuple[list[AlignedPassage], list[str]]:
    """The stored passages with verified spans and shared words; plus notes on what
    could not be checked (said in the report rather than silently dropped)."""
    passages: list[AlignedPassage] = []
    notes: list[str] = []
    moved = lost = 0
    items = [p for p in (evidence or []) if isinstance(p, Mapping)]
    for index, p in enumerate(items[:limit], start=1):
        s_text = str(p.get("story_text") or "")
        p_text = str(p.get("page_text") or "")
        if not s_text and not p_text:
            continue
        s_span = _locate(story_text, s_text, _int(p.get("story_start")), _int(p.get("story_end")))
        p_start, p_end = _int(p.get("page_start")), _int(p.get("page_end"))
        p_span = _locate(page_text, p_text, p_start, p_end)
        if page_text and p_text:
            if p_span is None:
                lost += 1
            elif p_span != (p_start, p_end):
                moved += 1
        s_seg, p_seg = highlight(s_text[:MAX_HIGHLIGHT_CHARS], p_text[:MAX_HIGHLIGHT_CHARS])
        s_table, s_cut = _cut(s_seg, s_text, MAX_PASSAGE_CHARS)
        p_table, p_cut = _cut(p_seg, p_text, MAX_PASSAGE_CHARS)
        try:
            similarity = float(p.get("similarity") or 0.0)
        except (TypeError, ValueError):
            similarity = 0.0
        passages.append(
            AlignedPassage(
                index, similarity, s_text, p_text, s_span, p_span,
                tuple(s_seg), tuple(p_seg), s_table, p_table, s_cut, p_cut,
            )
        )
    if len(items) > limit:
        notes.append(f"{len(items) - limit} more aligned passages are not shown (the first {limit} are).")
    if moved:
        notes.append(f"{moved} passage(s) moved in the page text since matching; shown where they are now.")
    if lost:
        notes.append(
            f"{lost} passage(s) are no longer in the stored page text (the page changed since it was matched); "
            "they are shown as recorded at matching time."
        )
    return passages, notes


def _shared_ranges(segments: Sequence[Segment], offset: int) -> list[tuple[int, int]]:
    ranges, pos = [], offset
    for seg in segments:
        if seg.shared:
            ranges.append((pos, pos + len(seg.text)))
        pos += len(seg.text)
    return ranges


def full_text_pieces(
    text: str, passages: Sequence[AlignedPassage], *, side: str, limit: int = MAX_FULL_TEXT_CHARS
) -> list[Piece]:
    """`text` split into pieces marking each passage's span and its shared words.

    A text over `limit` characters keeps only windows around the passages (gaps say
    how much was left out), so a multi-megabyte page still makes a readable report.
    """
    spans: list[tuple[int, int, int]] = []
    shared: list[tuple[int, int]] = []
    for p in passages:
        span = p.story_span if side == "story" else p.page_span
        if span is None:
            continue
        spans.append((span[0], span[1], p.index))
        segments = p.story_segments if side == "story" else p.page_segments
        shared += [(a, min(b, span[1])) for a, b in _shared_ranges(segments, span[0])]
    windows = _windows(len(text), spans, limit)
    cuts = sorted({0, len(text)} | {x for s in spans for x in s[:2]} | {x for r in shared for x in r}
                  | {x for w in windows for x in w})
    pieces: list[Piece] = []
    for a, b in zip(cuts, cuts[1:]):
        if a >= b:
            continue
        if not any(w0 <= a and b <= w1 for w0, w1 in windows):
            if pieces and pieces[-1].gap:
                last = pieces[-1]
                pieces[-1] = Piece("", gap=True, omitted=last.omitted + (b - a))
            else:
                pieces.append(Piece("", gap=True, omitted=b - a))
            continue
        ids = tuple(i for s0, s1, i in spans if s0 <= a and b <= s1)
        is_shared = bool(ids) and any(r0 <= a and b <= r1 for r0, r1 in shared)
        last = pieces[-1] if pieces else None
        if last is not None and not last.gap and last.passages == ids and last.shared == is_shared:
            pieces[-1] = Piece(last.text + text[a:b], ids, is_shared)
        else:
            pieces.append(Piece(text[a:b], ids, is_shared))
    return pieces


def _windows(length: int, spans: Sequence[tuple[int, int, int]], limit: int) -> list[tuple[int, int]]:
    """Ranges of the text to show: all of it if short, else the passages with context
    (and the opening), merged, within about `limit` characters."""
    if length <= limit:
        return [(0, length)]
    wanted = [(0, min(length, CONTEXT_CHARS))]
    wanted += [(max(0, a - CONTEXT_CHARS), min(length, b + CONTEXT_CHARS)) for a, b, _ in sorted(spans)]
    merged: list[tuple[int, int]] = []
    for a, b in sorted(wanted):
        if merged and a <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], b))
        else:
            merged.append((a, b))
    kept: list[tuple[int, int]] = []
    budget = limit
    for a, b in merged:
        if budget <= 0:
            break
        b = min(b, a + budget)
        kept.append((a, b))
        budget -= b - a
    return kept


def key_passages(passages: Sequence[AlignedPassage], count: int = 5) -> list[AlignedPassage]:
    """The passages that carry the most evidence (long and close), in text order."""
    ranked = sorted(passages, key=lambda p: p.similarity * min(len(p.page_text), 1500), reverse=True)[:count]
    return sorted(ranked, key=lambda p: p.index)
