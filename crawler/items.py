"""Items passed from the spider to the pipelines."""

from __future__ import annotations

from dataclasses import dataclass, field

# What a known page's URL answers when its copy is no longer there (a 5xx or a
# timeout says nothing of the kind): gone outright...
GONE_STATUSES = (404, 410)
# ...or a redirect to another page, a publisher's usual way to take a copy down. A
# page stored with either kind of status is gone: coming back it is matched again.
REDIRECT_STATUSES = (301, 302, 303, 307, 308)
GONE_OR_MOVED = GONE_STATUSES + REDIRECT_STATUSES


@dataclass
class PageItem:
    url: str
    status: int
    content_type: str | None
    html: str = field(repr=False)
    body: bytes = field(default=b"", repr=False)  # raw bytes as received: the evidence
    headers: dict[str, str] = field(default_factory=dict)
    # Filled by the extraction pipeline.
    title: str | None = None
    text: str | None = field(default=None, repr=False)
    published: str | None = None
    site_name: str | None = None
    canonical_url: str | None = None


@dataclass
class NotModifiedItem:
    """A conditional GET answered 304: the stored copy is current, nothing to extract."""

    url: str
    etag: str | None = None
    last_modified: str | None = None


@dataclass
class GoneItem:
    """A known page answered 404 or 410, or its URL now redirects to another page
    (`status` is the redirect's, `location` its target): its copies may have been
    taken down."""

    url: str
    status: int
    location: str | None = None
