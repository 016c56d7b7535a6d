"""CLI for reviewing copies: `report` (HTML report of a story) and `evidence` (a pack for
one match), plus the `--since` value of `matches`.

`add_commands(subparsers)` registers the commands on copyhound's parser; the work is
in `crawler.reporting` and `crawler.evidence`.
"""

from __future__ import annotations

import argparse
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

from rich.console import Console
from rich.text import Text

from crawler.cli_types import positive_int

_RELATIVE = re.compile(r"^\s*(\d+)\s*([mhdw])\s*$")
_UNITS = {"m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def since_value(value: str) -> datetime:
    """`--since`: an ISO date or date-time (UTC unless it says otherwise), or an age
    such as 30m, 24h, 7d, 2w."""
    rel = _RELATIVE.match(value)
    if rel:
        return datetime.now(UTC) - timedelta(**{_UNITS[rel.group(2)]: int(rel.group(1))})
    try:
        when = datetime.fromisoformat(value.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected a date (2025-03-01), a date-time (2025-03-01T14:00) or an age (24h, 7d), got {value!r}"
        ) from None
    return when.replace(tzinfo=UTC) if when.tzinfo is None else when.astimezone(UTC)



def add_commands(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("report", help="write a self-contained HTML report of a story's copies")
    p.add_argument("story_id", type=positive_int, metavar="STORY")
    p.add_argument("-o", "--output", type=Path, metavar="FILE", help="where to write it (default: report-story-STORY.html)")
    p.set_defaults(func=cmd_report)

    p = sub.add_parser("evidence", help="write an evidence pack (raw page, WARC, hashes, passages, summary) for a match")
    p.add_argument("match_id", type=positive_int, metavar="MATCH_ID")
    p.add_argument("-o", "--output", type=Path, metavar="DIR", help="directory to write (default: evidence-MATCH_ID)")
    p.set_defaults(func=cmd_evidence)


def _out() -> Console:
    return Console(highlight=False, soft_wrap=True)


def cmd_report(args: argparse.Namespace) -> int:
    from crawler.commands import open_db
    from crawler.reporting import write_report

    path = args.output or Path(f"report-story-{args.story_id}.html")
    _, factory = open_db(args)
    data = write_report(factory, args.story_id, path)
    copies = sum(1 for c in data.copies if c.status != "false_positive")
    _out().print(Text(f"report on story {data.story_id} ({copies} copies on {len(data.by_site)} sites) written to {path}"))
    for line in data.missing:
        _out().print(Text(f"missing: {line}"))
    return 0


def cmd_evidence(args: argparse.Namespace) -> int:
    from crawler.commands import open_db
    from crawler.evidence import write_evidence

    directory = args.output or Path(f"evidence-{args.match_id}")
    _, factory = open_db(args)
    pack = write_evidence(factory, args.match_id, directory)
    _out().print(Text(f"evidence for match {args.match_id} written to {directory}: {', '.join(sorted(pack.files))}"))
    for line in pack.missing:
        _out().print(Text(f"missing: {line}"))
    return 0
