"""Start a crawl in its own process and follow it.

No Scrapy import here: the CLI and the scheduler call `run_crawl`, which records a
crawl_runs row before starting the worker and its outcome after, so a worker that
dies (killed, out of memory) still leaves an honest record.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from storage.engine import make_engine, session_factory
from storage.models import CrawlRun
from storage.repositories import CrawlRuns, Stories

PROGRESS_PREFIX = "@progress "
RESULT_PREFIX = "@result "
DEFAULT_TIMEOUT = float(os.environ.get("COPYHOUND_CRAWL_TIMEOUT", "3600"))


@dataclass
class CrawlResult:
    run_id: int
    status: str
    counts: dict[str, Any] = field(default_factory=dict)
    error: str | None = None
    exit_code: int | None = None


def run_crawl(
    db_url: str,
    story_id: int,
    *,
    settings: Mapping[str, Any] | None = None,
    on_progress: Callable[[dict[str, Any]], None] | None = None,
    on_start: Callable[[subprocess.Popen], None] | None = None,
    timeout: float = DEFAULT_TIMEOUT,
) -> CrawlResult:
    """Crawl `story_id` in a worker process; `on_start` receives the process (so a
    service can forward a stop signal to it)."""
    engine = make_engine(db_url)
    factory = session_factory(engine)
    try:
        with factory.begin() as session:
            if Stories(session).get(story_id) is None:
                raise LookupError(f"no story with id {story_id} (see `copyhound seed list`)")
            run_id = CrawlRuns(session).start(story_id).id

        cmd = [sys.executable, "-m", "crawler.crawl_worker", "--db", db_url, "--story", str(story_id), "--run", str(run_id)]
        for name, value in (settings or {}).items():
            cmd += ["--set", f"{name}={value}"]
        result: dict[str, Any] = {}
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, errors="replace")
        if on_start:
            on_start(proc)
        stderr_tail = _follow(proc, on_progress, result, timeout)
        with factory.begin() as session:
            row = session.get(CrawlRun, run_id)
            if row.status == "running" or result.get("timed_out"):
                error = result.get("error") or f"crawl worker exited with code {proc.returncode}: " + " | ".join(stderr_tail[-3:])
                row = CrawlRuns(session).finish(run_id, status="failed", counts=result.get("counts") or row.counts, error=error)
            return CrawlResult(run_id=run_id, status=row.status, counts=dict(row.counts or {}), error=row.error, exit_code=proc.returncode)
    finally:
        engine.dispose()


def _follow(proc: subprocess.Popen, on_progress, result: dict, timeout: float) -> list[str]:
    """Read progress from the worker's stdout until it exits; return stderr's tail."""
    tail: list[str] = []

    def drain_stderr() -> None:
        for line in proc.stderr:
            tail.append(line.rstrip())
            del tail[:-20]

    def kill() -> None:
        result.update(timed_out=True, error=f"crawl exceeded its time limit of {timeout:.0f} s (COPYHOUND_CRAWL_TIMEOUT)")
        proc.kill()

    reader = threading.Thread(target=drain_stderr, daemon=True)
    reader.start()
    timer = threading.Timer(timeout, kill)
    timer.start()
    try:
        for line in proc.stdout:
            if line.startswith(PROGRESS_PREFIX) and on_progress:
                on_progress(json.loads(line[len(PROGRESS_PREFIX):]))
            elif line.startswith(RESULT_PREFIX):
                result.update(json.loads(line[len(RESULT_PREFIX):]))
        proc.wait()
    finally:
        timer.cancel()
    reader.join(timeout=5)
    return tail
