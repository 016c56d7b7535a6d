"""Search-engine discovery: find candidate copies by querying a story's own phrases.

Copyscape's method: a copy keeps some of the story's wording, so an exact-phrase
query for a distinctive run of it finds the pages that republished it, wherever
they are, without crawling their sites first. `phrases` picks the runs (pure),
`providers` asks a web-search API, `discovery` puts both together for the crawl.
"""

from crawler.search.discovery import discover, search_plan_entries
from crawler.search.phrases import distinctive_phrases
from crawler.search.providers import (
    SearchAuthError,
    SearchError,
    SearchProvider,
    SearchResult,
    provider_from_env,
)

__all__ = [
    "SearchAuthError",
    "SearchError",
    "SearchProvider",
    "SearchResult",
    "discover",
    "distinctive_phrases",
    "provider_from_env",
    "search_plan_entries",
]
