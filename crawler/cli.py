"""`copyhound` command line: argument parsing only; each command calls one function."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from crawler.cli_types import http_url, positive_int
from crawler import alert_commands, commands, config_commands, review_commands
from storage.engine import DEFAULT_DB_ENV


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="copyhound",
        description="Find republications of your news stories on the web.",
    )
    parser.add_argument(
        "--db",
        metavar="URL_OR_PATH",
        help=f"database: a SQLAlchemy URL or a SQLite file path (default: ${DEFAULT_DB_ENV} or ./copyhound.db)",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("init", help="create or upgrade the database schema")
    p.set_defaults(func=commands.init)

    seed = sub.add_parser("seed", help="register and manage the stories to monitor")
    seed_sub = seed.add_subparsers(dest="seed_command", required=True, metavar="SEED_COMMAND")
    p = seed_sub.add_parser("add", help="register a story from a URL or a file")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--url", type=http_url, help="fetch the story from this page")
    src.add_argument("--file", type=Path, help="read the story from a text or HTML file")
    p.add_argument("--title", help="story title (default: from the page or the file's first line)")
    p.add_argument("--holder", help="rights holder who owns the story")
    p.add_argument("--canonical-url", type=http_url, help="the story's own URL (never reported as a copy)")
    p.add_argument("--start-url", action="append", default=[], type=http_url, help="site to crawl for copies (repeatable)")
    p.add_argument("--feed", action="append", default=[], type=http_url, help="RSS/Atom feed to check (repeatable)")
    p.add_argument("--sitemap", action="append", default=[], type=http_url, help="sitemap to check (repeatable)")
    p.add_argument("--max-depth", type=positive_int, default=2, help="link hops from each start URL (default 2)")
    p.add_argument("--max-pages", type=positive_int, default=200, help="pages per crawl (default 200)")
    p.add_argument("--email", action="append", default=[], help="alert this address (repeatable)")
    p.add_argument("--webhook", action="append", default=[], type=http_url, help="alert this webhook URL (repeatable)")
    p.add_argument("--webhook-secret-env", help="environment variable holding the webhook signing secret")
    p.set_defaults(func=commands.seed_add)
    p = seed_sub.add_parser("list", help="list registered stories")
    p.set_defaults(func=commands.seed_list)
    p = seed_sub.add_parser("show", help="show one story, its sources and its text")
    p.add_argument("story_id", type=positive_int, metavar="ID")
    p.set_defaults(func=commands.seed_show)
    p = seed_sub.add_parser("remove", help="remove a story with its sources and matches")
    p.add_argument("story_id", type=positive_int, metavar="ID")
    p.set_defaults(func=commands.seed_remove)

    p = sub.add_parser("crawl", help="crawl a story's sources now and match what is found")
    p.add_argument("story_id", type=positive_int, metavar="STORY_ID")
    p.add_argument("--quiet", action="store_true", help="no progress counter")
    p.set_defaults(func=commands.crawl)

    p = sub.add_parser("runs", help="list recent crawl runs: when, how they ended, what they found")
    p.add_argument("--story", type=positive_int, help="only this story")
    p.add_argument("--limit", type=positive_int, default=20, help="how many, newest first (default 20)")
    p.add_argument("--format", choices=["table", "json"], default="table")
    p.set_defaults(func=commands.runs)

    p = sub.add_parser("matches", help="list the copies found")
    p.add_argument("--story", type=positive_int, help="only this story")
    p.add_argument("--kind", choices=["copy", "excerpt", "rewrite", "spun", "translation"])
    p.add_argument("--status", help="e.g. active, removed, licensed")
    p.add_argument("--site", help="only copies on this site (as listed, e.g. example.com)")
    p.add_argument("--since", type=review_commands.since_value, metavar="WHEN",
                   help="only copies first seen since then: a date, a date-time (UTC) or an age (24h, 7d)")
    p.add_argument("--format", choices=["table", "csv", "json"], default="table")
    p.set_defaults(func=commands.matches)
    alert_commands.add_matches_mark(p)

    p = sub.add_parser("eval", help="score the matcher (pairs.csv) or extraction (ground-truth.json) on a directory")
    p.add_argument("directory", type=Path, metavar="DIR")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.set_defaults(func=commands.evaluate)

    p = sub.add_parser("demo", help="run the whole pipeline against a local demo web")
    p.add_argument("--port", type=positive_int, default=8950, help="port of the demo web (default 8950)")
    p.set_defaults(func=commands.demo)

    alert_commands.add_commands(sub)
    config_commands.add_commands(sub)
    review_commands.add_commands(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.func(args) or 0
    except KeyboardInterrupt:
        print("copyhound: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # output piped into `head` and the like: not an error
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except commands.USER_ERRORS as exc:
        print(f"copyhound: error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
