"""Downloader middlewares: polite retries and conditional GETs.

Both are thin: the decisions (how long a Retry-After asks us to wait, which
validators a URL has) are plain functions and plain data.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

from scrapy.crawler import Crawler
from scrapy.downloadermiddlewares.retry import RetryMiddleware
from scrapy.exceptions import NotConfigured
from scrapy.http import Request, Response
from scrapy.utils.asyncio import is_asyncio_available
from scrapy.utils.response import response_status_message

logger = logging.getLogger(__name__)

CONDITIONAL_HEADERS = (b"If-None-Match", b"If-Modified-Since")


def retry_after_seconds(value: str | bytes | None, *, now: datetime | None = None) -> float | None:
    """Seconds a Retry-After header asks for (delta-seconds or an HTTP-date); None if
    absent or unreadable. A date in the past means "now" (0)."""
    if value is None:
        return None
    if isinstance(value, bytes):
        value = value.decode("latin-1")
    value = value.strip()
    if not value:
        return None
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())


async def _sleep(seconds: float) -> None:
    if is_asyncio_available():
        await asyncio.sleep(seconds)
        return
    from twisted.internet import reactor
    from twisted.internet.task import deferLater

    from scrapy.utils.defer import maybe_deferred_to_future

    await maybe_deferred_to_future(deferLater(reactor, seconds))


class RetryAfterMiddleware(RetryMiddleware):
    """Scrapy's retry, but waiting before each retry of an HTTP error: as long as the
    server's Retry-After says (429/503), else an exponential backoff.

    COPYHOUND_RETRY_AFTER_MAX bounds the wait: a server asking for longer is not
    retried this run (counted as copyhound/skipped/retry_after_too_long), since
    retrying sooner than asked is impolite and waiting longer stalls the crawl.
    COPYHOUND_RETRY_BACKOFF is the first backoff in seconds (doubled per retry).
    The wait holds only this request; other sites keep downloading.
    """

    def __init__(self, settings: Any) -> None:
        super().__init__(settings)
        try:
            self.max_wait = settings.getfloat("COPYHOUND_RETRY_AFTER_MAX", 300.0)
            self.backoff = settings.getfloat("COPYHOUND_RETRY_BACKOFF", 1.0)
        except ValueError as exc:
            raise ValueError(f"COPYHOUND_RETRY_AFTER_MAX / COPYHOUND_RETRY_BACKOFF must be numbers of seconds: {exc}") from exc
        if self.max_wait < 0 or self.backoff < 0:
            raise ValueError("COPYHOUND_RETRY_AFTER_MAX and COPYHOUND_RETRY_BACKOFF must not be negative")

    async def process_response(self, request: Request, response: Response) -> Request | Response:
        if request.meta.get("dont_retry", False) or response.status not in self.retry_http_codes:
            return response
        stats = self.crawler.stats
        wait = retry_after_seconds(response.headers.get(b"Retry-After"))
        if wait is None:
            wait = min(self.backoff * 2 ** request.meta.get("retry_times", 0), self.max_wait)
        elif wait > self.max_wait:
            stats.inc_value("copyhound/skipped/retry_after_too_long")
            logger.info("not retrying %s: Retry-After %.0f s is over COPYHOUND_RETRY_AFTER_MAX", request.url, wait)
            return response
        retry = self._retry(request, response_status_message(response.status))
        if retry is None:
            return response
        if wait > 0:
            stats.inc_value("copyhound/retry_wait_seconds", round(wait, 3))
            await _sleep(wait)
        return retry


class ConditionalGetMiddleware:
    """Adds If-None-Match / If-Modified-Since to requests the spider marks `conditional`,
    from the validators stored with each known page (the spider's `validators`, loaded
    once from the crawl plan: no database access here). A 304 then reaches the spider,
    which passes the page on as seen-unchanged without downloading or extracting it.

    Validators belong to one URL: when a redirect moves the request elsewhere they are
    removed rather than sent to a page they do not describe.
    """

    def __init__(self, crawler: Crawler) -> None:
        self.crawler = crawler

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> ConditionalGetMiddleware:
        if not crawler.settings.getbool("COPYHOUND_CONDITIONAL_GET_ENABLED", True):
            raise NotConfigured("COPYHOUND_CONDITIONAL_GET_ENABLED is off")
        return cls(crawler)

    def process_request(self, request: Request) -> None:
        meta = request.meta
        if meta.get("copyhound_validated_url") not in (None, request.url):
            for name in CONDITIONAL_HEADERS:  # a redirect: these describe another URL
                request.headers.pop(name, None)
            del meta["copyhound_validated_url"]
        if not meta.get("conditional") or "copyhound_validated_url" in meta:
            return None
        validators = getattr(self.crawler.spider, "validators", None) or {}
        known = validators.get(request.url)
        if not known:
            return None
        if known.get("etag"):
            request.headers.setdefault(b"If-None-Match", known["etag"])
        if known.get("last_modified"):
            request.headers.setdefault(b"If-Modified-Since", known["last_modified"])
        meta["copyhound_validated_url"] = request.url
        meta["handle_httpstatus_list"] = sorted({*meta.get("handle_httpstatus_list", ()), 304})
        self.crawler.stats.inc_value("copyhound/conditional_requests")
        return None
