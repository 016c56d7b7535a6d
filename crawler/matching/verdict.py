"""What the matcher says about one (story, page) pair, and the evidence behind it."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

DERIVED_KINDS = ("copy", "excerpt", "rewrite", "spun", "translation")
KINDS = DERIVED_KINDS + ("not_derived",)


@dataclass(frozen=True, slots=True)
class Passage:
    """One aligned passage: a span of the story and the span of the page it reappears in.

    Offsets are character offsets into the story text and the page text given to the
    matcher, so a report can highlight them without re-running the alignment.
    """

    story_start: int
    story_end: int
    page_start: int
    page_end: int
    similarity: float
    story_text: str
    page_text: str


@dataclass(frozen=True, slots=True)
class Verdict:
    kind: str
    confidence: float
    story_coverage: float  # share of the story reused in the page
    page_coverage: float  # share of the page that comes from the story
    passages: tuple[Passage, ...] = ()
    scores: dict[str, float] = field(default_factory=dict)

    @property
    def derived(self) -> bool:
        return self.kind in DERIVED_KINDS

    def evidence(self) -> list[dict[str, Any]]:
        """The passages as JSON-ready dicts, as stored in `matches.evidence`."""
        return [asdict(p) for p in self.passages]
