"""Terminal output: tables, the live crawl counter, CSV and JSON exports."""

from __future__ import annotations

import csv
import json
import sys
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from rich.console import Console
from rich.table import Column, Table
from rich.text import Text
from sqlalchemy.engine import make_url

from storage.models import CrawlRun, Match, Source, Story

# Piped output is read by people too: wide enough that URLs are not cut.
out = Console(highlight=False, soft_wrap=False, width=None if sys.stdout.isatty() else 160)
err = Console(stderr=True, highlight=False)


def safe_url(url: str) -> str:
    """A database URL fit to print: never shows a password; SQLite as its file path."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite" and parsed.database:
        return parsed.database
    return parsed.render_as_string(hide_password=True)


def print_json(rows: Any) -> None:
    json.dump(rows, sys.stdout, indent=2)
    sys.stdout.write("\n")


def print_stories(stories: Sequence[Story]) -> None:
    if not stories:
        out.print("no stories yet: add one with `copyhound seed add`")
        return
    table = Table("id", "title", "holder", "words", "matches", "created")
    for s in stories:
        table.add_row(
            str(s.id), Text(s.title), Text(s.holder.name if s.holder else "-"), str(len(s.text.split())),
            str(len(s.matches)), s.created_at.strftime("%Y-%m-%d %H:%M"),
        )
    out.print(table)


def print_story(story: Story, sources: Sequence[Source]) -> None:
    out.print(Text(f"story {story.id}: {story.title}", style="bold"))
    out.print(Text(f"holder: {story.holder.name if story.holder else '-'}   url: {story.canonical_url or '-'}"))
    for source in sources:
        out.print(Text(f"source: {source.kind} {source.url} (depth {source.max_depth}, {source.max_pages} pages)"))
    out.print(Text(f"{len(story.text.split())} words:"))
    out.print(Text(story.text))


def match_rows(matches: Iterable[Match]) -> list[dict[str, Any]]:
    return [
        {
            "id": m.id,
            "story_id": m.story_id,
            "kind": m.kind,
            "status": m.status,
            "confidence": round(m.confidence, 3),
            "story_reused": round(m.story_coverage, 3),
            "page_from_story": round(m.page_coverage, 3),
            "site": m.page.site,
            "url": m.page.url,
            "first_seen": m.first_seen.isoformat(timespec="seconds"),
            "last_seen": m.last_seen.isoformat(timespec="seconds"),
        }
        for m in matches
    ]


def print_matches(matches: Sequence[Match], *, fmt: str = "table") -> None:
    rows = match_rows(matches)
    if fmt == "json":
        print_json(rows)
    elif fmt == "csv":
        writer = csv.DictWriter(sys.stdout, fieldnames=list(rows[0]) if rows else ["id"])
        writer.writeheader()
        writer.writerows(rows)
    elif not rows:
        out.print("no matches")
    else:
        table = Table("id", "story", "kind", "reused", "site", Column("url", overflow="fold"), "first seen", "status")
        for r in rows:
            table.add_row(
                str(r["id"]), str(r["story_id"]), r["kind"], f"{r['story_reused']:.0%}", Text(r["site"] or ""),
                Text(r["url"]), r["first_seen"][:16].replace("T", " "), r["status"],
            )
        out.print(table)


def run_rows(runs: Iterable[CrawlRun]) -> list[dict[str, Any]]:
    return [
        {
            "id": r.id,
            "story_id": r.story_id,
            "status": r.status,
            "started": r.started_at.isoformat(timespec="seconds"),
            "finished": r.finished_at.isoformat(timespec="seconds") if r.finished_at else None,
            "pages": (r.counts or {}).get("pages", 0),
            "new_matches": (r.counts or {}).get("matches_new", 0),
            "removed": (r.counts or {}).get("matches_removed", 0),
            "error": r.error,
        }
        for r in runs
    ]


def print_runs(runs: Sequence[CrawlRun], *, fmt: str = "table") -> None:
    rows = run_rows(runs)
    if fmt == "json":
        print_json(rows)
    elif not rows:
        out.print("no crawl runs yet: start one with `copyhound crawl STORY_ID`")
    else:
        table = Table("id", "story", "status", "started", "finished", "pages", "new", "removed",
                      Column("error", overflow="fold"))
        for r in rows:
            table.add_row(
                str(r["id"]), str(r["story_id"] or "-"), r["status"], r["started"][:16].replace("T", " "),
                (r["finished"] or "-")[:16].replace("T", " "), str(r["pages"]), str(r["new_matches"]),
                str(r["removed"]), Text(r["error"] or ""),
            )
        out.print(table)


def run_with_progress(work: Callable[[Callable[[dict], None]], Any], *, quiet: bool = False) -> Any:
    """Run `work(on_progress)` with a live one-line counter on a terminal."""
    if quiet:
        return work(lambda counts: None)
    if not err.is_terminal:
        return work(lambda counts: err.print(progress_line(counts)))
    with err.status("crawling…") as status:
        return work(lambda counts: status.update(progress_line(counts)))


def progress_line(counts: dict[str, Any]) -> str:
    return (
        f"crawling: {counts.get('requests', 0)} requests, {counts.get('pages', 0)} pages, "
        f"{counts.get('matches_new', 0)} new matches, {sum(counts.get('errors', {}).values())} errors"
    )


def print_crawl_result(result) -> None:
    c = result.counts
    errors = ", ".join(f"{k} {v}" for k, v in sorted(c.get("errors", {}).items())) or "none"
    skipped = ", ".join(f"{k.removeprefix('skipped/')} {v}" for k, v in sorted(c.items()) if k.startswith("skipped/")) or "none"
    out.print(
        f"crawl run {result.run_id} {result.status}: {c.get('requests', 0)} requests, {c.get('pages', 0)} pages "
        f"({c.get('pages_stored', 0)} new or changed, {c.get('pages_unchanged', 0)} unchanged, "
        f"{c.get('not_modified', 0)} not modified); matches: {c.get('matches_new', 0)} new, "
        f"{c.get('matches_removed', 0)} removed, {c.get('matches_reappeared', 0)} reappeared; "
        f"{c.get('alerts_queued', 0)} alerts queued; "
        f"skipped: {skipped}; errors: {errors}"
    )
    if result.error:
        err.print(Text(f"crawl error: {result.error}"))
