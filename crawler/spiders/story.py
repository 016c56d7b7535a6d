"""The discovery spider: every way of finding candidate pages, feeding one pipeline.

It knows nothing of storage or matching: it is given a plan of plain values (see
`crawler.crawl_worker.crawl_plan`) and yields items; the pipelines do the rest.

Ways in, all bounded:
- feeds and sitemaps (and sitemap indexes, Google News sitemaps): their entries
  newer than the plan's `since` are pages to check, not places to wander from;
- a site crawl from start URLs, within the sources' domains, to `max_depth` hops;
- the known copies of the story (`recheck`), fetched again every run, whatever
  the budgets, to see whether they changed, disappeared (404/410, or a redirect
  to another page, which is then checked as any page) or came back;
- the links on those copies (copies link to their sources and to each other),
  followed one hop, even off-domain.

Budgets: each source may fetch `max_pages` pages and the whole run `max_pages` of
the plan (rechecks aside); a URL shape (digits normalised) may take at most
COPYHOUND_MAX_PER_PATTERN pages, which defuses calendar-style traps; a sitemap
index may open COPYHOUND_MAX_SITEMAPS sitemaps. Every refusal is counted under
copyhound/skipped/<reason> and ends in the run's counts.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import AsyncIterator, Iterable
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

import scrapy
from scrapy import signals
from scrapy.crawler import Crawler
from scrapy.exceptions import IgnoreRequest, StopDownload
from scrapy.http import Response, TextResponse
from scrapy.spidermiddlewares.httperror import HttpError
from twisted.python.failure import Failure
from w3lib.url import safe_url_string

from crawler.feeds import DocumentError, feed_entries, gunzip_bounded, iter_entries, newer_than, parse_date
from crawler.items import GONE_STATUSES, REDIRECT_STATUSES, GoneItem, NotModifiedItem, PageItem
from crawler.links import hrefs
from crawler.urls import canonical, canonical_link, is_amp, site_of, url_pattern

_HTML_TYPES = ("text/html", "application/xhtml+xml")
_SKIP_EXTENSIONS = re.compile(
    r"\.(?:jpe?g|png|gif|webp|svg|ico|css|js|pdf|zip|gz|mp[34]|mov|avi|woff2?|ttf|xml|rss)$", re.I
)
# Control bytes other than tab/newline/carriage return/form feed: text has (almost) none.
_BINARY = re.compile(rb"[\x00-\x08\x0b\x0e-\x1a\x1c-\x1f]")
COPIES = "copies"  # the budget of links followed from known copies
DEFAULT_USER_AGENT = "copyhound/0.1 (+{contact}; republication monitor)"


def host_of(url: str) -> str:
    return (urlsplit(url).hostname or "").lower()


def same_address(a: str, b: str) -> bool:
    """Whether two URLs name one page: equal once canonical, setting aside what a
    site's own canonicalising redirect changes (http/https, "www.", a trailing slash)."""
    return _address(a) == _address(b)


def _address(url: str) -> tuple[str, int | None, str, str]:
    parts = urlsplit(canonical(url))
    port = None if parts.port in (80, 443) else parts.port
    return (parts.hostname or "").removeprefix("www."), port, parts.path.rstrip("/"), parts.query


def user_agent(contact: str) -> str:
    """The User-Agent naming us and where to reach the operator."""
    contact = (contact or "").strip()
    if not contact.startswith(("http://", "https://", "mailto:")) or any(c.isspace() for c in contact):
        raise ValueError(f"COPYHOUND_CONTACT_URL must be an http(s):// or mailto: URL, got {contact!r}")
    return DEFAULT_USER_AGENT.format(contact=contact)


def looks_binary(body: bytes) -> bool:
    """Images, archives and executables served as text/html: many control bytes."""
    head = body[:4096]
    return bool(head) and (b"\x00" in head or len(_BINARY.findall(head)) > len(head) // 20)


class StorySpider(scrapy.Spider):
    """Walk a story's sources, feeds, sitemaps and known copies (see the module doc).

    Arguments arrive as one JSON `plan` so the worker, tests and a future distributed
    frontier all describe a crawl the same way.
    """

    name = "story"

    def __init__(self, plan: str | dict[str, Any] = "{}", **kwargs: Any) -> None:
        super().__init__(**kwargs)
        plan = json.loads(plan) if isinstance(plan, str) else plan
        self.sources: list[dict[str, Any]] = plan.get("sources", [])
        self.recheck: list[str] = list(dict.fromkeys(plan.get("recheck", [])))
        if not self.sources and not self.recheck:
            raise ValueError("the story has no sources to crawl: add a start URL, feed or sitemap")
        self.max_pages: int = int(plan.get("max_pages", 200))
        self.since: datetime | None = parse_date(plan.get("since"))
        self.validators: dict[str, dict[str, str]] = plan.get("validators", {})
        self.known_copies = {canonical(u) for u in [*self.recheck, *plan.get("known_copies", [])]}
        self.allowed_domains = sorted({host_of(s["url"]) for s in self.sources})
        # Fetch budgets: per source, for copies' links, and for the whole run.
        self.budget: Counter[str] = Counter({f"s{i}": int(s.get("max_pages", self.max_pages)) for i, s in enumerate(self.sources)})
        self.budget[COPIES] = self.max_pages
        self.budget["run"] = self.max_pages
        self.sitemaps_left: Counter[str] = Counter()
        self.requested: set[str] = set()  # canonical URLs asked for in this run
        self.per_pattern: Counter[str] = Counter()
        self.max_per_pattern = 100
        self.max_sitemaps = 50
        self.max_size = 10 * 1024 * 1024
        self.max_redirects = 5

    @classmethod
    def update_settings(cls, settings: Any) -> None:
        """The User-Agent carries COPYHOUND_CONTACT_URL unless USER_AGENT is set explicitly."""
        super().update_settings(settings)
        contact = settings.get("COPYHOUND_CONTACT_URL")
        if contact and settings.getpriority("USER_AGENT") <= settings.getpriority("COPYHOUND_CONTACT_URL"):
            settings.set("USER_AGENT", user_agent(contact), priority=settings.getpriority("COPYHOUND_CONTACT_URL"))

    @classmethod
    def from_crawler(cls, crawler: Crawler, *args: Any, **kwargs: Any) -> StorySpider:
        spider = super().from_crawler(crawler, *args, **kwargs)
        settings = crawler.settings
        try:
            spider.max_per_pattern = settings.getint("COPYHOUND_MAX_PER_PATTERN", 100)
            spider.max_sitemaps = settings.getint("COPYHOUND_MAX_SITEMAPS", 50)
        except ValueError as exc:
            raise ValueError(f"COPYHOUND_MAX_PER_PATTERN / COPYHOUND_MAX_SITEMAPS must be whole numbers: {exc}") from exc
        spider.max_size = settings.getint("DOWNLOAD_MAXSIZE") or spider.max_size
        spider.max_redirects = settings.getint("REDIRECT_MAX_TIMES", spider.max_redirects)
        crawler.signals.connect(spider.on_headers, signal=signals.headers_received)
        return spider

    # -- requests
    async def start(self) -> AsyncIterator[scrapy.Request]:
        # Known copies first, so no other way to their URL fetches them without the
        # gone/moved/not-modified handling (the dupefilter keeps the first request).
        for url in self.recheck:
            self.requested.add(canonical(url))
            yield self._recheck(url)
        for i, source in enumerate(self.sources):
            key = f"s{i}"
            meta = {"hops": 0, "max_depth": int(source.get("max_depth", 2)), "source": key}
            if source["kind"] == "feed":
                yield scrapy.Request(source["url"], callback=self.parse_feed, errback=self.on_error, meta={**meta, "kind": "feed"})
            elif source["kind"] == "sitemap":
                self.sitemaps_left[key] = self.max_sitemaps
                yield scrapy.Request(source["url"], callback=self.parse_sitemap, errback=self.on_error, meta={**meta, "kind": "sitemap"})
            elif source["kind"] == "start_url":
                request = self._page_request(source["url"], meta, budget=key, trap_guard=False)
                if request is not None:
                    yield request
            elif source["kind"] == "search":  # a search result: fetched, never expanded
                request = self._page_request(
                    source["url"], {**meta, "max_depth": 0}, budget=key, offsite=True, trap_guard=False
                )
                if request is not None:
                    yield request
            else:
                self.crawler.stats.inc_value(f"copyhound/skipped/source_kind_{source['kind']}")

    def _recheck(self, url: str, *, copy_url: str | None = None, redirects: int = 0) -> scrapy.Request:
        """A request for a known copy (`copy_url`, which `url` may spell otherwise).

        Its redirects come back to `parse_page` instead of being followed: whether the
        copy moved away is decided on the redirect itself. Followed by Scrapy, a
        redirect to a page already asked for this run (the home page, typically) is
        dropped as a duplicate, and the copy would never be seen to go."""
        return scrapy.Request(
            url, callback=self.parse_page, errback=self.on_error, priority=10,
            meta={"hops": 0, "max_depth": 0, "kind": "page", "recheck": True, "conditional": True,
                  "allow_offsite": True, "dont_redirect": True, "copy_url": copy_url or url,
                  "copy_redirects": redirects, "handle_httpstatus_list": [*GONE_STATUSES, *REDIRECT_STATUSES, 304]},
        )

    def _page_request(
        self, url: str, meta: dict[str, Any], *, budget: str, conditional: bool = False,
        offsite: bool = False, trap_guard: bool = True,
    ) -> scrapy.Request | None:
        """A request for a page, or None when it was asked for already or over a budget."""
        url = canonical(url)
        if not url.startswith(("http://", "https://")) or _SKIP_EXTENSIONS.search(urlsplit(url).path):
            return None
        if url in self.requested:
            return None
        if self.budget[budget] <= 0 or self.budget["run"] <= 0:
            self.crawler.stats.inc_value("copyhound/skipped/page_limit")
            return None
        pattern = url_pattern(url)
        if trap_guard and self.per_pattern[pattern] >= self.max_per_pattern:
            self.crawler.stats.inc_value("copyhound/skipped/url_trap")
            return None
        self.per_pattern[pattern] += 1
        self.budget[budget] -= 1
        self.budget["run"] -= 1
        self.requested.add(url)
        meta = {**meta, "kind": "page", "budget": budget, "conditional": conditional}
        if offsite:
            meta["allow_offsite"] = True
        return scrapy.Request(url, callback=self.parse_page, errback=self.on_error, meta=meta)

    # -- feeds and sitemaps
    def parse_feed(self, response: Response) -> Iterable[scrapy.Request]:
        try:
            entries = feed_entries(response.body)
        except DocumentError as exc:
            self.crawler.stats.inc_value("copyhound/skipped/bad_feed")
            self.logger.warning("skipping unreadable feed %s: %s", response.url, exc)
            return
        yield from self._entries(response, entries, offsite=True)

    def parse_sitemap(self, response: Response) -> Iterable[scrapy.Request]:
        body = response.body
        try:
            if body[:2] == b"\x1f\x8b":
                body = gunzip_bounded(body, self.max_size)
            yield from self._entries(response, iter_entries(body), offsite=False)
        except DocumentError as exc:
            self.crawler.stats.inc_value("copyhound/skipped/bad_sitemap")
            self.logger.warning("skipping (the rest of) unreadable sitemap %s: %s", response.url, exc)

    def _entries(self, response: Response, entries: Iterable[Any], *, offsite: bool) -> Iterable[scrapy.Request]:
        """Entries are leaves: fetched (conditionally), never expanded. Reading stops as
        soon as the budget is spent, so a 100k-entry sitemap costs no more than needed."""
        meta = response.meta
        key = meta["source"]
        for entry in entries:
            if not newer_than(entry, self.since):
                self.crawler.stats.inc_value("copyhound/skipped/older_than_since")
                continue
            url = response.urljoin(entry.url.strip())
            if entry.kind == "sitemap":
                if self.sitemaps_left[key] <= 0:
                    self.crawler.stats.inc_value("copyhound/skipped/sitemap_limit")
                    continue
                self.sitemaps_left[key] -= 1
                yield scrapy.Request(url, callback=self.parse_sitemap, errback=self.on_error, meta={**_own(meta), "kind": "sitemap"})
                continue
            if self.budget[key] <= 0 or self.budget["run"] <= 0:
                self.crawler.stats.inc_value("copyhound/skipped/page_limit")
                return
            depth = meta.get("max_depth", 0)
            request = self._page_request(
                url, {"hops": depth, "max_depth": depth, "source": key}, budget=key,
                conditional=True, offsite=offsite, trap_guard=False,
            )
            if request is not None:
                yield request

    # -- pages
    def on_headers(self, headers: Any, body_length: int, request: scrapy.Request, spider: Any = None) -> None:
        """Stop downloading pages that are not HTML as soon as their headers say so."""
        if request.meta.get("kind") != "page":
            return
        content_type = (headers.get(b"Content-Type") or b"").decode("latin-1").lower()
        if content_type and not content_type.startswith(_HTML_TYPES):
            raise StopDownload(fail=False)

    def parse_page(self, response: Response) -> Iterable[PageItem | NotModifiedItem | GoneItem | scrapy.Request]:
        stats = self.crawler.stats
        if response.status in REDIRECT_STATUSES and response.meta.get("recheck"):
            yield from self._copy_redirected(response)
            return
        if response.status == 304:
            yield NotModifiedItem(
                url=response.url,
                etag=_header(response, b"ETag"),
                last_modified=_header(response, b"Last-Modified"),
            )
            return
        if response.status in GONE_STATUSES:
            yield GoneItem(url=response.meta.get("copy_url", response.url), status=response.status)
            return
        content_type = (_header(response, b"Content-Type") or "").lower()
        if content_type and not content_type.startswith(_HTML_TYPES):
            stats.inc_value("copyhound/skipped/not_html")
            return
        if "download_stopped" in response.flags:
            stats.inc_value("copyhound/skipped/not_html")
            return
        if looks_binary(response.body):
            stats.inc_value("copyhound/skipped/binary")
            return
        if not isinstance(response, TextResponse):
            stats.inc_value("copyhound/skipped/not_html")
            return
        page = response.text
        meta = response.meta
        self.requested.add(canonical(response.url))  # where a redirect ended
        link = canonical_link(page)
        target = canonical(response.urljoin(link)) if link else None
        if target and target != canonical(response.url) and is_amp(page):
            # An AMP rendering: check the article itself instead.
            stats.inc_value("copyhound/skipped/amp_to_canonical")
            request = self._page_request(target, _own(meta), budget=meta.get("budget", "run"), trap_guard=False)
            if request is not None:
                yield request
            return
        if target and site_of(target) == site_of(response.url):
            # The page names its article URL: no need to fetch that spelling again.
            self.requested.add(target)
        yield PageItem(
            url=response.url,
            status=response.status,
            content_type=content_type or None,
            html=page,
            body=response.body,
            headers={k.decode("latin-1"): b", ".join(v).decode("latin-1") for k, v in response.headers.items()},
            canonical_url=target,
        )
        hops, depth = meta.get("hops", 0), meta.get("max_depth", 0)
        if meta.get("recheck") or canonical(response.url) in self.known_copies:
            # A known copy: its links (to its source, to other copies) one hop, anywhere.
            for href in hrefs(page):
                request = self._page_request(
                    response.urljoin(href.strip()), {"hops": 1, "max_depth": 1, "copy_link": True},
                    budget=COPIES, conditional=True, offsite=True,
                )
                if request is not None:
                    yield request
        elif hops < depth:
            for href in hrefs(page):
                request = self._page_request(
                    response.urljoin(href.strip()), {**_own(meta), "hops": hops + 1},
                    budget=meta.get("budget", "run"), conditional=hops + 1 >= depth,
                )
                if request is not None:
                    yield request

    def _copy_redirected(self, response: Response) -> Iterable[GoneItem | scrapy.Request]:
        """A known copy's URL answered a redirect. To another page (the home page, a
        section, the copy under a new slug): the copy is gone from its URL, recorded
        with the redirect's status and target, and the target is checked as any page.
        To the copy's own URL spelt otherwise (see `same_address`): followed, still
        as the copy."""
        meta = response.meta
        location = response.headers.get(b"Location")
        if not location:
            self.crawler.stats.inc_value("copyhound/skipped/bad_redirect")
            return
        target = response.urljoin(safe_url_string(location))
        copy_url = meta.get("copy_url", response.url)
        if not same_address(copy_url, target):
            yield GoneItem(url=copy_url, status=response.status, location=target)
            request = self._page_request(
                target, {"hops": 0, "max_depth": 0}, budget=COPIES, conditional=True, offsite=True, trap_guard=False
            )
            if request is not None:
                yield request
        elif meta.get("copy_redirects", 0) >= self.max_redirects:
            self.crawler.stats.inc_value("copyhound/skipped/redirect_loop")
        else:
            self.requested.add(canonical(target))
            yield self._recheck(target, copy_url=copy_url, redirects=meta.get("copy_redirects", 0) + 1)

    def on_error(self, failure: Failure) -> None:
        """Name why a request came to nothing; errors by type are counted by Scrapy."""
        if failure.check(HttpError):
            # With an errback Scrapy's HttpErrorMiddleware leaves the counting to us.
            status = failure.value.response.status
            self.crawler.stats.inc_value("httperror/response_ignored_count")
            self.crawler.stats.inc_value(f"httperror/response_ignored_status_count/{status}")
        reason = _failure_reason(failure)
        if reason:
            self.crawler.stats.inc_value(f"copyhound/skipped/{reason}")
        self.logger.info("no page from %s: %s", getattr(failure.request, "url", "?"), failure.getErrorMessage())


def _own(meta: dict[str, Any]) -> dict[str, Any]:
    """The spider's own keys of a response's meta, to carry to the requests it leads to
    (never Scrapy's: redirect counters, retry counts, slots, validators)."""
    return {k: meta[k] for k in ("hops", "max_depth", "source") if k in meta}


def _header(response: Response, name: bytes) -> str | None:
    value = response.headers.get(name)
    return value.decode("latin-1") if value else None


def _failure_reason(failure: Failure) -> str | None:
    message = failure.getErrorMessage().lower()
    if failure.check(HttpError):
        return None  # counted as errors/http_<status>
    names = {cls.__name__ for cls in type(failure.value).__mro__}
    if "max size" in message or "download_maxsize" in message or "DownloadCancelledError" in names:
        return "too_large"  # a download is cancelled when it outgrows DOWNLOAD_MAXSIZE
    if failure.check(IgnoreRequest):
        if "redirection" in message:
            return "redirect_loop"
        if "robots.txt" in message:
            return None  # counted as skipped/robots_txt
        if "offsite" in message:
            return "offsite"
        return "ignored"
    if names & {"TimeoutError", "DownloadTimeoutError", "TCPTimedOutError", "UserTimeout"}:
        return "timeout"
    if names & {"ConnectionRefusedError", "DownloadConnectionRefusedError", "DNSLookupError", "CannotResolveHostError", "NoRouteError"}:
        return "unreachable"
    return "fetch_failed"
