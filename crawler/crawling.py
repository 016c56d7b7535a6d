"""Start a crawl in its own process and follow it.

No Scrapy import here: the CLI and the scheduler call `run_crawl`, which records a
crawl_runs row before starting the worker and its outcome after, so a worker that
dies (killed, out of memory) still leaves an honest record.

When both die at once (SIGKILL of the service and its workers, power loss) nobody is
left to record anything and the row stays "running". Each row therefore names the
process that will close it, and `close_stale_runs` (at each crawl start and service
start) closes a run as interrupted once that process is provably gone.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session

from crawler.alerts.errors import env_number
from storage.engine import make_engine, session_factory
from storage.models import CrawlRun, utcnow
from storage.repositories import CrawlRuns, Stories

PROGRESS_PREFIX = "@progress "
RESULT_PREFIX = "@result "
DEFAULT_TIMEOUT = float(os.environ.get("COPYHOUND_CRAWL_TIMEOUT", "3600"))
STALE_RUN_AGE = "COPYHOUND_STALE_RUN_AGE"
DEFAULT_STALE_RUN_AGE = 24 * 3600.0
BOOT_ID = Path("/proc/sys/kernel/random/boot_id")


@dataclass(frozen=True)
class ClosedRun:
    """A run found abandoned and recorded as interrupted."""

    run_id: int
    story_id: int | None
    reason: str


@dataclass
class CrawlResult:
    run_id: int
    status: str
    counts: dict[str, Any] = field(default_factory=dict)
    error: str | None = None
    exit_code: int | None = None
    closed: list[ClosedRun] = field(default_factory=list)  # abandoned runs of the story closed first


def stale_run_age(env: Mapping[str, str] | None = None) -> timedelta:
    """COPYHOUND_STALE_RUN_AGE, in seconds (default 24 h): when a run's worker cannot
    be asked (another host, or a run from before workers were recorded), the age after
    which the run is presumed abandoned. Keep it above COPYHOUND_CRAWL_TIMEOUT, after
    which no crawl is still running."""
    env = os.environ if env is None else env
    return timedelta(seconds=env_number(env, STALE_RUN_AGE, DEFAULT_STALE_RUN_AGE, minimum=60))


def this_host() -> tuple[str, str | None]:
    """Host name and boot id (Linux; None elsewhere): a pid names a process only on its
    own host and boot, and no process outlives a reboot."""
    try:
        boot = BOOT_ID.read_text().strip() or None
    except OSError:
        boot = None
    return socket.gethostname(), boot


def pid_alive(pid: int) -> bool:
    """Whether process `pid` exists here. A zombie (dead, not yet reaped: an orphan in a
    container whose init does not reap) is not alive; when in doubt, it is."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, belongs to another user
        return True
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0]
    except (OSError, IndexError):
        return True
    return state not in ("Z", "X")


def gone_reason(run: CrawlRun, *, host: str, boot: str | None, now: datetime, max_age: timedelta) -> str | None:
    """Why `run`'s worker is known to be gone; None while it may still be running.

    On this host its pid is asked, and a run from an earlier boot is gone whatever
    holds that pid now. A worker elsewhere cannot be asked: its run (or one that
    names no worker) is presumed gone only once older than `max_age`.
    """
    pid, where = run.worker_pid, run.worker_host
    if pid is not None and where == host:
        if boot and run.worker_boot and run.worker_boot != boot:
            return f"worker {pid} on host {where} is gone (the host restarted since)"
        return None if pid_alive(pid) else f"worker {pid} on host {where} is gone"
    if now - run.started_at < max_age:
        return None
    who = f"worker {pid} on host {where}" if pid is not None else "no worker recorded"
    return f"{who}, started more than {_duration(max_age)} ago ({STALE_RUN_AGE}): presumed gone"


def _duration(age: timedelta) -> str:
    seconds = int(age.total_seconds())
    for unit, size in (("h", 3600), ("min", 60)):
        if seconds % size == 0:
            return f"{seconds // size} {unit}"
    return f"{seconds} s"


def close_stale_runs(session: Session, story_id: int | None = None, *, max_age: timedelta | None = None) -> list[ClosedRun]:
    """Record as interrupted the running runs (of `story_id`, or all) whose worker is
    provably gone, never one whose worker is alive. In the caller's transaction,
    which stays short: each run costs one signal-0 and a /proc read."""
    max_age = stale_run_age() if max_age is None else max_age
    host, boot = this_host()
    now = utcnow()
    runs = CrawlRuns(session)
    closed = []
    for run in runs.running(story_id):
        reason = gone_reason(run, host=host, boot=boot, now=now, max_age=max_age)
        if reason is not None and runs.interrupt(run.id, reason):
            closed.append(ClosedRun(run.id, run.story_id, reason))
    return closed


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
    service can forward a stop signal to it). Abandoned runs of the story are closed
    first, in the transaction that records this one."""
    max_age = stale_run_age()
    host, boot = this_host()
    engine = make_engine(db_url)
    factory = session_factory(engine)
    try:
        with factory.begin() as session:
            if Stories(session).get(story_id) is None:
                raise LookupError(f"no story with id {story_id} (see `copyhound seed list`)")
            closed = close_stale_runs(session, story_id, max_age=max_age)
            # This process owns the run until its worker exists.
            run_id = CrawlRuns(session).start(story_id, pid=os.getpid(), host=host, boot=boot).id

        cmd = [sys.executable, "-m", "crawler.crawl_worker", "--db", db_url, "--story", str(story_id), "--run", str(run_id)]
        for name, value in (settings or {}).items():
            cmd += ["--set", f"{name}={value}"]
        result: dict[str, Any] = {}
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, errors="replace")
        with factory.begin() as session:
            CrawlRuns(session).set_worker(run_id, proc.pid)
        if on_start:
            on_start(proc)
        stderr_tail = _follow(proc, on_progress, result, timeout)
        with factory.begin() as session:
            row = session.get(CrawlRun, run_id)
            if row.status == "running" or result.get("timed_out"):
                error = result.get("error") or f"crawl worker exited with code {proc.returncode}: " + " | ".join(stderr_tail[-3:])
                row = CrawlRuns(session).finish(run_id, status="failed", counts=result.get("counts") or row.counts, error=error)
            return CrawlResult(run_id=run_id, status=row.status, counts=dict(row.counts or {}), error=row.error,
                               exit_code=proc.returncode, closed=closed)
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
