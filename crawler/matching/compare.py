"""The verifier: is this page derived from this story, and how?

`compare()` is the one pure function the crawler, the evaluation and the bench call.
It aligns the page's sentences to the story's (crawler.matching.align), measures the
wording they share, and turns those measurements into a kind and a confidence with
the thresholds in crawler.matching.thresholds. The evidence is what a person needs to
check the verdict in seconds: how much of the story was reused, how much of the page
comes from it, and the aligned passages with their offsets.
"""

from __future__ import annotations

from crawler.matching import thresholds as T
from crawler.matching.align import Alignment, PreparedText, Verbatim, align, prepare, verbatim
from crawler.matching.background import Background
from crawler.matching.verdict import Verdict

__all__ = ["PreparedText", "compare", "decide", "prepare"]


def compare(
    story: str | PreparedText,
    page: str | PreparedText,
    *,
    background: Background | None = None,
) -> Verdict:
    """Judge one (story, page) pair.

    `story` and `page` are texts or `prepare()`d texts (prepare a story once when
    comparing it with many pages). `background`, when given, holds document
    frequencies over a collection of pages (the page itself may be in it): wording and
    words many pages share count less."""
    s = story if isinstance(story, PreparedText) else prepare(story)
    p = page if isinstance(page, PreparedText) else prepare(page)
    if not s.tokens or not p.tokens:
        return Verdict("not_derived", 1.0, 0.0, 0.0, (), {"empty": 1.0})
    al = align(s, p, background=background)
    vb = verbatim(s, p, background=background)
    scores = _scores(al, vb, s, p)
    kind, confidence = decide(scores)
    derived = kind != "not_derived"
    return Verdict(
        kind=kind,
        confidence=round(confidence, 3),
        story_coverage=round(max(al.story_sent_cov if derived else al.story_cov, vb.story_share), 3),
        page_coverage=round(max(al.page_sent_cov if derived else al.page_cov, vb.page_share), 3),
        passages=tuple(al.passages) if derived else tuple(al.passages[: T.MAX_PASSAGES_NOT_DERIVED]),
        scores=scores,
    )


def _scores(al: Alignment, vb: Verbatim, s: PreparedText, p: PreparedText) -> dict[str, float]:
    n_pairs = len(al.pairs)
    strong = sum(1 for i, _j, _sim in al.pairs if len(p.sent_stems[i]) >= T.MIN_SENTENCE_CONTENT)
    return {
        "page_cov": round(al.page_cov, 4),
        "story_cov": round(al.story_cov, 4),
        "page_cov_w": round(al.page_cov_window, 4),
        "story_cov_w": round(al.story_cov_window, 4),
        "rare_share": round(al.rare_share, 4),
        "rare_count": float(al.rare_count),
        "page_sent_cov": round(al.page_sent_cov, 4),
        "story_sent_cov": round(al.story_sent_cov, 4),
        "aligned": float(n_pairs),
        "aligned_strong": float(strong),
        "order": round(strong / al.best_pairs, 4) if al.best_pairs else 0.0,
        "mean_sim": round(sum(x[2] for x in al.pairs) / n_pairs, 4) if n_pairs else 0.0,
        "fuzzy_share": round(al.fuzzy_tokens / al.matched_tokens, 4) if al.matched_tokens else 0.0,
        "rare_matched": round(al.rare_matched, 3),
        "verbatim_page": round(vb.page_share, 4),
        "verbatim_story": round(vb.story_share, 4),
        "verbatim_run": float(vb.longest_run),
        "verbatim_tokens": round(vb.covered_tokens, 1),
        "page_sentences": float(len(p.sent_spans)),
        "story_sentences": float(len(s.sent_spans)),
    }


def decide(sc: dict[str, float]) -> tuple[str, float]:
    """Kind and confidence from the scores of `compare`; every number is in thresholds.

    Order of the tests matters: shared verbatim wording first (copy, excerpt), then
    ordered aligned content (rewrite, spun). Independent reports of an event share
    names, figures and a public quote, which is why a single aligned sentence or a
    quote never suffices and the coverage floors are set above what same-topic
    independent texts reach."""
    vpage, vstory = sc["verbatim_page"], sc["verbatim_story"]
    cov = max(sc["page_cov"], sc["story_cov"])
    strong = sc["aligned_strong"]
    if strong >= T.MIN_ALIGNED_COPY and (vpage >= T.COPY_VERBATIM_SHARE or vstory >= T.COPY_VERBATIM_SHARE):
        return "copy", _conf(max(vpage, vstory), T.COPY_VERBATIM_SHARE)
    aligned = strong >= T.MIN_ALIGNED and (
        cov >= T.DERIVED_MIN_COVERAGE
        or (sc["rare_matched"] >= T.DETAILS_MIN_WEIGHT and cov >= T.DETAILS_MIN_COVERAGE)
    )
    if aligned:
        one_to_one = strong / max(sc["page_sentences"], sc["story_sentences"], 1.0)
        if one_to_one >= T.SPUN_MIN_ONE_TO_ONE and sc["fuzzy_share"] >= T.SPUN_MIN_FUZZY_SHARE:
            return "spun", _conf(cov, T.DERIVED_MIN_COVERAGE)
        if sc["verbatim_run"] >= T.EXCERPT_MIN_RUN and sc["verbatim_tokens"] >= T.EXCERPT_MIN_TOKENS and (
            max(vpage, vstory) >= T.EXCERPT_MIN_SHARE
        ):
            return "excerpt", _conf(max(vpage, vstory), T.EXCERPT_MIN_SHARE)
        return "rewrite", _conf(cov, T.DERIVED_MIN_COVERAGE)
    if (
        strong >= T.MIN_ALIGNED_EXCERPT
        and sc["verbatim_run"] >= T.EXCERPT_MIN_RUN
        and sc["verbatim_tokens"] >= T.EXCERPT_MIN_TOKENS
    ):
        return "excerpt", _conf(sc["verbatim_tokens"] / T.EXCERPT_MIN_TOKENS, 1.0)
    return "not_derived", 1.0 - min(1.0, cov / T.DERIVED_MIN_COVERAGE) / 2


def _conf(value: float, threshold: float) -> float:
    """0.5 at the threshold, approaching 1 at twice the threshold."""
    return max(0.5, min(1.0, 0.5 + 0.5 * (value - threshold) / max(threshold, T.EPSILON)))
