"""Pick the runs of a story's wording worth an exact-phrase web search.

A search engine finds a copy only through words the copy kept. What it kept and what
nobody else wrote is the story's *own* wording around its exclusive details: a run
of ordinary prose that also carries a name or a figure. Everything else is a poor
query, for reasons the selection rules follow:

- Quoted speech is excluded. Statements (press releases, spokespeople, officials)
  are quoted word for word by every independent report of the event, so a quote
  finds the whole news cycle, not the copies.
- Agency and page boilerplate is excluded: datelines ("LONDON (Reuters) -"),
  bylines and editing credits, "did not respond to a request for comment",
  sign-up and cookie lines, and any line repeated in the text (page chrome).
- Headings, teasers and captions are excluded: lines without a sentence ending.
- Attribution lowers a run's score: the frame around a quote ("said X, chief
  executive of Y") a lot, a run with "said", "told", "according to" less, since
  reported statements are shared facts too, only reworded.
- Names and figures raise it (capped, so a list of names is not a winner): they
  make the phrase specific to this story. Long content words raise it a little:
  a story's own vocabulary is what a rewrite changes last.
- One phrase per sentence, so the queries cover the story and an excerpt of any
  part of it is still found; ties go to the earlier sentence (leads are copied
  most). Phrases start and end on content words: copies change function words
  at the edges of what they take more often than in the middle.

The function is pure and deterministic: same text, same phrases, same order.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass

from crawler.matching.text import STOPWORDS, is_rare_token, normalize, sentences, stem, word_spans

__all__ = ["distinctive_phrases"]

DEFAULT_WORDS = (8, 12)
MIN_WORDS, MAX_WORDS = 4, 32

# "BEIJING/HONG KONG, Feb 25 (Reuters) - ", "LONDON (AP) - ": agency datelines.
_DATELINE = re.compile(r"^[^\n()]{0,80}?\((?:[A-Z][A-Za-z&.' ]{0,30})\)\s*-+\s*")
_BOILERPLATE = re.compile(
    r"reporting by|editing by|writing by|additional reporting|compiled by|all rights reserved|copyright|\u00a9"
    r"|sign up|subscribe|newsletter|click here|read more|follow us|cookie|privacy policy|terms of (?:use|service)"
    r"|trust principles|our standards|advertisement|share this|image caption|getty images|ap photo"
    r"|request for comment|declined to comment|could not be reached|did not immediately respond"
    r"|https?://|www\.",
    re.IGNORECASE,
)
_SENTENCE_END = re.compile(r"""[.!?]["')\]]*$""")
_ATTRIBUTION = frozenset(
    "said says say told tells according stated statement spokesperson spokesman spokeswoman announced "
    "added adding wrote noted".split()
)


@dataclass(frozen=True)
class _Token:
    folded: str
    stem: str
    start: int
    end: int
    weight: float
    rare: bool
    attribution: bool


def distinctive_phrases(
    text: str, *, max_phrases: int = 5, words_per_phrase: int | tuple[int, int] = DEFAULT_WORDS
) -> list[str]:
    """Up to `max_phrases` runs of the story's own wording, most distinctive first.

    `words_per_phrase` is a length or a (shortest, longest) range: long enough to be
    specific on the whole web, short enough that a copy which changed one word
    elsewhere in the sentence still contains the run. Returns [] when the text has
    no run that qualifies (only quotes, only boilerplate, or too short).
    """
    low, high = _bounds(words_per_phrase)
    if max_phrases < 1:
        raise ValueError(f"max_phrases must be at least 1, got {max_phrases}")
    norm = normalize(text or "")
    if not norm:
        return []
    quoted = _quoted_mask(norm)
    line_counts = Counter(line.strip().lower() for line in norm.split("\n") if line.strip())

    eligible = []
    for index, sentence in enumerate(sentences(norm)):
        body = sentence.text
        if _BOILERPLATE.search(body) or not _SENTENCE_END.search(body) or line_counts[body.strip().lower()] > 1:
            continue
        dateline = _DATELINE.match(body)
        skip_to = sentence.start + (dateline.end() if dateline else 0)
        eligible.append((index, sentence, _tokens(norm, sentence.start, body, skip_to)))
    # How many paragraphs use each content stem: the story's topic words recur across
    # it, the words of an unrelated teaser or sidebar on the same page stay in theirs.
    paragraph_stems: dict[int, set[str]] = {}
    for _index, sentence, tokens in eligible:
        paragraph = norm.count("\n", 0, sentence.start)
        paragraph_stems.setdefault(paragraph, set()).update(t.stem for t in tokens if t.weight)
    spread = Counter(s for stems in paragraph_stems.values() for s in stems)

    best: list[tuple[float, int, str]] = []
    for index, sentence, tokens in eligible:
        runs = _runs(tokens, quoted)
        has_quote = len(runs) > 1 or any(quoted[sentence.start : sentence.end])
        choice = None
        for run in runs:
            window = _best_window(run, low, high, spread)
            if window is None:
                continue
            score, first, last = window
            # The frame around a quote ("said X, chief executive of Y") is attribution:
            # every report of the statement carries it.
            if has_quote:
                score -= 4.0
            elif any(t.attribution for t in run):
                score -= 2.0
            if choice is None or score > choice[0]:
                choice = (score, first, last)
        if choice is None:
            continue
        score, first, last = choice
        phrase = " ".join(norm[first.start : last.end].replace('"', " ").split())
        best.append((score, index, phrase))

    chosen: list[str] = []
    for _score, _index, phrase in sorted(best, key=lambda item: (-item[0], item[1])):
        if phrase.lower() not in (p.lower() for p in chosen):
            chosen.append(phrase)
        if len(chosen) == max_phrases:
            break
    return chosen


def _bounds(words_per_phrase: int | tuple[int, int]) -> tuple[int, int]:
    if isinstance(words_per_phrase, int):
        low = high = words_per_phrase
    else:
        low, high = words_per_phrase
    if not (MIN_WORDS <= low <= high <= MAX_WORDS):
        raise ValueError(
            f"words_per_phrase must be a length or a (shortest, longest) range within {MIN_WORDS}..{MAX_WORDS}, "
            f"got {words_per_phrase!r}"
        )
    return low, high


def _quoted_mask(norm: str) -> bytearray:
    """1 for each character inside double quotes. News style opens a quote again at
    each paragraph of a long quotation without closing the previous one, so an
    unclosed quote runs to the end of its line and the state resets per line."""
    mask = bytearray(len(norm))
    inside = False
    for i, ch in enumerate(norm):
        if ch == "\n":
            inside = False
        elif ch == '"':
            inside = not inside
            mask[i] = 1
        elif inside:
            mask[i] = 1
    return mask


def _tokens(norm: str, offset: int, body: str, skip_to: int) -> list[_Token]:
    out = []
    for position, (folded, start, end) in enumerate(word_spans(body)):
        start, end = start + offset, end + offset
        if start < skip_to:
            continue
        raw = norm[start:end]
        stop = folded in STOPWORDS
        # A capital at the start of a sentence says nothing; inner capitals ("DeepSeek")
        # and figures do.
        initial_only = position == 0 and raw[:1].isupper() and raw[1:].islower()
        rare = not stop and not initial_only and is_rare_token(raw, folded)
        weight = 0.0 if stop else 1.0 + (0.5 if len(folded) >= 8 else 0.0)
        out.append(_Token(folded, stem(folded), start, end, weight, rare, folded in _ATTRIBUTION))
    return out


def _runs(tokens: list[_Token], quoted: bytearray) -> list[list[_Token]]:
    """Maximal runs of consecutive tokens outside quotes: a quote splits a sentence."""
    runs: list[list[_Token]] = [[]]
    for token in tokens:
        if quoted[token.start]:
            if runs[-1]:
                runs.append([])
            continue
        runs[-1].append(token)
    return [run for run in runs if run]


def _best_window(run: list[_Token], low: int, high: int, spread: Counter) -> tuple[float, _Token, _Token] | None:
    """The highest-scoring window of `low`..`high` tokens that starts and ends on a
    content word; None when the run is too short."""
    best = None
    for i in range(len(run)):
        for j in range(min(len(run), i + high), i + low - 1, -1):
            window = run[i:j]
            if window[0].weight == 0 or window[-1].weight == 0:
                continue
            score = _score(window, spread)
            if best is None or score > best[0]:
                best = (score, window[0], window[-1])
            break  # the longest acceptable window from i; shorter ones score less
    return best


def _score(window: list[_Token], spread: Counter) -> float:
    content = sum(t.weight for t in window)
    rare = len({t.folded for t in window if t.rare})
    stems = {t.stem for t in window if t.weight}
    on_topic = sum(1 for s in stems if spread[s] > 1) / len(stems) if stems else 0.0
    score = content + 1.5 * min(rare, 3) + 4.0 * on_topic
    if rare > 0.6 * len(window):  # a list of names and titles: facts, not wording
        score -= 3.0
    if any(c.isdigit() for t in window for c in t.folded):
        score += 0.5  # an exclusive figure is the most specific thing a story has
    return score
