"""The discovery spider: walks a story's sources and hands every HTML page on.

It knows nothing of storage or matching: it is given its sources as plain values
and yields `PageItem`s; the pipelines do the rest.
"""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator, Iterable
from typing import Any
from urllib.parse import urlsplit

import scrapy
from scrapy.http import Response, TextResponse
from scrapy.selector import Selector
from scrapy.utils.sitemap import Sitemap

from crawler.items import PageItem
from crawler.links import hrefs
from crawler.urls import canonical

_HTML_TYPES = ("text/html", "application/xhtml+xml")
_FEED_LINKS = (
    "//*[local-name()='item' or local-name()='entry']/*[local-name()='link']"
    "/@href | //*[local-name()='item']/*[local-name()='link']/text()"
)
_SKIP_EXTENSIONS = re.compile(
    r"\.(?:jpe?g|png|gif|webp|svg|ico|css|js|pdf|zip|gz|mp[34]|mov|avi|woff2?|ttf|xml|rss)$", re.I
)


def host_of(url: str) -> str:
    return (urlsplit(url).hostname or "").lower()


class StorySpider(scrapy.Spider):
    """Crawl start URLs within their domains, and the entries of feeds and sitemaps.

    Arguments arrive as one JSON `plan` (see `crawler.crawl_worker`) so the worker,
    tests and a future distributed frontier all describe a crawl the same way.
    """

    name = "story"

    def __init__(self, plan: str | dict[str, Any] = "{}", **kwargs: Any) -> None:
        super().__init__(**kwargs)
        plan = json.loads(plan) if isinstance(plan, str) else plan
        self.sources: list[dict[str, Any]] = plan.get("sources", [])
        if not self.sources:
            raise ValueError("the story has no sources to crawl: add a start URL, feed or sitemap")
        self.max_pages: int = int(plan.get("max_pages", 200))
        self.allowed_domains = sorted({host_of(s["url"]) for s in self.sources})
        self.pages_seen = 0

    async def start(self) -> AsyncIterator[scrapy.Request]:
        for source in self.sources:
            meta = {"hops": 0, "max_depth": int(source.get("max_depth", 2))}
            callback = {
                "feed": self.parse_feed,
                "sitemap": self.parse_sitemap,
            }.get(source["kind"], self.parse_page)
            yield scrapy.Request(source["url"], callback=callback, meta=meta, dont_filter=False)

    # -- feeds and sitemaps: their entries are pages to check, not places to wander from
    def parse_feed(self, response: Response) -> Iterable[scrapy.Request]:
        """RSS <link>text</link> and Atom <link href=...>, whatever the namespaces."""
        try:
            feed = Selector(text=response.text if isinstance(response, TextResponse) else response.body.decode("utf-8", "replace"), type="xml")
            links = feed.xpath(_FEED_LINKS).getall()
        except Exception as exc:  # lxml raises several types on garbage
            self.crawler.stats.inc_value("copyhound/skipped/bad_feed")
            self.logger.warning("skipping unreadable feed %s: %s", response.url, exc)
            return
        for link in links:
            yield from self._follow(response, link, hops=response.meta["max_depth"])

    def parse_sitemap(self, response: Response) -> Iterable[scrapy.Request]:
        try:
            sitemap = Sitemap(response.body)
        except Exception as exc:  # lxml raises several types on garbage
            self.crawler.stats.inc_value("copyhound/skipped/bad_sitemap")
            self.logger.warning("skipping unreadable sitemap %s: %s", response.url, exc)
            return
        for entry in sitemap:
            loc = entry.get("loc")
            if not loc:
                continue
            if sitemap.type == "sitemapindex":
                yield scrapy.Request(loc, callback=self.parse_sitemap, meta=dict(response.meta))
            else:
                yield from self._follow(response, loc, hops=response.meta["max_depth"])

    # -- pages
    def parse_page(self, response: Response) -> Iterable[PageItem | scrapy.Request]:
        content_type = response.headers.get("Content-Type", b"").decode("latin-1").lower()
        if not content_type.startswith(_HTML_TYPES) or not isinstance(response, TextResponse):
            self.crawler.stats.inc_value("copyhound/skipped/not_html")
            return
        if self.pages_seen >= self.max_pages:
            self.crawler.stats.inc_value("copyhound/skipped/page_limit")
            return
        self.pages_seen += 1
        yield PageItem(
            url=response.url,
            status=response.status,
            content_type=content_type,
            html=response.text,
            body=response.body,
            headers={k.decode("latin-1"): b", ".join(v).decode("latin-1") for k, v in response.headers.items()},
        )
        hops = response.meta.get("hops", 0)
        if hops < response.meta.get("max_depth", 0):
            for href in hrefs(response.text):
                yield from self._follow(response, href, hops=hops + 1)

    def _follow(self, response: Response, href: str, *, hops: int) -> Iterable[scrapy.Request]:
        url = canonical(response.urljoin(href.strip()))
        if not url.startswith(("http://", "https://")) or _SKIP_EXTENSIONS.search(urlsplit(url).path):
            return
        if self.pages_seen >= self.max_pages:
            self.crawler.stats.inc_value("copyhound/skipped/page_limit")
            return
        meta = {"hops": hops, "max_depth": response.meta.get("max_depth", 0)}
        yield scrapy.Request(url, callback=self.parse_page, meta=meta)
