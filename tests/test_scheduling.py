"""Schedules in the database (APScheduler 3 SQLAlchemyJobStore) and the `copyhound run`
service: persistence across restarts, job options, input errors, and a graceful
SIGTERM while a real crawl subprocess is running."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from crawler.cli import main as cli
from crawler.scheduling import (
    CRAWL_JOB,
    crawl_job_id,
    list_schedules,
    make_scheduler,
    make_trigger,
    parse_duration,
    remove_schedule,
    schedule_from_spec,
    set_schedule,
    stored_db_url,
)
from storage.models import Alert, CrawlRun
from storage.repositories import Sources
from tests.servers import LocalServer, Reply
from tests.test_alerts_support import SECRET, Receiver, add_copy, make_story, subprocess_env, webhook_env

ROOT = Path(__file__).resolve().parent.parent


def test_schedules_persist_across_a_scheduler_restart(db_url, session_factory) -> None:
    story = make_story(session_factory)
    other = make_story(session_factory, holder="Other", title="Other story")
    start = datetime.now(UTC) + timedelta(minutes=10)
    row = set_schedule(db_url, story, every=timedelta(hours=1), jitter=0, start=start)
    assert row["next_run"] == start.replace(microsecond=start.microsecond)
    set_schedule(db_url, other, cron="30 6 * * 1-5", jitter=0)
    # A brand-new scheduler on the same database sees both jobs, with their options.
    scheduler = make_scheduler(db_url)
    scheduler.start(paused=True)
    try:
        jobs = {job.id: job for job in scheduler.get_jobs()}
    finally:
        scheduler.shutdown(wait=False)
    job = jobs[crawl_job_id(story)]
    assert job.func_ref == CRAWL_JOB and job.args == (stored_db_url(db_url), story)
    assert (job.max_instances, job.coalesce, job.misfire_grace_time) == (1, True, 900)
    assert job.trigger.interval == timedelta(hours=1)
    cron = jobs[crawl_job_id(other)]
    assert cron.next_run_time.weekday() < 5 and (cron.next_run_time.hour, cron.next_run_time.minute) == (6, 30)
    # Replacing keeps one job per story; removing drops it.
    set_schedule(db_url, story, every=timedelta(hours=2), jitter=0)
    rows = list_schedules(db_url)
    assert [r["story_id"] for r in rows] == [story, other]
    assert "2:00:00" in rows[0]["trigger"]
    assert remove_schedule(db_url, story) and not remove_schedule(db_url, story)
    assert [r["story_id"] for r in list_schedules(db_url)] == [other]


def test_password_is_not_kept_in_the_job_store() -> None:
    assert stored_db_url("postgresql+psycopg://u:s3cret@db/x") == "postgresql+psycopg://u@db/x"
    assert stored_db_url("sqlite:////tmp/x.db") == "sqlite:////tmp/x.db"


def test_cron_weekdays_are_crontab_numbers() -> None:
    # crontab: 0 = Sunday (APScheduler 3 alone would read 0 as Monday).
    trigger = make_trigger(cron="0 9 * * 0", jitter=0)
    monday = datetime(2026, 11, 23, 12, tzinfo=UTC)
    assert trigger.get_next_fire_time(None, monday).weekday() == 6
    trigger = make_trigger(cron="0 9 * * 1-5", jitter=0)
    friday_evening = datetime(2026, 11, 27, 12, tzinfo=UTC)
    assert trigger.get_next_fire_time(None, friday_evening).weekday() == 0


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"every": timedelta(seconds=30)}, "too short"),
        ({"cron": "* * *"}, "needs 5 fields"),
        ({"cron": "99 * * * *"}, "invalid cron expression"),
        ({}, "exactly one of"),
        ({"every": timedelta(hours=1), "jitter": -1}, "jitter"),
    ],
)
def test_bad_schedules_are_clear_errors(kwargs, message) -> None:
    with pytest.raises(ValueError, match=message):
        make_trigger(**kwargs)


def test_durations_and_monitor_file_specs() -> None:
    assert parse_duration("1h30m") == timedelta(minutes=90)
    assert parse_duration("2d") == timedelta(days=2)
    for bad in ("", "1x", "h", "1h 2"):
        with pytest.raises(ValueError, match="not a duration"):
            parse_duration(bad)
    assert schedule_from_spec({"every": "6h", "jitter": 30}) == {"every": timedelta(hours=6), "cron": None, "jitter": 30}
    with pytest.raises(ValueError, match="unknown schedule key"):
        schedule_from_spec({"every": "1h", "at": "noon"})


def test_schedule_cli_set_list_remove(db_url, session_factory, capsys) -> None:
    story = make_story(session_factory)
    assert cli(["--db", db_url, "schedule", "set", str(story), "--every", "6h", "--jitter", "0"]) == 0
    assert f"story {story}: interval[6:00:00]" in capsys.readouterr().out
    assert cli(["--db", db_url, "schedule", "list", "--format", "json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [(r["story_id"], r["max_instances"], r["coalesce"]) for r in rows] == [(story, 1, True)]
    assert datetime.fromisoformat(rows[0]["next_run"]) > datetime.now(UTC)
    assert cli(["--db", db_url, "schedule", "list"]) == 0
    assert "next run (UTC)" in capsys.readouterr().out
    assert cli(["--db", db_url, "schedule", "set", "999", "--every", "1h"]) == 1
    assert "no story with id 999" in capsys.readouterr().err
    assert cli(["--db", db_url, "schedule", "set", str(story), "--cron", "61 * * * *"]) == 1
    assert "invalid cron expression" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        cli(["--db", db_url, "schedule", "set", str(story), "--every", "soon"])
    assert "not a duration" in capsys.readouterr().err
    assert cli(["--db", db_url, "schedule", "remove", str(story)]) == 0
    assert cli(["--db", db_url, "schedule", "remove", str(story)]) == 1


class _Lines:
    """Collect a subprocess's stderr lines in a thread, to wait for one (bounded)."""

    def __init__(self, stream) -> None:
        self.lines: list[str] = []
        self.cond = threading.Condition()
        self.thread = threading.Thread(target=self._read, args=(stream,), daemon=True)
        self.thread.start()

    def _read(self, stream) -> None:
        for line in stream:
            with self.cond:
                self.lines.append(line)
                self.cond.notify_all()

    def wait_for(self, text: str, timeout: float) -> bool:
        with self.cond:
            return self.cond.wait_for(lambda: any(text in line for line in self.lines), timeout=timeout)

    def text(self) -> str:
        with self.cond:
            return "".join(self.lines)


@contextmanager
def service_process(db_url: str, env: dict[str, str]) -> Iterator[tuple[subprocess.Popen, _Lines]]:
    """`copyhound run` in a subprocess with its stderr collected; killed on the way out
    if the test left it running."""
    service = subprocess.Popen(
        [sys.executable, "-m", "crawler.cli", "--db", db_url, "run"],
        cwd=ROOT, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        yield service, _Lines(service.stderr)
    finally:
        if service.poll() is None:
            service.kill()
            service.wait(timeout=30)


def test_run_service_crawls_dispatches_and_stops_gracefully_on_sigterm(db_url, session_factory) -> None:
    """`copyhound run` starts the due crawl (a real worker process) and delivers alerts;
    SIGTERM while the crawl is in flight ends with exit 0 and an honest crawl record."""
    requested, release = threading.Event(), threading.Event()

    def slow_page(handler) -> Reply:
        requested.set()
        release.wait(timeout=60)
        return Reply(200, b"<html><head><title>Local</title></head><body><p>Nothing to see.</p></body></html>")

    with LocalServer({"/start": slow_page}) as site, Receiver() as receiver:
        story = make_story(session_factory, webhooks=[receiver.url])
        with session_factory.begin() as s:
            Sources(s).add(story, "start_url", site.url("/start"), max_depth=0, max_pages=1)
        add_copy(session_factory, story, "https://copier.example/fish")  # an alert for the dispatcher job
        assert cli(["--db", db_url, "schedule", "set", str(story), "--every", "1h", "--start", "now", "--jitter", "0"]) == 0

        env = subprocess_env(webhook_env(COPYHOUND_DISPATCH_INTERVAL="1", COPYHOUND_SHUTDOWN_TIMEOUT="60"))
        with service_process(db_url, env) as (service, log):
            try:
                assert requested.wait(timeout=120), "the scheduled crawl never fetched its start URL:\n" + log.text()
                with session_factory() as s:
                    assert [r.status for r in s.scalars(select(CrawlRun))] == ["running"]
                assert log.wait_for("sent alert", timeout=60), log.text()
                service.send_signal(signal.SIGTERM)
                assert log.wait_for("waiting for 1 running crawl(s) to stop", timeout=60), log.text()
                release.set()
                service.wait(timeout=120)
            finally:
                release.set()
        output = log.text()
        assert service.returncode == 0, output
        ids = receiver.ids()
    with session_factory() as s:
        runs = list(s.scalars(select(CrawlRun)))
        alerts = list(s.scalars(select(Alert)))
    assert len(runs) == 1 and runs[0].status in ("interrupted", "finished") and runs[0].finished_at is not None, output
    assert [a.status for a in alerts] == ["sent"] and ids == [alerts[0].delivery_id]
    # The schedule survives the service: the next run is an hour on.
    rows = list_schedules(db_url)
    assert rows[0]["next_run"] > datetime.now(UTC) + timedelta(minutes=50)
    assert SECRET not in output and SECRET.removeprefix("whsec_") not in output


def test_sigterm_with_nothing_running_exits_zero(db_url, session_factory) -> None:
    make_story(session_factory)
    with service_process(db_url, subprocess_env({"COPYHOUND_DISPATCH_INTERVAL": "1"})) as (service, log):
        assert log.wait_for("copyhound service running", timeout=60), log.text()
        service.send_signal(signal.SIGINT)
        service.wait(timeout=60)
    assert service.returncode == 0, log.text()
    assert "signal SIGINT received: stopping" in log.text()
