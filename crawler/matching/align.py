"""Sentence alignment between a story and a page, and the wording they share.

Why sentence alignment rather than a document fingerprint: a rewrite keeps the story's
sentences in order while changing most of their words, and an independent report of
the same event shares names and figures scattered over different sentences. Matching
each page sentence to its most similar story sentence and keeping only a monotone
chain (the order-preserving subset with the greatest total similarity) rewards exactly
what a derivative keeps: the story's content, sentence by sentence, in its order.

All offsets are character offsets into the ORIGINAL texts given to `prepare`.
"""

from __future__ import annotations

import math
import re
from bisect import bisect_left, bisect_right
from dataclasses import dataclass, field
from operator import itemgetter

from crawler.matching import thresholds as T
from crawler.matching.background import Background
from crawler.matching.text import content_stem, sentence_spans, token_spans
from crawler.matching.verdict import Passage

__all__ = ["Alignment", "PreparedText", "align", "prepare", "verbatim"]

_OPEN_QUOTES = '"\u201c\u201e\u00ab'
_CLOSE_QUOTES = '"\u201d\u00bb'
_QUOTE_OR_BREAK = re.compile('[\n"\u201c\u201d\u201e\u00ab\u00bb]')
_START = itemgetter(0)
_END = itemgetter(1)


@dataclass(slots=True)
class PreparedText:
    """A text tokenised once: reuse it to compare one story against many pages."""

    text: str
    sent_spans: list[tuple[int, int]]  # char span of each sentence
    sent_tokens: list[tuple[int, int]]  # [first, last) token index of each sentence
    tokens: list[str]  # folded tokens, stopwords included
    spans: list[tuple[int, int]]  # char span of each token
    stems: list[str | None]  # content stem of each token, None for stopwords
    quoted: list[bool]  # token inside quotation marks
    rare: set[str]  # stems written as names or figures somewhere in the text
    # distinct content stems of each sentence in text order: a dict, not a set, so that
    # iterating them (and so every sum and tie-break) does not depend on the hash seed
    sent_stems: list[dict[str, None]] = field(default_factory=list)
    n_content: int = 0
    sent_content: list[int] = field(default_factory=list)  # content tokens of each sentence
    vocab: set[str] = field(default_factory=set)  # all content stems
    # built lazily, only for texts used as the story side
    _postings: dict[str, list[int]] | None = None
    _stem_grams: dict[str, set[str]] | None = None
    _gram_index: dict[str, list[str]] | None = None
    _ngrams: dict[tuple[str, ...], list[int]] | None = None
    _common: tuple[tuple[Background, int], float] | None = None
    _fuzzy: dict[str, tuple[str, float] | None] = field(default_factory=dict)
    # per background state (None: no background): stem weights; page side: df of the
    # background n-gram at each token
    _weights: tuple[tuple[Background, int] | None, tuple[dict[str, float], dict[str, float]]] | None = None
    _dfs: tuple[tuple[Background, int], list[int]] | None = None

    def postings(self) -> dict[str, list[int]]:
        """Stem -> sentence indices containing it."""
        if self._postings is None:
            p: dict[str, list[int]] = {}
            for j, ss in enumerate(self.sent_stems):
                for s in ss:
                    p.setdefault(s, []).append(j)
            self._postings = p
        return self._postings

    def stem_grams(self) -> dict[str, set[str]]:
        """Character trigrams of each vocabulary stem long enough for fuzzy matching."""
        if self._stem_grams is None:
            self._stem_grams = {
                s: _char_grams(s) for s in self.postings() if len(s) >= T.FUZZY_MIN_LEN and s.isalpha()
            }
        return self._stem_grams

    def gram_index(self) -> dict[str, list[str]]:
        """Character trigram -> vocabulary stems containing it (fuzzy matching)."""
        if self._gram_index is None:
            g: dict[str, list[str]] = {}
            for s, grams in self.stem_grams().items():
                for gram in grams:
                    g.setdefault(gram, []).append(s)
            self._gram_index = g
        return self._gram_index

    def ngram_positions(self) -> dict[tuple[str, ...], list[int]]:
        if self._ngrams is None:
            d: dict[tuple[str, ...], list[int]] = {}
            for i, gram in enumerate(_windows(self.tokens, T.VERBATIM_N)):
                d.setdefault(gram, []).append(i)
            self._ngrams = d
        return self._ngrams


def _windows(tokens: list[str], n: int) -> zip:
    """Tuples of n consecutive tokens, one per start position."""
    return zip(*(tokens[k:] for k in range(n)))


def _char_grams(s: str) -> set[str]:
    p = f"#{s}#"
    return {p[i : i + 3] for i in range(len(p) - 2)}


def _quoted_mask(text: str, spans: list[tuple[int, int]]) -> list[bool]:
    """Which tokens sit between quotation marks. Straight quotes toggle; a paragraph
    break closes an unterminated quote (news style reopens quotes per paragraph)."""
    inside = False
    intervals: list[tuple[int, int]] = []
    start = 0
    for m in _QUOTE_OR_BREAK.finditer(text):
        k, c = m.start(), m.group()
        if c == "\n" and inside:
            intervals.append((start, k))
            inside = False
        elif c in _OPEN_QUOTES or c in _CLOSE_QUOTES:
            if inside and (c in _CLOSE_QUOTES):
                intervals.append((start, k))
                inside = False
            elif not inside and (c in _OPEN_QUOTES):
                inside = True
                start = k
    if inside:
        intervals.append((start, len(text)))
    mask = [False] * len(spans)
    for start, end in intervals:  # the tokens starting inside
        lo = bisect_left(spans, start, key=_START)
        hi = bisect_left(spans, end, lo=lo, key=_START)
        mask[lo:hi] = [True] * (hi - lo)
    return mask


def prepare(text: str) -> PreparedText:
    """Tokenise and sentence-split `text` once."""
    if not isinstance(text, str):
        raise TypeError(f"prepare() needs str, got {type(text).__name__}")
    all_tokens, all_spans = token_spans(text)
    tokens: list[str] = []
    spans: list[tuple[int, int]] = []
    sent_spans: list[tuple[int, int]] = []
    sent_tokens: list[tuple[int, int]] = []
    k = 0
    for start, end in sentence_spans(text):
        first = bisect_left(all_spans, start, lo=k, key=_START)
        k = bisect_right(all_spans, end, lo=first, key=_END)
        if k > first:
            sent_spans.append((start, end))
            sent_tokens.append((len(tokens), len(tokens) + k - first))
            tokens += all_tokens[first:k]
            spans += all_spans[first:k]
    stems = list(map(content_stem, tokens))
    # names and figures: a figure, or a word capitalised mid-sentence
    rare = {st for st, tok in zip(stems, tokens) if st is not None and not tok.isalpha()}
    sent_stems: list[dict[str, None]] = []
    sent_content: list[int] = []
    for a, b in sent_tokens:
        sent_stems.append(dict.fromkeys(st for st in stems[a:b] if st is not None))
        sent_content.append(b - a - stems[a:b].count(None))
        rare.update(
            st
            for st, (x, y) in zip(stems[a + 1 : b], spans[a + 1 : b])
            if st is not None and st not in rare and not text[x:y].islower()
        )
    return PreparedText(
        text=text,
        sent_spans=sent_spans,
        sent_tokens=sent_tokens,
        tokens=tokens,
        spans=spans,
        stems=stems,
        quoted=_quoted_mask(text, spans),
        rare=rare,
        sent_stems=sent_stems,
        n_content=len(stems) - stems.count(None),
        sent_content=sent_content,
        vocab={st for st in stems if st is not None},
    )


# --- weights ------------------------------------------------------------------------


def _weights(story: PreparedText, page: PreparedText, background: Background | None) -> dict[str, float]:
    """Stem -> weight for every content stem of either text: names/figures (rare in
    either text) count more; a Background discounts common stems.

    Merged from per-text parts with bulk dict operations: the alignment reads a weight
    for every stem, and a function call per lookup would dominate it."""
    story_all, story_rare = _text_weights(story, background)
    w = dict(story_all)
    w.update(_text_weights(page, background)[0])  # a stem rare in the page only: page weight
    w.update(story_rare)  # a stem rare in the story keeps its story weight
    return w


def _text_weights(
    t: PreparedText, background: Background | None
) -> tuple[dict[str, float], dict[str, float]]:
    """(weight of each content stem of `t`, weight of each of its rare stems), cached
    per background state (a story is aligned with many pages)."""
    bg = background if background is not None and len(background) > 0 else None
    key = None if bg is None else (bg, len(bg))
    if t._weights is not None and t._weights[0] == key:
        return t._weights[1]
    if bg is None:
        w = dict.fromkeys(t.vocab, 1.0)
        rare = dict.fromkeys(t.rare, T.RARE_WEIGHT)
    else:
        f = T.BACKGROUND_WEIGHT_FLOOR
        top = bg.max_idf()
        idf = bg.idf
        w = {s: f + (1.0 - f) * min(1.0, idf(s) / top) for s in t.vocab}
        rare = {s: T.RARE_WEIGHT * w[s] for s in t.rare}
    w.update(rare)
    t._weights = (key, (w, rare))
    return w, rare


# --- alignment ----------------------------------------------------------------------


@dataclass(slots=True)
class Alignment:
    pairs: list[tuple[int, int, float]]  # (page sentence, story sentence, similarity), in order
    best_pairs: int  # page sentences whose best story match passes PAIR_MIN_SIM
    page_cov: float  # share of page content weight matched inside aligned pairs
    story_cov: float  # share of story content weight matched inside aligned pairs
    rare_share: float  # share of the page's name/figure weight matched in order
    rare_count: int  # distinct names/figures matched in order
    page_cov_window: float  # page_cov, crediting words found near the match (condensation)
    story_cov_window: float
    page_sent_cov: float  # share of page content words in aligned sentences
    story_sent_cov: float  # share of story content words in aligned sentences
    matched_tokens: int  # page content tokens matched inside aligned pairs
    fuzzy_tokens: int  # ... of which matched only fuzzily (near misses)
    rare_matched: float  # weight of the distinct names/figures matched in order
    passages: list[Passage]


def _fuzzy_map(page: PreparedText, story: PreparedText) -> dict[str, tuple[str, float]]:
    """Page stems absent from the story -> (closest story stem, Dice), near misses only."""
    vocab = story.postings()
    gidx = story.gram_index()
    story_grams = story.stem_grams()
    cache = story._fuzzy
    out: dict[str, tuple[str, float]] = {}
    for s in page.vocab.difference(vocab):
        if len(s) < T.FUZZY_MIN_LEN or not s.isalpha():
            continue
        if s in cache:  # page words recur across the pages compared with one story
            hit = cache[s]
            if hit is not None:
                out[s] = hit
            continue
        cache[s] = None
        grams = _char_grams(s)
        # A stem within FUZZY_MIN_DICE (0.5) shares at least a third of s's trigrams, so
        # it holds one of any len - ceil(len/3) + 1 of them: probe the rarest only.
        probe = sorted(grams, key=lambda g: len(gidx.get(g, ())))[: len(grams) - -(-len(grams) // 3) + 1]
        best, best_d, best_c = None, 0.0, 0
        for cand in {c for g in probe for c in gidx.get(g, ())}:
            c = len(grams & story_grams[cand])
            d = 2.0 * c / (len(grams) + len(cand))  # a word of length L has <= L trigrams
            if d > best_d or (d == best_d and cand < best):  # ties: the same on every run
                best, best_d, best_c = cand, d, c
        if best is not None:
            d = 2.0 * best_c / (len(grams) + len(story_grams[best]))
            if d >= T.FUZZY_MIN_DICE:
                out[s] = cache[s] = (best, d)
    return out


def align(
    story: PreparedText, page: PreparedText, *, background: Background | None = None
) -> Alignment:
    weight = _weights(story, page, background)
    fuzzy = _fuzzy_map(page, story)
    postings = story.postings()
    story_sents = story.sent_stems

    # page sentence -> {story stem: credit}
    page_maps: list[dict[str, float]] = []
    page_norm: list[float] = []
    for ss in page.sent_stems:
        m: dict[str, float] = {}
        norm = 0.0
        for s in ss:
            if s in postings:
                m[s] = 1.0
                norm += weight[s]
            elif s in fuzzy:
                t, d = fuzzy[s]
                m[t] = max(m.get(t, 0.0), T.FUZZY_CREDIT * d)
                norm += weight[t]
            else:
                norm += weight[s]
        page_maps.append(m)
        page_norm.append(norm)
    story_norm = [sum(map(weight.__getitem__, ss)) for ss in story_sents]
    boiler = _boilerplate_factors(page, story, background)

    # sparse similarity: accumulate shared weight per story sentence
    cands: list[list[tuple[int, float]]] = []
    best_pairs = 0
    sqrt = math.sqrt
    for i, m in enumerate(page_maps):
        row = []
        pn = page_norm[i]
        if pn > 0:
            acc: dict[int, float] = {}
            get = acc.get
            for s, credit in m.items():
                w = weight[s] * credit
                for j in postings[s]:
                    acc[j] = get(j, 0.0) + w
            f = boiler[i]
            for j, shared in acc.items():
                sim = shared / sqrt(pn * story_norm[j])
                if sim >= T.PAIR_MIN_SIM and sim * f >= T.PAIR_MIN_SIM:
                    row.append((j, sim * f))
            if row and len(page.sent_stems[i]) >= T.MIN_SENTENCE_CONTENT:
                best_pairs += 1
        cands.append(row)

    pairs = _monotone_chain(cands, page, story)

    # coverage inside aligned pairs
    page_total = sum(page_norm) or 1.0
    story_total = sum(story_norm) or 1.0
    page_matched = 0.0
    story_matched_stems: dict[int, set[str]] = {}
    matched_tokens = fuzzy_tokens = 0
    page_sent_words = story_sent_words = 0
    aligned_story: set[int] = set()
    story_factor: dict[int, float] = {}
    story_rare = story.rare
    to_story = {s: t for s, (t, _d) in fuzzy.items()}.get
    for i, j, _sim in pairs:
        m = page_maps[i]
        sj = story_sents[j]
        qf = (T.QUOTED_WEIGHT if _mostly_quoted(page, i) else 1.0) * boiler[i]
        story_factor[j] = min(story_factor.get(j, 1.0), boiler[i])
        got = story_matched_stems.setdefault(j, set())
        for s in page.sent_stems[i]:
            t = to_story(s, s)
            if t in sj:  # then t is in m too: a story stem, direct or fuzzy
                page_matched += weight[t] * m[t] * qf
                got.add(t)
                if s in fuzzy:
                    fuzzy_tokens += 1
                matched_tokens += 1
        page_sent_words += page.sent_content[i]
        aligned_story.add(j)
    # condensed sentences: a page sentence may also cover its story match's neighbours
    ns = len(story_sents)
    for i, j, _sim in pairs:
        for jj in (j - 1, j + 1):
            if 0 <= jj < ns and jj not in aligned_story:
                sjj = story_sents[jj]
                shared = sum(weight[s] * c for s, c in page_maps[i].items() if s in sjj)
                if story_norm[jj] > 0 and shared / math.sqrt(page_norm[i] * story_norm[jj]) >= T.SECONDARY_MIN_SIM:
                    story_matched_stems.setdefault(jj, set()).update(s for s in page_maps[i] if s in sjj)
    # condensation: a page sentence often merges its match with neighbouring story
    # sentences; credit its words found within ALIGN_WINDOW sentences of the match
    page_matched_w = 0.0
    story_w_stems: dict[int, set[str]] = {}
    for i, j, _sim in pairs:
        window = range(max(0, j - T.ALIGN_WINDOW), min(ns, j + T.ALIGN_WINDOW + 1))
        for s, credit in page_maps[i].items():
            for jj in window:
                if s in story_sents[jj]:
                    page_matched_w += weight[s] * credit
                    story_w_stems.setdefault(jj, set()).add(s)
                    break
    # exclusive details: names and figures of the page that reappear in order, each
    # counted once (a film or a company named in every sentence is one detail)
    page_rare_total = math.fsum(weight[s] for s in page.vocab if s in page.rare) or 1.0
    rare_in_chain = {s for i, j, _ in pairs for s in page_maps[i] if s in story_sents[j] and s in story_rare}
    rare_matched = math.fsum(weight[s] for s in rare_in_chain)
    story_matched_w = math.fsum(weight[s] for got in story_w_stems.values() for s in got)
    story_matched = 0.0
    for j, got in story_matched_stems.items():
        qf = (T.QUOTED_WEIGHT if _mostly_quoted(story, j) else 1.0) * story_factor.get(j, 1.0)
        story_matched += qf * math.fsum(weight[s] for s in got)
        story_sent_words += story.sent_content[j]
    page_words = page.n_content or 1
    story_words = story.n_content or 1
    return Alignment(
        pairs=pairs,
        best_pairs=best_pairs,
        page_cov=min(1.0, page_matched / page_total),
        rare_share=min(1.0, rare_matched / page_rare_total),
        rare_count=len(rare_in_chain),
        page_cov_window=min(1.0, page_matched_w / page_total),
        story_cov_window=min(1.0, story_matched_w / story_total),
        story_cov=min(1.0, story_matched / story_total),
        page_sent_cov=min(1.0, page_sent_words / page_words),
        story_sent_cov=min(1.0, story_sent_words / story_words),
        matched_tokens=matched_tokens,
        fuzzy_tokens=fuzzy_tokens,
        rare_matched=rare_matched,
        passages=_passages(pairs, page, story),
    )


def common_df(story: PreparedText, background: Background) -> float:
    """Document frequency from which a word n-gram counts as boilerplate for `story`.

    Absolute commonness is not enough: a story syndicated across a crawl makes its own
    sentences common. Boilerplate is wording more common than the story's own wording,
    so the floor is raised to the BACKGROUND_STORY_QUANTILE of the df of the story's
    n-grams (cached on the prepared story per background state)."""
    key = (background, len(background))
    cached = story._common
    if cached is not None and cached[0] == key:
        return cached[1]
    dfs = sorted(background.ngram_dfs(story.tokens))
    q = dfs[int(T.BACKGROUND_STORY_QUANTILE * (len(dfs) - 1))] if dfs else 0
    value = max(T.BACKGROUND_COMMON_MIN_DF, T.BACKGROUND_COMMON_SHARE * (len(background) - 1), q + 1)
    story._common = (key, value)
    return value


def _common_grams(page: PreparedText, story: PreparedText, background: Background) -> list[bool]:
    """Per page token, whether the background n-gram starting there is common wording
    for `story` (see `common_df`). The page's dfs are cached per background state: a
    page is compared with several stories, by both `align` and `verbatim`."""
    key = (background, len(background))
    if page._dfs is None or page._dfs[0] != key:
        page._dfs = (key, background.ngram_dfs(page.tokens))
    common = common_df(story, background)
    return [df - 1 >= common for df in page._dfs[1]]


def _boilerplate_factors(
    page: PreparedText, story: PreparedText, background: Background | None
) -> list[float]:
    """Per page sentence, 1.0 or BOILERPLATE_FACTOR when most of its word n-grams are
    common in the background (press-release and site boilerplate, agency notices)."""
    out = [1.0] * len(page.sent_tokens)
    if background is None or len(background) == 0:
        return out
    n = background.ngram
    common = _common_grams(page, story, background)
    for i, (a, b) in enumerate(page.sent_tokens):
        grams = b - a - n + 1
        if grams > 0 and common[a : a + grams].count(True) >= T.BOILERPLATE_MIN_SHARE * grams:
            out[i] = T.BOILERPLATE_FACTOR
    return out


def _mostly_quoted(t: PreparedText, i: int) -> bool:
    """Quotes of public statements are shared by independent reports of an event."""
    a, b = t.sent_tokens[i]
    return b > a and 2 * t.quoted[a:b].count(True) > b - a


def _monotone_chain(
    cands: list[list[tuple[int, float]]], page: PreparedText, story: PreparedText
) -> list[tuple[int, int, float]]:
    """Order-preserving pairs (i and j non-decreasing, each page sentence once) with the
    greatest total gain, gain = similarity x content words of the page sentence.

    Weighted longest-increasing-subsequence with a Fenwick tree of prefix maxima over
    story sentences: O(K log n) for K candidate pairs."""
    n = len(story.sent_stems)
    if n == 0:
        return []
    tree = [0.0] * (n + 1)
    arg = [-1] * (n + 1)
    nodes: list[tuple[int, int, float, int]] = []  # (i, j, sim, prev node)
    best_total, best_node = 0.0, -1

    def query(j: int) -> tuple[float, int]:
        j += 1
        v, a = 0.0, -1
        while j > 0:
            if tree[j] > v:
                v, a = tree[j], arg[j]
            j -= j & -j
        return v, a

    def update(j: int, v: float, a: int) -> None:
        j += 1
        while j <= n:
            if v > tree[j]:
                tree[j], arg[j] = v, a
            j += j & -j

    for i, row in enumerate(cands):
        if not row:
            continue
        size = max(1, page.sent_content[i])
        pending = []
        for j, sim in row:
            prev_v, prev_a = query(j)
            v = prev_v + sim * size
            nodes.append((i, j, sim, prev_a))
            pending.append((j, v, len(nodes) - 1))
        for j, v, node in pending:
            update(j, v, node)
            if v > best_total:
                best_total, best_node = v, node
    chain = []
    k = best_node
    while k >= 0:
        i, j, sim, prev = nodes[k]
        chain.append((i, j, sim))
        k = prev
    chain.reverse()
    return chain


def _passages(
    pairs: list[tuple[int, int, float]], page: PreparedText, story: PreparedText
) -> list[Passage]:
    """Merge runs of adjacent aligned sentences into passages a person can check."""
    out: list[Passage] = []
    run: list[tuple[int, int, float]] = []

    def flush() -> None:
        if not run:
            return
        ps, pe = page.sent_spans[run[0][0]][0], page.sent_spans[run[-1][0]][1]
        js = [j for _, j, _ in run]
        ss, se = story.sent_spans[min(js)][0], story.sent_spans[max(js)][1]
        sim = sum(s for _, _, s in run) / len(run)
        out.append(
            Passage(
                story_start=ss,
                story_end=se,
                page_start=ps,
                page_end=pe,
                similarity=round(sim, 3),
                story_text=story.text[ss:se],
                page_text=page.text[ps:pe],
            )
        )
        run.clear()

    for p in pairs:
        if run and (p[0] != run[-1][0] + 1 or p[1] - run[-1][1] not in (0, 1, 2)):
            flush()
        run.append(p)
    flush()
    return out


# --- verbatim wording ---------------------------------------------------------------


@dataclass(slots=True)
class Verbatim:
    page_share: float  # share of page tokens inside shared word n-grams
    story_share: float  # share of story tokens inside shared word n-grams
    longest_run: int  # longest run of page tokens covered by shared n-grams (unquoted)
    covered_tokens: float  # page tokens covered (quoted ones at QUOTED_WEIGHT)


def verbatim(
    story: PreparedText, page: PreparedText, *, background: Background | None = None
) -> Verbatim:
    """Word n-gram containment in both directions, discounting quotes and boilerplate."""
    n = T.VERBATIM_N
    idx = story.ngram_positions()
    ptoks = page.tokens
    hits = [(i, pos) for i, gram in enumerate(_windows(ptoks, n)) if (pos := idx.get(gram)) is not None]
    pcov = [0.0] * len(ptoks)
    scov = [False] * len(story.tokens)
    longest = 0
    if hits:
        bg = background if background is not None and len(background) > 0 else None
        # boilerplate if every background sub-gram of the window is common
        common = _common_grams(page, story, bg) if bg is not None else None
        sub = n - bg.ngram + 1 if bg is not None else 0
        span = [True] * n
        runs: list[list[int]] = []  # page tokens covered, as merged [start, end) runs
        for i, pos in hits:
            if common is not None and all(common[i : i + sub]):
                continue
            if runs and i <= runs[-1][1]:
                runs[-1][1] = i + n
            else:
                runs.append([i, i + n])
            for p in pos:
                scov[p : p + n] = span
        quoted = page.quoted
        for a, b in runs:
            pcov[a:b] = [T.QUOTED_WEIGHT if q else 1.0 for q in quoted[a:b]]
            run = 0
            for c in pcov[a:b]:
                if c >= 1.0:
                    run += 1
                    if run > longest:
                        longest = run
                else:
                    run = 0
    covered = sum(pcov)
    return Verbatim(
        page_share=covered / max(1, len(ptoks)),
        story_share=sum(scov) / max(1, len(story.tokens)),
        longest_run=longest,
        covered_tokens=covered,
    )
