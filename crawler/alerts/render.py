"""Alert messages as text: subject lines, the overlap highlighting, Jinja2 templates.

Scraped titles and passages are hostile: templates autoescape every value, and the
only markup in the HTML part comes from the templates themselves. Subjects are
folded to one line so a title cannot inject mail headers.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass
from functools import cache
from typing import Any

import jinja2

from crawler.alerts import policy

_WORD = re.compile(r"\w+", re.UNICODE)
_WS = re.compile(r"\s+")
SUBJECT_MAX = 200

EVENT_LABELS = {
    policy.COPY_NEW: "New {kind}",
    policy.COPY_CHANGED: "Changed {kind}",
    policy.COPY_REMOVED: "Removed {kind}",
    policy.COPY_REAPPEARED: "Reappeared {kind}",
    policy.CREDIT_MISSING: "Credit missing on licensed {kind}",
}
KIND_NAMES = {
    "copy": "copy",
    "excerpt": "excerpt",
    "rewrite": "rewrite",
    "spun": "spun copy",
    "translation": "translation",
}


@dataclass(frozen=True, slots=True)
class Segment:
    text: str
    shared: bool


def one_line(text: str | None, limit: int = SUBJECT_MAX) -> str:
    line = _WS.sub(" ", text or "").strip()
    return line if len(line) <= limit else line[: limit - 1] + "…"


def highlight(story_text: str, page_text: str) -> tuple[list[Segment], list[Segment]]:
    """Split both passages into runs of shared and own words (case-insensitive).

    Word-level matching blocks of difflib: the shared runs are what the page took
    from the story, in order, which is what a reader wants to see side by side.
    """
    a_words = list(_WORD.finditer(story_text))
    b_words = list(_WORD.finditer(page_text))
    matcher = difflib.SequenceMatcher(
        None, [m.group().casefold() for m in a_words], [m.group().casefold() for m in b_words], autojunk=False
    )
    a_shared, b_shared = set(), set()
    for block in matcher.get_matching_blocks():
        if block.size >= 2 or (block.size == 1 and len(a_words[block.a].group()) > 3):
            a_shared.update(range(block.a, block.a + block.size))
            b_shared.update(range(block.b, block.b + block.size))
    return _segments(story_text, a_words, a_shared), _segments(page_text, b_words, b_shared)


def _segments(text: str, words: list[re.Match[str]], shared: set[int]) -> list[Segment]:
    segments: list[Segment] = []
    pos = 0
    for index, word in enumerate(words):
        is_shared = index in shared
        # The gap before a word joins the run when both neighbours are shared.
        gap = text[pos : word.start()]
        if gap:
            joined = is_shared and segments and segments[-1].shared
            _append(segments, gap, bool(joined))
        _append(segments, word.group(), is_shared)
        pos = word.end()
    if pos < len(text):
        _append(segments, text[pos:], False)
    return segments


def _append(segments: list[Segment], text: str, shared: bool) -> None:
    if segments and segments[-1].shared == shared:
        segments[-1] = Segment(segments[-1].text + text, shared)
    else:
        segments.append(Segment(text, shared))


def subject(payload: dict[str, Any]) -> str:
    """"New rewrite of “Title” on example.com": event, kind, story title and site."""
    kind = KIND_NAMES.get(payload["match"]["kind"], payload["match"]["kind"])
    label = EVENT_LABELS.get(payload["type"], payload["type"]).format(kind=kind)
    site = payload["page"].get("site") or policy.host_of(payload["page"]["url"])
    return one_line(f"{label} of “{one_line(payload['story']['title'], 120)}” on {site}")


def digest_subject(payloads: list[dict[str, Any]], period: str) -> str:
    titles = sorted({one_line(p["story"]["title"], 60) for p in payloads})
    count = len(payloads)
    noun = "alert" if count == 1 else "alerts"
    return one_line(f"copyhound {period} digest: {count} {noun} on “{'”, “'.join(titles)}”")


@cache
def _environment() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.PackageLoader("crawler.alerts", "templates"),
        # Escaping on for HTML (and anything unknown); off only for the text part,
        # where "&amp;" would be a visible mistake and no markup is interpreted.
        autoescape=jinja2.select_autoescape(enabled_extensions=("html",), disabled_extensions=("txt",), default=True),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )


def _context(payload: dict[str, Any]) -> dict[str, Any]:
    passages = []
    for p in payload.get("evidence", []):
        story_segments, page_segments = highlight(p.get("story_text", ""), p.get("page_text", ""))
        passages.append({**p, "story_segments": story_segments, "page_segments": page_segments})
    kind = payload["match"]["kind"]
    return {
        "p": payload,
        "subject": subject(payload),
        "kind_name": KIND_NAMES.get(kind, kind),
        "share": f"{payload['match']['story_coverage']:.0%}",
        "page_share": f"{payload['match']['page_coverage']:.0%}",
        "confidence": f"{payload['match']['confidence']:.2f}",
        "first_seen": _when(payload["match"].get("first_seen")),
        "passages": passages,
    }


def _when(iso: str | None) -> str:
    return iso[:16].replace("T", " ") + " UTC" if iso else "unknown"


def render_alert(payload: dict[str, Any]) -> tuple[str, str, str]:
    """(subject, text, html) of one alert."""
    ctx = _context(payload)
    env = _environment()
    text = env.get_template("alert.txt").render(**ctx)
    html = env.get_template("alert.html").render(**ctx)
    return ctx["subject"], text, html


def render_digest(payloads: list[dict[str, Any]], *, period: str) -> tuple[str, str, str]:
    items = [_context(p) for p in payloads]
    env = _environment()
    ctx = {"items": items, "period": period, "subject": digest_subject(payloads, period)}
    return ctx["subject"], env.get_template("digest.txt").render(**ctx), env.get_template("digest.html").render(**ctx)
