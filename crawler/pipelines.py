"""Thin Scrapy adapters around extraction and storage.

Each page is stored in its own short transaction, so a crash mid-crawl loses at most
the page in flight; matching runs after the crawl (see `crawler.monitoring`).
"""

from __future__ import annotations

import logging
from typing import Any

from scrapy.crawler import Crawler
from scrapy.exceptions import DropItem, NotConfigured

from crawler.extraction import ExtractionError, content_hash, extract
from crawler.items import PageItem
from crawler.monitoring import store_page
from storage.engine import make_engine, session_factory
from crawler.urls import site_of

logger = logging.getLogger(__name__)


class ExtractPipeline:
    def __init__(self, crawler: Crawler) -> None:
        self.stats = crawler.stats

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> ExtractPipeline:
        return cls(crawler)

    def process_item(self, item: PageItem) -> PageItem:
        try:
            extracted = extract(item.html, url=item.url)
        except ExtractionError as exc:
            self.stats.inc_value("copyhound/skipped/no_text")
            raise DropItem(f"no article text in {item.url}: {exc}") from exc
        item.title = extracted.title
        item.text = extracted.text
        item.published = extracted.published
        item.site_name = extracted.site_name
        item.canonical_url = extracted.canonical_url
        return item


class StorePipeline:
    def __init__(self, crawler: Crawler, db_url: str) -> None:
        self.stats = crawler.stats
        self.db_url = db_url
        self.engine = None
        self.factory = None

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> StorePipeline:
        db_url = crawler.settings.get("COPYHOUND_DB")
        if not db_url:
            raise NotConfigured("set COPYHOUND_DB to the database URL to store pages and matches")
        return cls(crawler, db_url)

    def open_spider(self) -> None:
        self.engine = make_engine(self.db_url)
        self.factory = session_factory(self.engine)

    def close_spider(self) -> None:
        if self.engine is not None:
            self.engine.dispose()

    def process_item(self, item: PageItem) -> PageItem:
        try:
            outcome = self._process(item)
        except Exception as exc:
            # One bad page must not end the crawl: record it, keep going.
            self.stats.inc_value(f"copyhound/errors/{type(exc).__name__}")
            logger.exception("could not store %s", item.url)
            raise DropItem(f"could not store {item.url}: {exc}") from exc
        for key, value in outcome.as_dict().items():
            self.stats.inc_value(f"copyhound/{key}", value)
        return item

    def _process(self, item: PageItem):
        return store_page(
            self.factory,
            url=item.url,
            canonical_url=item.canonical_url,
            site=site_of(item.url),
            http_status=item.status,
            content_type=item.content_type,
            content_hash=content_hash(item.text or ""),
            title=item.title,
            text=item.text or "",
            body=item.body,
            headers=item.headers,
            published=item.published,
            site_name=item.site_name,
            etag=item.headers.get("Etag"),
            last_modified=item.headers.get("Last-Modified"),
        )


def stats_summary(stats: dict[str, Any]) -> dict[str, Any]:
    """The crawl-run counts, from Scrapy's stats dict."""
    counts: dict[str, Any] = {
        "requests": stats.get("downloader/request_count", 0),
        "responses": stats.get("downloader/response_count", 0),
        "pages": stats.get("item_scraped_count", 0),
    }
    errors: dict[str, int] = {}
    for key, value in stats.items():
        if key.startswith("copyhound/errors/"):
            errors[key.removeprefix("copyhound/errors/")] = value
        elif key.startswith("copyhound/"):
            counts[key.removeprefix("copyhound/")] = value
        elif key.startswith("downloader/exception_type_count/"):
            name = key.rsplit(".", 1)[-1].rsplit("/", 1)[-1]
            if name != "IgnoreRequest":  # robots.txt and offsite refusals: counted below
                errors[name] = value
        elif key.startswith("httperror/response_ignored_status_count/"):
            # Pages answered with an error status (robots.txt fetches are not counted).
            errors[f"http_{key.rsplit('/', 1)[-1]}"] = value
        elif key.startswith("spider_exceptions/") and key != "spider_exceptions/count":
            errors[key.removeprefix("spider_exceptions/")] = value
    if stats.get("robotstxt/forbidden"):
        counts["skipped/robots_txt"] = stats["robotstxt/forbidden"]
    counts["errors"] = errors
    return counts
