"""CLI for configuration: `monitor check|apply FILE` and `sources add|list|remove`.

`add_commands(subparsers)` registers both on copyhound's parser. Parsing is here;
the work is in `crawler.monitor_file` (validation), `crawler.monitor_apply` (the
database) and `storage.config_repositories`. `python -m crawler.config_commands`
runs these commands alone.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from rich.console import Console
from rich.table import Table
from rich.text import Text

from crawler import console
from crawler.cli_types import positive_int
from crawler.search.discovery import MAX_RESULTS_LIMIT


def _print(*objects) -> None:
    width = None if sys.stdout.isatty() else 200
    Console(highlight=False, width=width).print(*objects)


def _depth(value: str) -> int:
    try:
        number = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {value!r}") from None
    if number < 0:
        raise argparse.ArgumentTypeError(f"expected 0 or more link hops, got {number}")
    return number


def _max_results(value: str) -> int:
    number = positive_int(value)
    if number > MAX_RESULTS_LIMIT:
        raise argparse.ArgumentTypeError(f"expected at most {MAX_RESULTS_LIMIT} results, got {number}")
    return number


def _http_url(value: str) -> str:
    from urllib.parse import urlsplit

    if not value.startswith(("http://", "https://")) or not urlsplit(value).hostname:
        raise argparse.ArgumentTypeError(f"expected an http(s) URL, got {value!r}")
    return value


def add_commands(sub: argparse._SubParsersAction) -> None:
    """Register `monitor` and `sources` on copyhound's subcommands."""
    monitor = sub.add_parser("monitor", help="stories, sources, schedules and alerts from a monitor file (TOML)")
    msub = monitor.add_subparsers(dest="monitor_command", required=True, metavar="MONITOR_COMMAND")
    p = msub.add_parser("check", help="validate a monitor file; touches nothing")
    p.add_argument("file", type=Path, metavar="FILE")
    p.set_defaults(func=cmd_monitor_check)
    p = msub.add_parser("apply", help="validate, then register or update everything the file lists")
    p.add_argument("file", type=Path, metavar="FILE")
    p.add_argument("--prune", action="store_true",
                   help="remove sources of the file's stories that the file no longer lists")
    p.set_defaults(func=cmd_monitor_apply)

    sources = sub.add_parser("sources", help="where to look for copies of each story")
    ssub = sources.add_subparsers(dest="sources_command", required=True, metavar="SOURCES_COMMAND")
    p = ssub.add_parser("add", help="add start URLs, feeds, sitemaps or search discovery to a story")
    p.add_argument("story_id", type=positive_int, metavar="STORY")
    p.add_argument("--start-url", action="append", default=[], type=_http_url, help="site to crawl (repeatable)")
    p.add_argument("--feed", action="append", default=[], type=_http_url, help="RSS/Atom feed (repeatable)")
    p.add_argument("--sitemap", action="append", default=[], type=_http_url, help="sitemap (repeatable)")
    p.add_argument("--search", action="store_true",
                   help="find candidates by searching the story's phrases (COPYHOUND_SEARCH_PROVIDER)")
    p.add_argument("--max-results", type=_max_results, help="search: candidate URLs per crawl (default 50)")
    p.add_argument("--max-phrases", type=positive_int, help="search: phrases searched per crawl (default 5)")
    p.add_argument("--max-depth", type=_depth, default=2, help="link hops from each start URL (default 2)")
    p.add_argument("--max-pages", type=positive_int, default=200, help="pages per crawl (default 200)")
    p.set_defaults(func=cmd_sources_add, usage_error=p.error)
    p = ssub.add_parser("list", help="list sources, of all stories or one")
    p.add_argument("story_id", type=positive_int, nargs="?", metavar="STORY")
    p.add_argument("--format", choices=["table", "json"], default="table")
    p.set_defaults(func=cmd_sources_list)
    p = ssub.add_parser("remove", help="remove a source")
    p.add_argument("source_id", type=positive_int, metavar="ID")
    p.set_defaults(func=cmd_sources_remove)


# --- commands -----------------------------------------------------------------------


def _open(args: argparse.Namespace):
    from crawler.commands import open_db

    return open_db(args)


def _load(path: Path):
    """The validated file, or None after printing each problem on its own line."""
    from crawler.monitor_file import MonitorFileError, load_monitor_file

    try:
        return load_monitor_file(path)
    except MonitorFileError as err:
        for problem in err.problems:
            print(f"copyhound: error: {problem}", file=sys.stderr)
        return None


def _search_warning(config) -> None:
    from crawler.search.providers import search_configured

    if any(s.search is not None and s.search.enabled for s in config.stories):
        problem = search_configured()
        if problem:
            print(f"copyhound: warning: stories use search discovery, but {problem}", file=sys.stderr)


def cmd_monitor_check(args: argparse.Namespace) -> int:
    config = _load(args.file)
    if config is None:
        return 1
    sources = sum(len(s.sources) + bool(s.search and s.search.enabled) for s in config.stories)
    schedules = sum(1 for s in config.stories if s.schedule)
    _print(Text(f"{args.file}: ok: {len(config.holders)} holder(s), {len(config.stories)} story(ies), "
                f"{sources} source(s), {schedules} schedule(s)"))
    _search_warning(config)
    return 0


def cmd_monitor_apply(args: argparse.Namespace) -> int:
    from crawler.monitor_apply import apply_monitor

    config = _load(args.file)
    if config is None:
        return 1
    url, factory = _open(args)
    report = apply_monitor(config, url, factory, prune=args.prune)
    for line in report.lines:
        _print(Text(line))
    _search_warning(config)
    return 0


def cmd_sources_add(args: argparse.Namespace) -> int:
    from storage.config_repositories import SourceAdmin
    from storage.repositories import Sources, Stories

    if not (args.start_url or args.feed or args.sitemap or args.search):
        args.usage_error("give at least one of --start-url, --feed, --sitemap or --search")
    if (args.max_results or args.max_phrases) and not args.search:
        args.usage_error("--max-results and --max-phrases go with --search")
    _, factory = _open(args)
    added = []
    with factory.begin() as session:
        if Stories(session).get(args.story_id) is None:
            raise LookupError(f"no story with id {args.story_id} (see `copyhound seed list`)")
        repo = Sources(session)
        pairs = [("start_url", u) for u in args.start_url] + [("feed", u) for u in args.feed] + [
            ("sitemap", u) for u in args.sitemap]
        for kind, url in pairs:
            added.append(repo.add(args.story_id, kind, url, max_depth=args.max_depth, max_pages=args.max_pages))
        if args.search:
            options = {"max_results": args.max_results or 50, "max_phrases": args.max_phrases or 5}
            added.append(SourceAdmin(session).add_search(args.story_id, options=options, max_pages=args.max_pages))
        lines = [f"source {s.id}: story {s.story_id} {s.kind} {s.url}{_options(s.options)}" for s in added]
    for line in lines:
        _print(Text(line))
    if args.search:
        from crawler.search.providers import search_configured

        problem = search_configured()
        if problem:
            print(f"copyhound: warning: search discovery is on, but {problem}", file=sys.stderr)
    return 0


def cmd_sources_list(args: argparse.Namespace) -> int:
    from storage.config_repositories import SourceAdmin
    from storage.repositories import Stories

    _, factory = _open(args)
    with factory.begin() as session:
        if args.story_id is not None and Stories(session).get(args.story_id) is None:
            raise LookupError(f"no story with id {args.story_id} (see `copyhound seed list`)")
        rows = [
            {"id": s.id, "story_id": s.story_id, "story": s.story.title, "kind": s.kind, "url": s.url,
             "max_depth": s.max_depth, "max_pages": s.max_pages, "options": s.options or {}}
            for s in SourceAdmin(session).list(args.story_id)
        ]
    if args.format == "json":
        console.print_json(rows)
        return 0
    if not rows:
        _print("no sources: add them with `copyhound sources add STORY --start-url URL` or a monitor file")
        return 0
    table = Table("id", "story", "kind", "url", "depth", "pages", "options")
    for r in rows:
        table.add_row(str(r["id"]), str(r["story_id"]), r["kind"], Text(r["url"]), str(r["max_depth"]),
                      str(r["max_pages"]), Text(_options(r["options"]).strip(" ()")))
    _print(table)
    return 0


def cmd_sources_remove(args: argparse.Namespace) -> int:
    from storage.config_repositories import SourceAdmin

    _, factory = _open(args)
    with factory.begin() as session:
        if not SourceAdmin(session).remove(args.source_id):
            raise LookupError(f"no source with id {args.source_id} (see `copyhound sources list`)")
    _print(f"removed source {args.source_id}")
    return 0


def _options(options: dict | None) -> str:
    if not options:
        return ""
    return " (" + ", ".join(f"{k}={v}" for k, v in sorted(options.items())) + ")"


# --- standalone entry point ---------------------------------------------------------
