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

from crawler import settings as default_settings
from crawler.extensions import ProgressLines
from crawler.monitoring import Counts, MatchPhase
from crawler.pipelines import stats_summary
from crawler.spiders.story import StorySpider
from storage.engine import make_engine, session_factory
from storage.repositories import CrawlRuns, Sources, Stories


def crawl_plan(factory, story_id: int) -> dict:
    with factory.begin() as session:
        story = Stories(session).get(story_id)
        if story is None:
            raise ValueError(f"no story with id {story_id}")
        sources = Sources(session).for_story(story_id)
        return {
            "story_id": story_id,
            "max_pages": max((s.max_pages for s in sources), default=0),
            "sources": [{"kind": s.kind, "url": s.url, "max_depth": s.max_depth} for s in sources],
        }


def match_phase(factory, story_id: int, crawl_counts: dict) -> dict:
    """Match the pages stored by this crawl (and any left pending by an earlier one)."""
    phase = MatchPhase.load(factory, focus_story_id=story_id)
    reporter = ProgressLines(interval=0.5)

    def progress(total: Counts) -> None:
        reporter.emit({**crawl_counts, **_merged(crawl_counts, total)})

    return _merged(crawl_counts, phase.run(on_page=progress))


def _merged(crawl_counts: dict, matched: Counts) -> dict:
    merged = matched.as_dict()
    for key in ("pages_stored", "pages_unchanged", "matches_seen"):
        merged[key] = crawl_counts.get(key, 0) + merged[key]
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
    print("@result " + json.dumps({"status": status, "error": error, "counts": counts}), flush=True)
    engine.dispose()
    return 0 if status == "finished" else 1


if __name__ == "__main__":
    sys.exit(main())
