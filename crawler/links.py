"""Links out of an HTML page, cheaply.

Scrapy's LinkExtractor builds a tree and costs ~25 ms on a link-heavy page; a crawl
only needs the href values, which a regular expression over the raw text finds in a
fraction of that. Resolution and canonicalisation stay with the caller.
"""

from __future__ import annotations

import html
import re

_HREF = re.compile(r"""<a\s[^>]*?href\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s>"']+))""", re.I | re.S)


def hrefs(page: str) -> list[str]:
    """Every <a href> value in document order, entities decoded, duplicates kept out."""
    seen: dict[str, None] = {}
    for m in _HREF.finditer(page):
        value = html.unescape(m.group(1) or m.group(2) or m.group(3) or "").strip()
        if value and not value.startswith(("#", "javascript:", "mailto:", "tel:", "data:")):
            seen.setdefault(value, None)
    return list(seen)
