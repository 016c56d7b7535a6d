"""Per-story crawl schedules and the `copyhound run` service (APScheduler 3.x).

Jobs live in the copyhound database (SQLAlchemyJobStore, table
`copyhound_scheduler_jobs`) so schedules survive restarts and `copyhound schedule
set` can change them from another process. Job state is pickled: jobs name a
module-level function by "module:function" text and carry plain arguments (the
database URL without its password, the story id), never sessions or lambdas.

Every crawl job runs `crawler.crawling.run_crawl`, which starts a worker process
and records the crawl run. `max_instances=1` per story means never two crawls of
one story at once; `coalesce` turns a backlog of missed runs into one run;
`misfire_grace_time` drops runs that are too late; jitter spreads load.
"""

from __future__ import annotations

import logging
import os
import re
import signal
import subprocess
import sys
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy.engine import make_url

from crawler.alerts.errors import env_number
from crawler.crawling import DEFAULT_STALE_RUN_AGE, close_stale_runs, run_crawl, stale_run_age
from storage.engine import make_engine, session_factory
from storage.models import utcnow
from storage.repositories import CrawlRuns, Stories

logger = logging.getLogger("copyhound.scheduler")

JOBS_TABLE = "copyhound_scheduler_jobs"
CRAWL_JOB = "crawler.scheduling:crawl_job"
DISPATCH_JOB = "crawler.alerts.dispatcher:dispatch_job"
DISPATCH_JOB_ID = "alerts-dispatch"
MIN_INTERVAL = timedelta(minutes=1)
_DURATION = re.compile(r"(\d+)\s*([smhdw])", re.IGNORECASE)
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_DOW_NAMES = ("sun", "mon", "tue", "wed", "thu", "fri", "sat", "sun")


def crawl_job_id(story_id: int) -> str:
    return f"crawl-story-{story_id}"


# --- settings and parsing ---------------------------------------------------------


@dataclass(frozen=True)
class ServiceSettings:
    """`copyhound run` settings, from COPYHOUND_* environment variables."""

    max_crawls: int = 4
    misfire_grace: int = 900
    dispatch_every: float = 60.0
    shutdown_timeout: float = 120.0
    stale_run_age: float = DEFAULT_STALE_RUN_AGE

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> ServiceSettings:
        env = os.environ if env is None else env

        return cls(
            max_crawls=int(env_number(env, "COPYHOUND_MAX_CONCURRENT_CRAWLS", cls.max_crawls, minimum=1)),
            misfire_grace=int(env_number(env, "COPYHOUND_MISFIRE_GRACE", cls.misfire_grace, minimum=1)),
            dispatch_every=env_number(env, "COPYHOUND_DISPATCH_INTERVAL", cls.dispatch_every, minimum=0.5),
            shutdown_timeout=env_number(env, "COPYHOUND_SHUTDOWN_TIMEOUT", cls.shutdown_timeout, minimum=0),
            stale_run_age=stale_run_age(env).total_seconds(),
        )


def parse_duration(text: str) -> timedelta:
    """"90s", "15m", "1h", "1d", "1h30m" -> timedelta; ValueError with the accepted forms."""
    compact = text.strip().replace(" ", "")
    parts = _DURATION.findall(compact)
    if not parts or "".join(n + u for n, u in parts).lower() != compact.lower():
        raise ValueError(f"not a duration: {text!r} (use e.g. 30m, 1h, 6h, 1d or 1h30m)")
    return timedelta(seconds=sum(int(n) * _UNITS[u.lower()] for n, u in parts))


def _crontab_dow(field: str) -> str:
    """Crontab weekday numbers (0 or 7 = Sunday) as names: APScheduler 3 counts 0 = Monday."""

    def name(token: str) -> str:
        if token.isdigit():
            number = int(token)
            if number > 7:
                raise ValueError(f"day of week {number} out of range 0-7")
            return _DOW_NAMES[number]
        return token

    out = []
    for item in field.split(","):
        base, slash, step = item.partition("/")
        if "-" in base:
            low, high = base.split("-", 1)
            base = f"{name(low)}-{name(high)}"
        else:
            base = name(base)
        out.append(base + (slash + step if slash else ""))
    return ",".join(out)


def make_trigger(*, every: timedelta | None = None, cron: str | None = None, jitter: int | None = None,
                 start: datetime | None = None) -> Any:
    """An APScheduler trigger, in UTC, with validated input and a default jitter.

    Default jitter: 5% of an interval (at most 5 min), 60 s for cron, so many stories
    scheduled on the hour do not all start at the same second.
    """
    from apscheduler.triggers.cron import CronTrigger
    from apscheduler.triggers.interval import IntervalTrigger

    if (every is None) == (cron is None):
        raise ValueError("give exactly one of --every DURATION or --cron EXPRESSION")
    if jitter is not None and jitter < 0:
        raise ValueError(f"jitter must be 0 or more seconds, not {jitter}")
    if every is not None:
        if every < MIN_INTERVAL:
            raise ValueError(f"interval {every} is too short: crawl at most once a minute")
        jitter = int(min(300, every.total_seconds() * 0.05)) if jitter is None else jitter
        return IntervalTrigger(seconds=int(every.total_seconds()), start_date=start, timezone=UTC, jitter=jitter or None)
    fields = (cron or "").split()
    if len(fields) != 5:
        raise ValueError(f"cron expression {cron!r} needs 5 fields: minute hour day month weekday (e.g. \"0 */6 * * *\")")
    minute, hour, day, month, dow = fields
    try:
        return CronTrigger(
            minute=minute, hour=hour, day=day, month=month, day_of_week=_crontab_dow(dow),
            timezone=UTC, start_date=start, jitter=(60 if jitter is None else jitter) or None,
        )
    except ValueError as err:
        raise ValueError(f"invalid cron expression {cron!r}: {err}") from None


def schedule_from_spec(spec: Mapping[str, Any]) -> dict[str, Any]:
    """Keyword arguments for `make_trigger` from a monitor-file entry.

    Accepts {"every": "1h"} or {"cron": "0 6 * * *"}, with optional "jitter"
    (seconds): the same choices as `copyhound schedule set`.
    """
    unknown = set(spec) - {"every", "cron", "jitter"}
    if unknown:
        raise ValueError(f"unknown schedule key(s) {', '.join(sorted(unknown))}: use every, cron, jitter")
    every = parse_duration(str(spec["every"])) if spec.get("every") else None
    jitter = spec.get("jitter")
    return {"every": every, "cron": spec.get("cron") or None, "jitter": int(jitter) if jitter is not None else None}


def stored_db_url(db_url: str) -> str:
    """The URL kept in pickled job state: without a password (the jobs table is data)."""
    url = make_url(db_url)
    return url._replace(password=None).render_as_string(hide_password=False) if url.password else db_url


# --- scheduler construction --------------------------------------------------------


def _edit_only_class() -> type:
    from apscheduler.schedulers.base import BaseScheduler

    class EditOnlyScheduler(BaseScheduler):
        """Reads and writes the job store, never runs a job: no loop, no thread.

        A paused BackgroundScheduler is not enough: on shutdown its thread can wake,
        see a state that is no longer "paused", and fire (and reschedule) due jobs.
        """

        def shutdown(self, wait: bool = True) -> None:
            super().shutdown(wait)

        def wakeup(self) -> None:
            pass

    return EditOnlyScheduler


def make_scheduler(db_url: str, *, background: bool = True, settings: ServiceSettings | None = None,
                   edit_only: bool = False) -> Any:
    """A scheduler on copyhound's database; not started."""
    from apscheduler.executors.pool import ThreadPoolExecutor
    from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
    from apscheduler.schedulers.background import BackgroundScheduler
    from apscheduler.schedulers.blocking import BlockingScheduler

    settings = settings or ServiceSettings()
    # Our engine, not a URL: it carries the SQLite busy timeout, so the job store waits
    # for crawl workers' writes instead of failing with "database is locked".
    store = SQLAlchemyJobStore(engine=make_engine(db_url), tablename=JOBS_TABLE)
    cls = _edit_only_class() if edit_only else BackgroundScheduler if background else BlockingScheduler
    return cls(
        jobstores={"default": store},
        executors={
            "default": ThreadPoolExecutor(settings.max_crawls),
            "alerts": ThreadPoolExecutor(1),
        },
        job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": settings.misfire_grace},
        timezone=UTC,
    )


class _Managed:
    """A scheduler for editing the job store from a command: no job ever runs."""

    def __init__(self, db_url: str) -> None:
        self.scheduler = make_scheduler(db_url, edit_only=True)

    def __enter__(self) -> Any:
        self.scheduler.start(paused=True)
        return self.scheduler

    def __exit__(self, *exc: object) -> None:
        self.scheduler.shutdown(wait=False)


def set_schedule(db_url: str, story_id: int, *, every: timedelta | None = None, cron: str | None = None,
                 jitter: int | None = None, start: datetime | None = None) -> dict[str, Any]:
    """Create or replace a story's crawl schedule; returns its `list_schedules` row."""
    trigger = make_trigger(every=every, cron=cron, jitter=jitter, start=start)
    engine = make_engine(db_url)
    try:
        with session_factory(engine).begin() as session:
            story = Stories(session).get(story_id)
            if story is None:
                raise LookupError(f"no story with id {story_id} (see `copyhound seed list`)")
            title = story.title
    finally:
        engine.dispose()
    with _Managed(db_url) as scheduler:
        job = scheduler.add_job(
            CRAWL_JOB, trigger=trigger, args=[stored_db_url(db_url), story_id], id=crawl_job_id(story_id),
            name=f"crawl story {story_id}: {title[:80]}", replace_existing=True,
            coalesce=True, max_instances=1,
            # An explicit first run: a start of "now" would otherwise be a moment in the
            # past by the time the trigger is asked, and the first run an interval later.
            **({"next_run_time": start} if start is not None else {}),
        )
        return _row(job)


def remove_schedule(db_url: str, story_id: int) -> bool:
    from apscheduler.jobstores.base import JobLookupError

    with _Managed(db_url) as scheduler:
        try:
            scheduler.remove_job(crawl_job_id(story_id))
        except JobLookupError:
            return False
    return True


def list_schedules(db_url: str) -> list[dict[str, Any]]:
    with _Managed(db_url) as scheduler:
        return sorted((_row(job) for job in scheduler.get_jobs()), key=lambda r: (r["story_id"] is None, r["story_id"] or 0, r["id"]))


def _row(job: Any) -> dict[str, Any]:
    story_id = job.args[1] if job.func_ref == CRAWL_JOB and len(job.args) > 1 else None
    trigger = job.trigger
    return {
        "id": job.id,
        "story_id": story_id,
        "name": job.name,
        "trigger": str(trigger),
        "jitter": getattr(trigger, "jitter", None),
        "next_run": job.next_run_time,
        "max_instances": job.max_instances,
        "coalesce": job.coalesce,
        "misfire_grace_time": job.misfire_grace_time,
    }


# --- the crawl job and the service --------------------------------------------------


class _Service:
    """State of the `copyhound run` process shared with its job threads."""

    def __init__(self) -> None:
        self.db_url: str | None = None
        self.stopping = threading.Event()
        self.lock = threading.Lock()
        self.running: dict[int, datetime] = {}  # story id -> crawl start
        self.workers: dict[int, subprocess.Popen] = {}  # story id -> its crawl worker

    def resolve(self, stored: str) -> str:
        """The service's own URL (with its password) when the job names the same database."""
        if self.db_url and stored_db_url(self.db_url) == stored:
            return self.db_url
        return stored


SERVICE = _Service()


def crawl_job(db_url: str, story_id: int) -> str:
    """Scheduler entry point: one crawl of one story in a worker process."""
    if SERVICE.stopping.is_set():
        return "skipped: service stopping"
    url = SERVICE.resolve(db_url)
    started = utcnow()
    with SERVICE.lock:
        SERVICE.running[story_id] = started
    try:
        logger.info("crawl of story %d starting", story_id)
        result = run_crawl(url, story_id, on_start=lambda proc: _register_worker(story_id, proc))
        if SERVICE.stopping.is_set() and result.status not in ("finished", "interrupted"):
            _record_interrupted(url, story_id, since=started)
            result.status = "interrupted"
        logger.info("crawl of story %d %s (run %d, exit code %s)", story_id, result.status, result.run_id, result.exit_code)
        return result.status
    except LookupError as err:  # the story was removed: its schedule has no purpose
        logger.warning("crawl job for story %d: %s", story_id, err)
        return "skipped: no such story"
    finally:
        with SERVICE.lock:
            SERVICE.running.pop(story_id, None)
            SERVICE.workers.pop(story_id, None)


def _register_worker(story_id: int, proc: subprocess.Popen) -> None:
    with SERVICE.lock:
        SERVICE.workers[story_id] = proc


def _record_interrupted(db_url: str, story_id: int, *, since: datetime) -> int:
    """Runs of this story started by this job and ended by the stop (still running, or
    failed because the worker was killed): recorded as interrupted."""
    engine = make_engine(db_url)
    count = 0
    try:
        with session_factory(engine).begin() as session:
            runs = CrawlRuns(session)
            for run in runs.latest(story_id, limit=10):
                if run.started_at >= since and run.status in ("running", "failed"):
                    note = "stopped with copyhound run"
                    runs.finish(run.id, status="interrupted", counts=run.counts or {},
                                error=f"{run.error} ({note})" if run.error else note)
                    count += 1
    finally:
        engine.dispose()
    return count


def _close_abandoned_runs(db_url: str, settings: ServiceSettings) -> int:
    """Runs left "running" by a service or worker that was killed hard (SIGKILL, power
    loss) and whose worker is provably gone: recorded as interrupted, with the reason."""
    engine = make_engine(db_url)
    try:
        with session_factory(engine).begin() as session:
            closed = close_stale_runs(session, max_age=timedelta(seconds=settings.stale_run_age))
    finally:
        engine.dispose()
    for run in closed:
        logger.warning("crawl run %d of story %s was left running: %s; recorded as interrupted",
                       run.run_id, run.story_id, run.reason)
    return len(closed)


def _signal_children(signum: int) -> list[int]:
    """Send `signum` to the crawl workers still running; their pids."""
    with SERVICE.lock:
        workers = [p for p in SERVICE.workers.values() if p.poll() is None]
    for proc in workers:
        try:
            proc.send_signal(signum)
        except ProcessLookupError:
            pass
    return [p.pid for p in workers]


def serve(db_url: str, *, settings: ServiceSettings | None = None, ready: Callable[[Any], None] | None = None) -> int:
    """Run the scheduler until SIGTERM/SIGINT; returns the exit code (0 on a clean stop).

    On a signal: no new job starts, running crawl workers get SIGTERM (Scrapy then
    stops gracefully and records the run as interrupted), and the service waits up to
    COPYHOUND_SHUTDOWN_TIMEOUT for them; workers still alive then are killed and
    their runs recorded as interrupted. A hard kill allows none of this: the runs it
    left behind are closed when the service starts again.
    """
    settings = settings or ServiceSettings.from_env()
    SERVICE.db_url = db_url
    SERVICE.stopping.clear()
    received: list[int] = []

    def on_signal(signum: int, _frame: Any) -> None:
        # Only note it: Event.set() here deadlocks if the signal lands while the main
        # thread holds that Event's lock.
        received.append(signum)

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGTERM, signal.SIGINT)}
    scheduler = make_scheduler(db_url, settings=settings)
    try:
        _close_abandoned_runs(db_url, settings)
        scheduler.start()
        scheduler.add_job(
            DISPATCH_JOB, trigger="interval", seconds=settings.dispatch_every, args=[stored_db_url(db_url)],
            id=DISPATCH_JOB_ID, name="deliver alerts", replace_existing=True, executor="alerts",
            next_run_time=datetime.now(UTC),
        )
        logger.info("copyhound service running: %d scheduled jobs", len(scheduler.get_jobs()))
        if ready:
            ready(scheduler)
        # Short waits: a signal the kernel hands to one of the scheduler's threads runs
        # its handler only when the main thread next runs Python code; a long wait hid
        # SIGTERM for up to that long.
        tick = threading.Event()
        while not received:
            tick.wait(timeout=0.5)
        logger.info("signal %s received: stopping", signal.Signals(received[0]).name)
        SERVICE.stopping.set()
        scheduler.pause()
        _stop_crawls(settings, forward=_should_forward(received[0]))
        scheduler.shutdown(wait=False)
        return 0
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        SERVICE.db_url = None


def _should_forward(signum: int) -> bool:
    """SIGINT from a terminal already reached the workers (same process group); a
    second signal would make Scrapy stop uncleanly, so only forward when not on a tty."""
    return signum != signal.SIGINT or not sys.stdin.isatty()


def _stop_crawls(settings: ServiceSettings, *, forward: bool) -> None:
    with SERVICE.lock:
        running = dict(SERVICE.running)
    if not running:
        return
    forwarded = _signal_children(signal.SIGTERM) if forward else []
    logger.info("waiting for %d running crawl(s) to stop: stories %s (SIGTERM sent to workers %s)",
                len(running), sorted(running), forwarded)
    deadline = threading.Event()
    waited = 0.0
    step = 0.2
    while waited < settings.shutdown_timeout:
        with SERVICE.lock:
            if not SERVICE.running:
                return
        deadline.wait(step)
        waited += step
    killed = _signal_children(signal.SIGKILL)
    logger.warning("crawl workers still running after %.0f s (COPYHOUND_SHUTDOWN_TIMEOUT): killed %s",
                   settings.shutdown_timeout, killed)
    for _ in range(100):  # let the job threads record the outcome, bounded
        with SERVICE.lock:
            if not SERVICE.running:
                return
        deadline.wait(step)
