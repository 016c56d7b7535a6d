"""Discovery: a story's distinctive phrases, searched as exact phrases, give candidate URLs.

The crawl worker calls this before Scrapy starts (a search API is a plain HTTP
call; it needs no reactor) and hands the URLs to the spider as `search` entries:
each is fetched once and matched, never followed further, so a search result
costs one request however large its site is.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from crawler.search.phrases import distinctive_phrases
from crawler.search.providers import SearchAuthError, SearchError, SearchProvider, provider_from_env
from crawler.urls import canonical, site_of

logger = logging.getLogger("copyhound.search")

DEFAULT_MAX_RESULTS = 50
DEFAULT_MAX_PHRASES = 5
MAX_RESULTS_LIMIT = 1000


def discover(
    story_text: str,
    *,
    provider: SearchProvider,
    own_url: str | None = None,
    max_results: int = DEFAULT_MAX_RESULTS,
    max_phrases: int = DEFAULT_MAX_PHRASES,
) -> list[str]:
    """Canonical URLs of pages the provider finds for the story's phrases, best first.

    A URL found by more phrases ranks higher (it shares more of the story's wording);
    ties keep the order the provider gave. The story's own site is dropped. One
    failing query is skipped; a rejected key, or every query failing, raises
    `SearchError`, because then the result would silently be empty.
    """
    if max_results < 1:
        raise ValueError(f"max_results must be at least 1, got {max_results}")
    phrases = distinctive_phrases(story_text, max_phrases=max_phrases)
    own_site = site_of(own_url) if own_url else None
    hits: dict[str, int] = {}
    errors: list[SearchError] = []
    per_query = min(max_results, 50)
    for phrase in phrases:
        try:
            results = provider.search(f'"{phrase}"', count=per_query)
        except SearchAuthError:
            raise
        except SearchError as err:
            logger.warning("search for one phrase failed: %s", err)
            errors.append(err)
            continue
        seen_here: set[str] = set()
        for result in results:
            if not result.url.startswith(("http://", "https://")):
                continue
            url = canonical(result.url)
            if (own_site and site_of(url) == own_site) or url in seen_here:
                continue
            seen_here.add(url)
            hits[url] = hits.get(url, 0) + 1
    if phrases and len(errors) == len(phrases):
        raise errors[0]
    ranked = sorted(hits, key=lambda u: -hits[u])  # stable: provider order within a tie
    logger.info("search discovery: %d phrases, %d candidate URLs", len(phrases), len(ranked))
    return ranked[:max_results]


def search_plan_entries(
    story_text: str,
    *,
    own_url: str | None,
    options: Mapping[str, Any] | None,
    provider: SearchProvider | None = None,
    env: Mapping[str, str] | None = None,
) -> list[dict[str, Any]]:
    """Crawl-plan entries for a story's `search` source: one per discovered URL.

    `options` is the source's `options` column ({"max_results": 50, "max_phrases": 5});
    the provider comes from COPYHOUND_SEARCH_* unless given.
    """
    opts = dict(options or {})
    provider = provider or provider_from_env(env)
    urls = discover(
        story_text,
        provider=provider,
        own_url=own_url,
        max_results=int(opts.get("max_results", DEFAULT_MAX_RESULTS)),
        max_phrases=int(opts.get("max_phrases", DEFAULT_MAX_PHRASES)),
    )
    return [{"kind": "search", "url": url, "max_depth": 0} for url in urls]


__all__ = ["DEFAULT_MAX_PHRASES", "DEFAULT_MAX_RESULTS", "MAX_RESULTS_LIMIT", "discover", "search_plan_entries"]
