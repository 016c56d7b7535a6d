"""Matching: is a page derived from a registered story?

Two stages: `StoryIndex` proposes candidate stories cheaply (high recall), `compare`
decides for each (story, page) pair; `Matcher` runs both. Names are imported lazily
so that importing one piece (e.g. the sketch functions in a migration) does not load
the others.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__all__ = ["Matcher", "Passage", "StoryIndex", "Verdict"]

_WHERE = {
    "Verdict": "crawler.matching.verdict",
    "Passage": "crawler.matching.verdict",
    "StoryIndex": "crawler.matching.index",
    "Matcher": "crawler.matching.matcher",
}

if TYPE_CHECKING:
    from crawler.matching.index import StoryIndex
    from crawler.matching.matcher import Matcher
    from crawler.matching.verdict import Passage, Verdict


def __getattr__(name: str) -> Any:
    try:
        module = _WHERE[name]
    except KeyError:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}") from None
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
