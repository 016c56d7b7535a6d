"""Items passed from the spider to the pipelines."""

from __future__ import annotations

from dataclasses import dataclass, field


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
