"""The work behind each CLI command; output formatting lives in `crawler.console`."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from rich.text import Text

from crawler import console
from crawler.crawling import run_crawl
from crawler.seeds import register_story, text_from_file, text_from_url
from storage.engine import StorageError, default_db_url, make_engine, normalise_db_url, session_factory, upgrade
from storage.repositories import CrawlRuns, Matches, Sources, Stories

# Errors a user can act on: printed as one line with exit code 1, no traceback.
USER_ERRORS = (ValueError, LookupError, StorageError, OSError)


def open_db(args: argparse.Namespace):
    """The session factory for --db (or the default), schema created or upgraded first."""
    url = normalise_db_url(args.db or default_db_url())
    engine = make_engine(url)
    upgrade(engine)
    return url, session_factory(engine)


def init(args: argparse.Namespace) -> int:
    url, _ = open_db(args)
    print(f"database ready: {console.safe_url(url)}")
    return 0


def seed_add(args: argparse.Namespace) -> int:
    seed = text_from_url(args.url) if args.url else text_from_file(args.file)
    sources = [("start_url", u) for u in args.start_url] + [("feed", u) for u in args.feed] + [("sitemap", u) for u in args.sitemap]
    if (args.email or args.webhook) and not args.holder:
        raise ValueError("--email and --webhook need --holder: alert destinations belong to a rights holder")
    _, factory = open_db(args)
    with factory.begin() as session:
        story, created = register_story(
            session,
            seed,
            title=args.title,
            holder=args.holder,
            canonical_url=args.canonical_url or args.url,
            sources=sources,
            max_depth=args.max_depth,
            max_pages=args.max_pages,
            emails=args.email,
            webhooks=[(u, args.webhook_secret_env) for u in args.webhook],
        )
        verb = "registered" if created else "already registered as"
        print(f"{verb} story {story.id}: {story.title} ({len(story.text.split())} words, {len(sources)} new sources)")
    return 0


def seed_list(args: argparse.Namespace) -> int:
    _, factory = open_db(args)
    with factory.begin() as session:
        console.print_stories(Stories(session).list())
    return 0


def seed_show(args: argparse.Namespace) -> int:
    _, factory = open_db(args)
    with factory.begin() as session:
        story = _story(session, args.story_id)
        console.print_story(story, Sources(session).for_story(story.id))
    return 0


def seed_remove(args: argparse.Namespace) -> int:
    _, factory = open_db(args)
    with factory.begin() as session:
        _story(session, args.story_id)
        Stories(session).remove(args.story_id)
    print(f"removed story {args.story_id} with its sources and matches")
    return 0


def crawl(args: argparse.Namespace) -> int:
    url, factory = open_db(args)
    with factory.begin() as session:
        story = _story(session, args.story_id)
        if not Sources(session).for_story(story.id):
            raise ValueError(f"story {story.id} has no sources: add --start-url, --feed or --sitemap")
    result = console.run_with_progress(lambda progress: run_crawl(url, args.story_id, on_progress=progress), quiet=args.quiet)
    for run in result.closed:
        console.err.print(Text(f"crawl run {run.run_id} had been left running; recorded as interrupted: {run.reason}"))
    console.print_crawl_result(result)
    return 0 if result.status == "finished" else 1


def runs(args: argparse.Namespace) -> int:
    _, factory = open_db(args)
    with factory.begin() as session:
        console.print_runs(CrawlRuns(session).latest(args.story, limit=args.limit), fmt=args.format)
    return 0


def matches(args: argparse.Namespace) -> int:
    _, factory = open_db(args)
    with factory.begin() as session:
        rows = Matches(session).list(story_id=args.story, kind=args.kind, status=args.status, site=args.site, since=args.since)
        console.print_matches(rows, fmt=args.format)
    return 0


def evaluate(args: argparse.Namespace) -> int:
    directory: Path = args.directory
    if not directory.is_dir():
        raise ValueError(f"{directory}: not a directory")
    if (directory / "pairs.csv").is_file():
        from crawler.evaluation.pairs import evaluate_pairs, format_pairs_table

        result, table = evaluate_pairs(directory), format_pairs_table
    elif (directory / "ground-truth.json").is_file():
        from crawler.evaluation.extraction import evaluate_extraction, format_extraction_table

        result, table = evaluate_extraction(directory), format_extraction_table
    else:
        raise ValueError(f"{directory}: has neither pairs.csv (matching) nor ground-truth.json (extraction)")
    if args.json:
        json.dump(result, sys.stdout, indent=2)
        sys.stdout.write("\n")
    else:
        print(table(result))
    return 0


def demo(args: argparse.Namespace) -> int:
    from crawler.demo_run import run_demo

    url, factory = open_db(args)
    return run_demo(url, factory, port=args.port)


def _story(session, story_id: int):
    story = Stories(session).get(story_id)
    if story is None:
        raise LookupError(f"no story with id {story_id} (see `copyhound seed list`)")
    return story
