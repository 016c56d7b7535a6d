"""Entries of RSS/Atom feeds and XML sitemaps: pure functions, no Scrapy.

Sitemaps can list 50,000 URLs (and hostile ones many more), so they are parsed as a
stream: each <url> element is read, yielded and freed before the next, and the caller
stops reading when its page budget is spent. Feeds are small and parsed whole, so a
feed that is not well-formed XML yields nothing at all rather than half its items.
Entities are never expanded and nothing is fetched from the network by the parser
(no XXE, no billion laughs).
"""

from __future__ import annotations

import io
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

from lxml import etree

# Elements that are one entry each: RSS <item>, Atom <entry>, sitemap <url>, index <sitemap>.
_ENTRY_TAGS = {"item", "entry", "url", "sitemap"}
_DATE_TAGS = {"pubdate", "date", "published", "updated", "issued", "modified", "lastmod", "publication_date"}


class DocumentError(ValueError):
    """The document is not a readable feed or sitemap (the message says why)."""


@dataclass(frozen=True, slots=True)
class Entry:
    url: str
    date: datetime | None  # the latest of its publication/modification dates, UTC
    kind: str = "page"  # "page", or "sitemap" for the entries of a sitemap index


def parse_date(value: str | None) -> datetime | None:
    """W3C/ISO 8601 (sitemaps, Atom) or RFC 822 (RSS) dates; naive ones are taken as UTC."""
    value = (value or "").strip()
    if not value:
        return None
    when = None
    try:
        when = datetime.fromisoformat(value.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        try:
            when = parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            return None
    if when is None:
        return None
    return when.replace(tzinfo=UTC) if when.tzinfo is None else when.astimezone(UTC)


def gunzip_bounded(body: bytes, max_size: int) -> bytes:
    """Decompress a gzipped sitemap, refusing to inflate past `max_size` (gzip bombs)."""
    inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
    try:
        data = inflater.decompress(body, max_size + 1)
    except zlib.error as exc:
        raise DocumentError(f"corrupt gzip data: {exc}") from exc
    if len(data) > max_size or inflater.unconsumed_tail:
        raise DocumentError(f"inflates to more than {max_size} bytes (DOWNLOAD_MAXSIZE)")
    return data


def _local(tag: object) -> str:
    if not isinstance(tag, str):  # comments and processing instructions
        return ""
    return tag.rsplit("}", 1)[-1].lower()


def _entry(element: etree._Element, root: str) -> Entry | None:
    found: dict[str, str] = {}
    dates: list[datetime] = []
    for child in element.iter():
        if child is element:
            continue
        name = _local(child.tag)
        text = (child.text or "").strip()
        if name == "loc" and text:
            found.setdefault("loc", text)
        elif name == "link":
            href = (child.get("href") or "").strip()
            if href and (child.get("rel") or "alternate").lower() == "alternate":
                found.setdefault("link", href)  # Atom
            elif not href and text:
                found.setdefault("link", text)  # RSS <link>text</link>
        elif name == "guid" and text.startswith(("http://", "https://")) and child.get("isPermaLink", "true").lower() == "true":
            found.setdefault("guid", text)
        elif name in _DATE_TAGS:
            when = parse_date(text)
            if when is not None:
                dates.append(when)
    url = found.get("loc") or found.get("link") or found.get("guid")
    if not url:
        return None
    return Entry(url, max(dates) if dates else None, "sitemap" if root == "sitemapindex" else "page")


def iter_entries(body: bytes) -> Iterator[Entry]:
    """Entries of a feed or sitemap, streamed. Raises DocumentError (possibly after some
    entries) when the document is not well-formed XML or not a feed or sitemap."""
    if not body.strip():
        raise DocumentError("empty document")
    events = etree.iterparse(
        io.BytesIO(body), events=("start", "end"), resolve_entities=False, no_network=True,
        load_dtd=False, huge_tree=False, remove_comments=True, remove_pis=True,
    )
    root = None
    try:
        for event, element in events:
            name = _local(element.tag)
            if root is None:
                root = name
                if root not in {"rss", "rdf", "feed", "urlset", "sitemapindex"}:
                    raise DocumentError(f"not a feed or sitemap (root element <{root}>)")
                continue
            if event != "end" or name not in _ENTRY_TAGS:
                continue
            entry = _entry(element, root)
            # Free what was read: memory stays flat however many entries there are.
            element.clear()
            parent = element.getparent()
            while parent is not None and element.getprevious() is not None:
                del parent[0]
            if entry is not None:
                yield entry
    except etree.XMLSyntaxError as exc:
        raise DocumentError(f"not well-formed XML: {exc}") from exc


def feed_entries(body: bytes) -> list[Entry]:
    """All entries of a feed, or DocumentError: a broken feed yields nothing."""
    return list(iter_entries(body))


def newer_than(entry: Entry, since: datetime | None) -> bool:
    """Entries without a date are kept: missing a copy costs more than one fetch."""
    return since is None or entry.date is None or entry.date >= since
