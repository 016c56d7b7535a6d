"""Source queries the configuration commands need beyond `storage.repositories.Sources`.

Like the other repositories: wraps a Session it is given and never commits.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, joinedload

from storage.models import Source
from storage.repositories import Sources

# A story's search source is a switch with settings, not an address: one row per
# story under this fixed URL, so re-adding it updates the row instead of adding one.
SEARCH_SOURCE_URL = "search:phrases"


class SourceAdmin:
    def __init__(self, session: Session) -> None:
        self.session = session

    def list(self, story_id: int | None = None) -> list[Source]:
        stmt = select(Source).options(joinedload(Source.story))
        if story_id is not None:
            stmt = stmt.where(Source.story_id == story_id)
        return list(self.session.scalars(stmt.order_by(Source.story_id, Source.id)))

    def get(self, source_id: int) -> Source | None:
        return self.session.get(Source, source_id)

    def remove(self, source_id: int) -> bool:
        source = self.session.get(Source, source_id)
        if source is None:
            return False
        self.session.delete(source)
        self.session.flush()
        return True

    def add_search(self, story_id: int, *, options: Mapping[str, Any], max_pages: int = 200) -> Source:
        """Switch search discovery on for a story (or change its settings)."""
        source = Sources(self.session).add(story_id, "search", SEARCH_SOURCE_URL, max_depth=0, max_pages=max_pages)
        if source.options != dict(options):
            source.options = dict(options)
            self.session.flush()
        return source

    def prune(self, story_id: int, keep: Collection[tuple[str, str]]) -> list[Source]:
        """Remove the story's sources whose (kind, url) is not in `keep`; the removed rows."""
        wanted = set(keep)
        removed = [s for s in self.list(story_id) if (s.kind, s.url) not in wanted]
        for source in removed:
            self.session.delete(source)
        self.session.flush()
        return removed


__all__ = ["SEARCH_SOURCE_URL", "SourceAdmin"]
