"""Page -> verdicts: the index proposes stories, `compare` decides.

Why a class: the stories' prepared (tokenised, sentence-split) texts are reused for
every page, and the page is prepared once however many stories it is checked against.
Stories are prepared lazily and kept in a bounded LRU, so a 100k-story index does not
hold 100k prepared texts in memory.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from crawler.matching.compare import compare, prepare
from crawler.matching.index import StoryIndex
from crawler.matching.verdict import Verdict

__all__ = ["MATCH_BATCH", "Matcher"]

# Pages to give `match_many` at once: the index looks a batch up at about half the
# cost per page; larger batches gain little more.
MATCH_BATCH = 64

log = logging.getLogger(__name__)
log.addHandler(logging.NullHandler())


class Matcher:
    """Holds a StoryIndex and the stories' texts; `match()` returns verdicts.

    `stories` (mapping or (id, text) pairs) are added to the index unless already
    there. `story_loader(id) -> text | None` fetches the text of a story another worker
    indexed (shared Redis index) that this Matcher has not seen."""

    PREPARED_CACHE = 4096  # prepared story texts kept (LRU)

    def __init__(
        self,
        index: StoryIndex | None = None,
        stories: Mapping[int, str] | Iterable[tuple[int, str]] = (),
        *,
        limit: int = 20,
        background: Any = None,
        story_loader: Callable[[int], str | None] | None = None,
    ) -> None:
        if limit < 1:
            raise ValueError(f"limit must be >= 1, got {limit}")
        self.index = index if index is not None else StoryIndex()
        self.limit = limit
        self.background = background
        self._loader = story_loader
        self._texts: dict[int, str] = {}
        self._prepared: OrderedDict[int, Any] = OrderedDict()
        items = stories.items() if isinstance(stories, Mapping) else stories
        for story_id, text, *sketch in items:
            self.add_story(story_id, text, sketch=sketch[0] if sketch else None, index=story_id not in self.index)
        self.index.backend.flush()

    @classmethod
    def build(
        cls,
        stories: Mapping[int, str] | Iterable[tuple[int, str]] | Iterable[tuple[int, str, bytes | None]],
        *,
        config: Mapping[str, Any] | None = None,
        **kwargs: Any,
    ) -> Matcher:
        """A Matcher over a fresh StoryIndex (backend from `config`, memory by default).
        Items may carry the stored fingerprint as a third element."""
        return cls(StoryIndex(config), stories, **kwargs)

    # -- stories ----------------------------------------------------------------

    def add_story(self, story_id: int, text: str, *, sketch: bytes | None = None, index: bool = True) -> None:
        if not isinstance(text, str):
            raise TypeError(f"story text must be str, got {type(text).__name__}")
        if index:
            self.index.add(story_id, text, sketch)
        self._texts[int(story_id)] = text
        self._prepared.pop(int(story_id), None)

    def remove_story(self, story_id: int) -> None:
        """Forget a story (KeyError if neither indexed nor known)."""
        known = self._texts.pop(story_id, None) is not None
        self._prepared.pop(story_id, None)
        if story_id in self.index:
            self.index.remove(story_id)
        elif not known:
            raise KeyError(story_id)

    def __contains__(self, story_id: object) -> bool:
        return story_id in self._texts

    def prepared(self, story_id: int) -> Any:
        """The story's prepared text (KeyError if unknown)."""
        p = self._prepared.get(story_id)
        if p is not None:
            self._prepared.move_to_end(story_id)
            return p
        text = self._texts.get(story_id)
        if text is None and self._loader is not None:
            text = self._loader(story_id)
            if text is not None:
                self._texts[story_id] = text
        if text is None:
            raise KeyError(f"story {story_id} has no text in this Matcher (add_story or story_loader)")
        p = prepare(text)
        self._prepared[story_id] = p
        if len(self._prepared) > self.PREPARED_CACHE:
            self._prepared.popitem(last=False)
        return p

    # -- pages ------------------------------------------------------------------

    def match(
        self,
        page_text: str,
        *,
        only: Iterable[int] | None = None,
        include: Iterable[int] = (),
    ) -> list[tuple[int, Verdict]]:
        """Verdicts for the stories `page_text` may derive from.

        The index's candidates (restricted to `only` when given) are verified, plus
        every story in `include` (always, even when the index does not propose it:
        the crawler passes the story being crawled). Order: `include` first, then
        candidates best first; each story at most once."""
        return self.match_many([page_text], only=only, include=include)[0]

    def match_many(
        self,
        page_texts: Sequence[str],
        *,
        only: Iterable[int] | None = None,
        include: Iterable[int] = (),
    ) -> list[list[tuple[int, Verdict]]]:
        """`match` of each page. The index looks the pages up together, which costs
        about half as much per page as one at a time."""
        include = [int(i) for i in include]
        allowed = None if only is None else {int(i) for i in only}
        wanted = max(self.limit, 5 * self.limit if allowed is not None else 0)
        found = self.index.scored_candidates_many(page_texts, limit=wanted)
        return [self._verify(text, [c.story_id for c in cands], include, allowed) for text, cands in zip(page_texts, found)]

    def _verify(
        self, page_text: str, cands: list[int], include: list[int], allowed: set[int] | None
    ) -> list[tuple[int, Verdict]]:
        if allowed is not None:
            cands = [c for c in cands if c in allowed]
        cands = cands[: self.limit]
        order: list[int] = []
        seen: set[int] = set()
        for sid in include + cands:
            if sid not in seen:
                seen.add(sid)
                order.append(sid)
        if not order:
            return []
        page = prepare(page_text)
        out: list[tuple[int, Verdict]] = []
        for sid in order:
            try:
                story = self.prepared(sid)
            except KeyError:
                if sid in include:
                    raise
                log.warning("story %s is indexed but its text is unknown here; not verified", sid)
                continue
            out.append((sid, compare(story, page, background=self.background)))
        return out
