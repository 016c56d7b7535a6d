"""Entry point of one crawl subprocess: `python -m crawler.crawl_worker`.

A Twisted reactor cannot be restarted, so every crawl gets a process of its own;
the scheduler and the CLI stay free of Twisted. The worker reports its counts into
its crawl_runs row; the parent records how the process ended.
"""

from __future__ import annotations

import argparse
import json
import sys
import traceback

from scrapy.crawler import CrawlerProcess
from scrapy.settings import Settings
from sqlalchemy import or_, select

from crawler import settings as default_settings
from crawler.alerts.errors import ConfigError
from crawler.crawling import RESULT_PREFIX
from crawler.extensions import ProgressLines
from crawler.monitoring import Counts, MatchPhase
from crawler.pipelines import stats_summary
from crawler.search.discovery import search_plan_entries
from crawler.search.providers import SearchError
from crawler.spiders.story import StorySpider
from crawler.urls import site_of
from storage.engine import make_engine, session_factory
from storage.models import CrawlRun, Match, Page
from storage.repositories import CrawlRuns, Sources, Stories


# Bounds of a plan: it travels in memory to the spider, so it must stay small.
MAX_RECHECK = 5000
MAX_VALIDATORS = 100_000
RECHECK_STATUSES = ("active", "licensed", "removed")


def crawl_plan(factory, story_id: int) -> dict:
    """What one crawl of `story_id` fetches, as plain JSON-able values.

    - `sources`: start URLs, feeds and sitemaps with their limits;
    - `since`: feed and sitemap entries older than this are skipped: the start of the
      story's last finished crawl (an entry published during it is still seen), or on
      a first crawl the story's publication date when known. Not its registration:
      copies published between publication and registration would be lost;
    - search results for a story with a `search` source (queried before the crawl,
      outside any transaction: no database lock is held across the network);
    - `recheck`: pages holding the story's copies (active, licensed or removed), to
      fetch again every run: changed, gone (404/410) or back;
    - `validators`: ETag/Last-Modified of known pages on the sites this crawl visits,
      for conditional GETs.
    """
    with factory.begin() as session:
        story = Stories(session).get(story_id)
        if story is None:
            raise ValueError(f"no story with id {story_id}")
        sources = Sources(session).for_story(story_id)
        since = story.published_at
        last = session.scalar(
            select(CrawlRun.started_at)
            .where(CrawlRun.story_id == story_id, CrawlRun.status == "finished")
            .order_by(CrawlRun.started_at.desc())
            .limit(1)
        )
        if last is not None and (since is None or last > since):
            since = last
        recheck = list(
            session.scalars(
                select(Page.url)
                .join(Match, Match.page_id == Page.id)
                .where(Match.story_id == story_id, Match.status.in_(RECHECK_STATUSES))
                .order_by(Match.last_seen.desc())
                .limit(MAX_RECHECK)
            )
        )
        sites = {site_of(s.url) for s in sources} | {site_of(u) for u in recheck}
        rows = session.execute(
            select(Page.url, Page.etag, Page.last_modified)
            .where(
                Page.site.in_(sorted(sites)),
                Page.text.is_not(None),
                or_(Page.etag.is_not(None), Page.last_modified.is_not(None)),
            )
            .order_by(Page.fetched_at.desc())
            .limit(MAX_VALIDATORS)
        )
        validators = {
            url: {k: v for k, v in (("etag", etag), ("last_modified", modified)) if v}
            for url, etag, modified in rows
        }
        search = next((s for s in sources if s.kind == "search"), None)
        story_text, own_url = story.text, story.canonical_url
        plan = {
            "story_id": story_id,
            "max_pages": max((s.max_pages for s in sources), default=0),
            "since": since.isoformat() if since else None,
            "sources": [
                {"kind": s.kind, "url": s.url, "max_depth": s.max_depth, "max_pages": s.max_pages, "options": s.options or {}}
                for s in sources
                if s.kind != "search"
            ],
            "recheck": sorted(set(recheck)),
            "validators": validators,
        }
    if search is not None:
        try:
            found = search_plan_entries(story_text, own_url=own_url, options=search.options)
        except (SearchError, ConfigError) as err:
            if not plan["sources"] and not plan["recheck"]:
                raise
            print(f"search discovery skipped: {err}", file=sys.stderr)
        else:
            plan["sources"] += [{**entry, "max_pages": search.max_pages} for entry in found]
    return plan


def match_phase(factory, story_id: int, crawl_counts: dict) -> dict:
    """Match the pages stored by this crawl (and any left pending by an earlier one)."""
    phase = MatchPhase.load(factory, focus_story_id=story_id)
    reporter = ProgressLines(interval=0.5)

    def progress(total: Counts) -> None:
        reporter.emit({**crawl_counts, **_merged(crawl_counts, total)})

    return _merged(crawl_counts, phase.run(on_page=progress))


def _merged(crawl_counts: dict, matched: Counts) -> dict:
    """Both phases count in `Counts` (e.g. matches_removed: by a 410 while crawling,
    by changed text when matching): the run's count is their sum."""
    merged = matched.as_dict()
    for key, value in merged.items():
        merged[key] = crawl_counts.get(key, 0) + value
    return merged


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m crawler.crawl_worker")
    parser.add_argument("--db", required=True)
    parser.add_argument("--story", type=int, required=True)
    parser.add_argument("--run", type=int, required=True)
    parser.add_argument("--set", action="append", default=[], metavar="NAME=VALUE", help="Scrapy setting override")
    args = parser.parse_args(argv)

    engine = make_engine(args.db)
    factory = session_factory(engine)
    settings = Settings()
    settings.setmodule(default_settings, priority="project")
    settings.update(
        {"COPYHOUND_DB": args.db, "COPYHOUND_STORY_ID": args.story, "COPYHOUND_RUN_ID": args.run, "COPYHOUND_PROGRESS_ENABLED": True},
        priority="cmdline",
    )
    for pair in args.set:
        name, sep, value = pair.partition("=")
        if not sep:
            parser.error(f"--set expects NAME=VALUE, got {pair!r}")
        settings.set(name, value, priority="cmdline")

    status, error, counts = "finished", None, {}
    try:
        plan = crawl_plan(factory, args.story)
        process = CrawlerProcess(settings)
        crawler = process.create_crawler(StorySpider)
        process.crawl(crawler, plan=plan)
        process.start()
        counts = stats_summary(crawler.stats.get_stats() or {})
        if crawler.stats.get_value("finish_reason") not in (None, "finished"):
            status = "interrupted"
        counts.update(match_phase(factory, args.story, counts))
    except Exception as exc:
        status, error = "failed", f"{type(exc).__name__}: {exc}"
        traceback.print_exc()
    with factory.begin() as session:
        CrawlRuns(session).finish(args.run, status=status, counts=counts, error=error)
    print(RESULT_PREFIX + json.dumps({"status": status, "error": error, "counts": counts}), flush=True)
    engine.dispose()
    return 0 if status == "finished" else 1


if __name__ == "__main__":
    sys.exit(main())
