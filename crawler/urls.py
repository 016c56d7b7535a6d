"""URL helpers shared by the spider, the pipelines and the reports."""

from __future__ import annotations

from urllib.parse import urlsplit

from w3lib.url import canonicalize_url, url_query_cleaner

# Query parameters that only track where a click came from: one article, one page.
TRACKING_PARAMS = (
    "utm_source", "utm_medium", "utm_campaign", "utm_term", "utm_content", "utm_id",
    "fbclid", "gclid", "mc_cid", "mc_eid", "ref", "ocid", "cmpid", "ncid", "igshid",
)


def site_of(url: str) -> str:
    """The site a page belongs to: its host (with the port when one is given)."""
    parts = urlsplit(url)
    host = (parts.hostname or "").lower().removeprefix("www.")
    return f"{host}:{parts.port}" if parts.port else host


def canonical(url: str) -> str:
    """One spelling per article: tracking parameters stripped, query sorted, fragment gone."""
    cleaned = url_query_cleaner(url, TRACKING_PARAMS, remove=True, keep_fragments=False)
    return canonicalize_url(cleaned, keep_fragments=False)
