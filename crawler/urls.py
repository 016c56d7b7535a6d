"""URL helpers shared by the spider, the pipelines and the reports."""

from __future__ import annotations

import html
import re
from urllib.parse import parse_qsl, urlsplit

from w3lib.url import canonicalize_url, url_query_cleaner

# Query parameters that only track where a click came from: one article, one page.
TRACKING_PARAMS = (
    "utm_source", "utm_medium", "utm_campaign", "utm_term", "utm_content", "utm_id",
    "utm_name", "utm_reader", "utm_brand", "utm_social", "utm_social-type",
    "fbclid", "gclid", "dclid", "msclkid", "yclid", "mc_cid", "mc_eid", "ref", "ocid", "cmpid",
    "ncid", "igshid", "_hsenc", "_hsmi", "mkt_tok", "at_medium", "at_campaign", "smid",
)

_DIGITS = re.compile(r"\d+")
_HEAD_END = re.compile(r"</head\s*>|<body[\s>]", re.I)
_LINK_TAG = re.compile(r"<link\b[^>]*>", re.I | re.S)
_ATTR = re.compile(r"""([a-zA-Z_:][-a-zA-Z0-9_:.]*)\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s>"']+))""", re.S)
_AMP_HTML = re.compile(r"<html\b[^>]*?(?:\s|^)(?:amp|⚡)(?:[\s=>/]|$)", re.I)


def site_of(url: str) -> str:
    """The site a page belongs to: its host (with the port when one is given)."""
    parts = urlsplit(url)
    host = (parts.hostname or "").lower().removeprefix("www.")
    return f"{host}:{parts.port}" if parts.port else host


def canonical(url: str) -> str:
    """One spelling per article: tracking parameters stripped, query sorted, fragment gone."""
    cleaned = url_query_cleaner(url, TRACKING_PARAMS, remove=True, keep_fragments=False)
    # Any other utm_* parameter (campaign tools invent new ones) tracks too.
    utm = tuple({k for k, _ in parse_qsl(urlsplit(cleaned).query, keep_blank_values=True) if k.lower().startswith("utm_")})
    if utm:
        cleaned = url_query_cleaner(cleaned, utm, remove=True, keep_fragments=False)
    return canonicalize_url(cleaned, keep_fragments=False)


def url_pattern(url: str) -> str:
    """The shape of a URL with every run of digits replaced: /calendar?month=7 and
    /calendar?month=8 share one, so a crawl trap (a link to "next month" forever)
    shows up as one pattern with ever more pages."""
    parts = urlsplit(url)
    query = "&".join(sorted(f"{k}={_DIGITS.sub('0', v)}" for k, v in parse_qsl(parts.query, keep_blank_values=True)))
    return f"{site_of(url)}{_DIGITS.sub('0', parts.path or '/')}?{query}"


def _head(page: str) -> str:
    """The document head (where <link rel=canonical> belongs), bounded in size."""
    start = page[:200_000]
    end = _HEAD_END.search(start)
    return start if end is None else start[: end.start()]


def _attrs(tag: str) -> dict[str, str]:
    return {m.group(1).lower(): html.unescape(m.group(2) or m.group(3) or m.group(4) or "") for m in _ATTR.finditer(tag)}


def canonical_link(page: str) -> str | None:
    """The href of the page's <link rel="canonical">, as written (may be relative)."""
    for tag in _LINK_TAG.findall(_head(page)):
        attrs = _attrs(tag)
        if "canonical" in attrs.get("rel", "").lower().split() and attrs.get("href", "").strip():
            return attrs["href"].strip()
    return None


def is_amp(page: str) -> bool:
    """An AMP rendering (<html amp> or <html ⚡>): its canonical page is the article."""
    return bool(_AMP_HTML.search(page[:5000]))
