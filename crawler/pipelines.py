"""Thin Scrapy adapters around extraction and storage.

Each page is stored in its own short transaction, so a crash mid-crawl loses at most
the page in flight; matching runs after the crawl (see `crawler.monitoring`).
"""

from __future__ import annotations

import logging
from typing import Any

from scrapy.crawler import Crawler
from scrapy.exceptions import DropItem, NotConfigured
from scrapy.utils.asyncio import is_asyncio_available

from crawler.extraction import ExtractionError, content_hash
from crawler.extraction_pool import (
    ExtractionCrashed,
    ExtractionPool,
    ExtractionTimeout,
    timeout_from_env,
    workers_from_env,
)
from crawler.items import GoneItem, NotModifiedItem, PageItem
from crawler.monitoring import Counts, record_gone, record_not_modified, store_page
from storage.engine import make_engine, session_factory
from crawler.urls import site_of

logger = logging.getLogger(__name__)


class ExtractPipeline:
    """Main text and metadata of each page, extracted in worker processes
    (`crawler.extraction_pool`) so the reactor keeps downloading meanwhile.

    COPYHOUND_EXTRACT_WORKERS sets the number of processes (default: one per CPU;
    0 extracts inline, for debugging); COPYHOUND_EXTRACT_TIMEOUT the seconds one
    page may take. Both are read from the Scrapy settings, then the environment.
    A page that has no text, crashes its worker or runs out of time is dropped and
    counted (copyhound/skipped/no_text, extract_failed, extract_timeout); the crawl
    goes on.
    """

    def __init__(self, crawler: Crawler, workers: int, timeout: float, max_pending: int) -> None:
        self.stats = crawler.stats
        self.workers = workers
        self.timeout = timeout
        self.max_pending = max_pending
        self.pool: ExtractionPool | None = None

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> ExtractPipeline:
        settings = crawler.settings
        try:
            workers = workers_from_env()
            timeout = timeout_from_env()
            if settings.get("COPYHOUND_EXTRACT_WORKERS") not in (None, ""):
                workers = settings.getint("COPYHOUND_EXTRACT_WORKERS")
            if settings.get("COPYHOUND_EXTRACT_TIMEOUT") not in (None, ""):
                timeout = settings.getfloat("COPYHOUND_EXTRACT_TIMEOUT")
        except ValueError as exc:
            raise ValueError(f"COPYHOUND_EXTRACT_WORKERS / COPYHOUND_EXTRACT_TIMEOUT: {exc}") from exc
        if workers and not is_asyncio_available():
            logger.warning(
                "extraction runs inline: COPYHOUND_EXTRACT_WORKERS=%d needs the asyncio reactor (TWISTED_REACTOR)", workers
            )
            workers = 0
        # Jobs handed to the executor at once; items beyond wait as coroutines, which
        # Scrapy bounds (CONCURRENT_ITEMS per response, SCRAPER_SLOT_MAX_ACTIVE_SIZE).
        max_pending = max(1, min(settings.getint("CONCURRENT_ITEMS", 100), 2 * max(1, workers)))
        return cls(crawler, workers, timeout, max_pending)

    def open_spider(self) -> None:
        self.pool = ExtractionPool(self.workers, timeout=self.timeout, max_pending=self.max_pending)
        self.pool.start(wait=False)  # workers import trafilatura while the first pages download

    def close_spider(self) -> None:
        if self.pool is not None:
            self.pool.close()
            self.stats.set_value("copyhound/extract_pool_restarts", self.pool.rebuilds)

    async def process_item(self, item: PageItem) -> PageItem:
        try:
            result = await self.pool.extract(item.html, item.url)
        except ExtractionError as exc:
            self.stats.inc_value("copyhound/skipped/no_text")
            raise DropItem(f"no article text in {item.url}: {exc}") from exc
        except ExtractionTimeout as exc:
            self.stats.inc_value("copyhound/skipped/extract_timeout")
            raise DropItem(f"extraction timed out on {item.url}: {exc}") from exc
        except ExtractionCrashed as exc:
            self.stats.inc_value("copyhound/skipped/extract_failed")
            raise DropItem(f"extraction failed on {item.url}: {exc}") from exc
        extracted = result.extracted
        self.stats.inc_value("copyhound/extract_seconds", result.seconds)
        item.title = extracted.title
        item.text = extracted.text
        item.published = extracted.published
        item.site_name = extracted.site_name
        item.canonical_url = extracted.canonical_url
        return item


class _DatabasePipeline:
    """A pipeline that writes to the database named by COPYHOUND_DB, one engine per crawl."""

    def __init__(self, crawler: Crawler, db_url: str) -> None:
        self.stats = crawler.stats
        self.db_url = db_url
        self.engine = None
        self.factory = None

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> Any:
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


class FetchOutcomePipeline(_DatabasePipeline):
    """Answers with no content to extract, stored and stopped here (before extraction):
    a 304 refreshes the known page and touches its matches; a 404/410 from a known
    copy, or its URL redirecting to another page, marks its matches removed and
    queues `copy.removed` (the page a redirect leads to goes on as a page).

    Pages go on to ExtractPipeline untouched. Handled items are dropped quietly
    (DEBUG): they are counted as not_modified / pages_gone, not as pages.
    """

    def process_item(self, item: Any) -> Any:
        if not isinstance(item, (NotModifiedItem, GoneItem)):
            return item
        try:
            if isinstance(item, NotModifiedItem):
                outcome = record_not_modified(self.factory, item.url, etag=item.etag, last_modified=item.last_modified)
            else:
                outcome = record_gone(self.factory, item.url, item.status, location=item.location)
        except Exception as exc:
            self.stats.inc_value(f"copyhound/errors/{type(exc).__name__}")
            logger.exception("could not record %s", item)
            raise DropItem(f"could not record {item}: {exc}", log_level="ERROR") from exc
        _count(self.stats, outcome)
        raise DropItem(f"recorded {item}", log_level="DEBUG")


def _count(stats: Any, outcome: Counts) -> None:
    for key, value in outcome.as_dict().items():
        stats.inc_value(f"copyhound/{key}", value)


class StorePipeline(_DatabasePipeline):
    def process_item(self, item: PageItem) -> PageItem:
        try:
            outcome = self._process(item)
        except Exception as exc:
            # One bad page must not end the crawl: record it, keep going.
            self.stats.inc_value(f"copyhound/errors/{type(exc).__name__}")
            logger.exception("could not store %s", item.url)
            raise DropItem(f"could not store {item.url}: {exc}") from exc
        _count(self.stats, outcome)
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
