"""Progress lines for the parent process that started the crawl."""

from __future__ import annotations

import json
import sys
import time

from scrapy import signals
from scrapy.crawler import Crawler
from scrapy.exceptions import NotConfigured

from crawler.crawling import PROGRESS_PREFIX
from crawler.pipelines import stats_summary



class ProgressLines:
    """Writes running counts as one JSON line at most every `interval` seconds.

    The parent (`crawler.crawling`) turns them into a live counter; they go to stdout
    with a prefix so nothing else printed there is mistaken for progress.
    """

    def __init__(self, interval: float) -> None:
        self.interval = interval
        self.last = 0.0

    def emit(self, counts: dict) -> None:
        now = time.monotonic()
        if now - self.last >= self.interval:
            self.last = now
            sys.stdout.write(PROGRESS_PREFIX + json.dumps(counts) + "\n")
            sys.stdout.flush()


class ProgressReporter:
    """Reports the crawl's counts while it runs (see ProgressLines)."""

    def __init__(self, crawler: Crawler, interval: float) -> None:
        self.crawler = crawler
        self.lines = ProgressLines(interval)

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> ProgressReporter:
        if not crawler.settings.getbool("COPYHOUND_PROGRESS_ENABLED"):
            raise NotConfigured("COPYHOUND_PROGRESS_ENABLED is off")
        ext = cls(crawler, crawler.settings.getfloat("COPYHOUND_PROGRESS_INTERVAL", 0.5))
        for signal in (signals.item_scraped, signals.item_dropped, signals.response_received):
            crawler.signals.connect(ext.tick, signal=signal)
        return ext

    def tick(self, *args, **kwargs) -> None:
        self.lines.emit(stats_summary(self.crawler.stats.get_stats()))
