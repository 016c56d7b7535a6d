"""Crawl runs left "running" by a hard kill: closed as interrupted, with the reason,
once their worker is provably gone, and never while it lives. Real processes killed
with SIGKILL, real SQLite and PostgreSQL."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta

import pytest
from alembic import command
from sqlalchemy import insert, inspect, select

from crawler.alerts.errors import ConfigError
from crawler.cli import main as cli
from crawler.crawling import ClosedRun, close_stale_runs, pid_alive, run_crawl, stale_run_age, this_host
from crawler.demo_run import DEMO_CRAWL_SETTINGS
from crawler.scheduling import ServiceSettings
from storage.engine import alembic_config, make_engine, upgrade
from storage.models import CrawlRun, utcnow
from storage.repositories import CrawlRuns, Sources
from tests.servers import LocalServer, Reply
from tests.test_alerts_support import make_story, subprocess_env
from tests.test_scheduling import ROOT, _Lines, service_process

HOST = socket.gethostname()
DAY = timedelta(days=1)

# Records a crawl run with itself as the worker (as run_crawl does), then waits on stdin.
REGISTRAR = """
import os, sys
from crawler.crawling import this_host
from storage.engine import make_engine, session_factory
from storage.repositories import CrawlRuns
engine = make_engine(sys.argv[1])
host, boot = this_host()
with session_factory(engine).begin() as session:
    run = CrawlRuns(session).start(int(sys.argv[2]), pid=os.getpid(), host=host, boot=boot)
engine.dispose()
print(run.id, flush=True)
sys.stdin.read()
"""


@dataclass
class Registrar:
    proc: subprocess.Popen
    run_id: int

    def kill(self) -> None:
        """SIGKILL: nothing gets a chance to close the run."""
        self.proc.kill()
        self.proc.wait(timeout=30)


@contextmanager
def registered_run(db_url: str, story_id: int) -> Iterator[Registrar]:
    proc = subprocess.Popen(
        [sys.executable, "-c", REGISTRAR, db_url, str(story_id)], cwd=ROOT, env=subprocess_env({}),
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        line = proc.stdout.readline()  # empty only once the process has ended
        assert line.strip().isdigit(), proc.stderr.read()
        yield Registrar(proc, int(line))
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(timeout=30)
        for stream in (proc.stdin, proc.stdout, proc.stderr):
            stream.close()


def runs_by_id(factory) -> dict[int, CrawlRun]:
    with factory() as s:
        return {r.id: r for r in s.scalars(select(CrawlRun).order_by(CrawlRun.id))}


def add_run(s, story_id: int | None, *, pid: int | None, host: str | None, boot: str | None, age: timedelta) -> int:
    run = CrawlRuns(s).start(story_id, pid=pid, host=host, boot=boot)
    run.started_at = utcnow() - age
    s.flush()
    return run.id


def wait_until_gone(pid: int) -> None:
    """Bounded wait for a process that is not our child (we cannot wait() on it)."""
    pause = threading.Event()
    for _ in range(600):
        if not pid_alive(pid):
            return
        pause.wait(0.05)
    raise AssertionError(f"process {pid} still alive")


# --- the rules ------------------------------------------------------------------------


def test_pid_alive_and_a_zombie_is_gone() -> None:
    assert pid_alive(os.getpid())
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    try:
        os.waitid(os.P_PID, proc.pid, os.WEXITED | os.WNOWAIT)  # exited, not reaped: a zombie
        os.kill(proc.pid, 0)  # the pid still answers...
        assert not pid_alive(proc.pid)  # ...but the worker is gone
    finally:
        proc.wait(timeout=30)
    assert not pid_alive(proc.pid)


def test_runs_elsewhere_or_without_a_worker_close_by_age_and_live_workers_never(
    session_factory, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("COPYHOUND_STALE_RUN_AGE", raising=False)
    story = make_story(session_factory)
    _, boot = this_host()
    with session_factory.begin() as s:
        elsewhere_old = add_run(s, story, pid=1234, host="elsewhere.example", boot="b", age=DAY + timedelta(hours=1))
        elsewhere_new = add_run(s, story, pid=1234, host="elsewhere.example", boot="b", age=timedelta(hours=3))
        legacy_old = add_run(s, story, pid=None, host=None, boot=None, age=2 * DAY)
        alive_old = add_run(s, story, pid=os.getpid(), host=HOST, boot=boot, age=30 * DAY)
        ended = add_run(s, story, pid=None, host=None, boot=None, age=3 * DAY)
        CrawlRuns(s).finish(ended, status="finished", counts={"pages": 1})

    with session_factory.begin() as s:
        assert close_stale_runs(s, story, max_age=timedelta(hours=48)) == [
            ClosedRun(legacy_old, story, "no worker recorded, started more than 48 h ago (COPYHOUND_STALE_RUN_AGE): presumed gone")
        ]
    with session_factory.begin() as s:  # the default age: 24 h
        assert close_stale_runs(s) == [ClosedRun(
            elsewhere_old, story,
            "worker 1234 on host elsewhere.example, started more than 24 h ago (COPYHOUND_STALE_RUN_AGE): presumed gone",
        )]
    monkeypatch.setenv("COPYHOUND_STALE_RUN_AGE", "7200")
    with session_factory.begin() as s:
        assert [c.run_id for c in close_stale_runs(s, story)] == [elsewhere_new]

    before = runs_by_id(session_factory)
    assert {i: r.status for i, r in before.items()} == {
        elsewhere_old: "interrupted", elsewhere_new: "interrupted", legacy_old: "interrupted",
        alive_old: "running", ended: "finished",
    }
    assert all(before[i].finished_at is not None for i in (elsewhere_old, elsewhere_new, legacy_old))
    assert before[alive_old].finished_at is None and before[ended].counts == {"pages": 1}
    with session_factory.begin() as s:  # twice: nothing more changes
        assert close_stale_runs(s) == []
    after = runs_by_id(session_factory)
    assert [(r.status, r.finished_at, r.error) for r in after.values()] == [
        (r.status, r.finished_at, r.error) for r in before.values()
    ]


def test_a_run_from_before_a_reboot_is_gone_whatever_holds_its_pid(session_factory) -> None:
    _, boot = this_host()
    if boot is None:
        pytest.skip("this system has no boot id")
    story = make_story(session_factory)
    with session_factory.begin() as s:
        # This very process holds the pid, but the run was recorded in an earlier boot.
        old_boot = add_run(s, story, pid=os.getpid(), host=HOST, boot="00000000-earlier-boot", age=timedelta(minutes=5))
        this_boot = add_run(s, story, pid=os.getpid(), host=HOST, boot=boot, age=timedelta(minutes=5))
    with session_factory.begin() as s:
        assert close_stale_runs(s) == [
            ClosedRun(old_boot, story, f"worker {os.getpid()} on host {HOST} is gone (the host restarted since)")
        ]
    assert runs_by_id(session_factory)[this_boot].status == "running"


def test_the_age_setting_is_checked(db_url, session_factory, monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    assert stale_run_age({}) == DAY
    assert stale_run_age({"COPYHOUND_STALE_RUN_AGE": "7200"}) == timedelta(hours=2)
    with pytest.raises(ConfigError, match="COPYHOUND_STALE_RUN_AGE must be a number, not 'a day'"):
        stale_run_age({"COPYHOUND_STALE_RUN_AGE": "a day"})
    assert ServiceSettings.from_env({}).stale_run_age == DAY.total_seconds()

    story = make_story(session_factory)
    with session_factory.begin() as s:
        Sources(s).add(story, "start_url", "http://127.0.0.1:9/", max_depth=0, max_pages=1)
    monkeypatch.setenv("COPYHOUND_STALE_RUN_AGE", "a day")
    assert cli(["--db", db_url, "crawl", str(story), "--quiet"]) == 1
    assert "COPYHOUND_STALE_RUN_AGE must be a number" in capsys.readouterr().err
    service = subprocess.run(
        [sys.executable, "-m", "crawler.cli", "--db", db_url, "run"], cwd=ROOT,
        env=subprocess_env({"COPYHOUND_STALE_RUN_AGE": "30"}), capture_output=True, text=True, timeout=60,
    )
    assert service.returncode == 1
    assert "copyhound: error: COPYHOUND_STALE_RUN_AGE must be at least 60, not 30" in service.stderr
    assert runs_by_id(session_factory) == {}  # a bad setting records nothing


# --- killed processes ------------------------------------------------------------------


def test_a_killed_run_is_closed_when_its_story_is_next_crawled_and_a_live_one_is_not(db_url, session_factory) -> None:
    story = make_story(session_factory)
    other = make_story(session_factory, holder="Other Wire")
    with session_factory.begin() as s:
        Sources(s).add(story, "start_url", "http://127.0.0.1:9/", max_depth=0, max_pages=1)
    with registered_run(db_url, story) as dead, registered_run(db_url, story) as live, \
            registered_run(db_url, other) as dead_other:
        dead.kill()
        dead_other.kill()

        result = run_crawl(db_url, story, settings={**DEMO_CRAWL_SETTINGS, "RETRY_TIMES": "0"})

        reason = f"worker {dead.proc.pid} on host {HOST} is gone"
        assert result.status == "finished", result.error
        assert result.closed == [ClosedRun(dead.run_id, story, reason)]
        runs = runs_by_id(session_factory)
        assert (runs[dead.run_id].status, runs[dead.run_id].error) == ("interrupted", reason)
        assert runs[dead.run_id].finished_at is not None
        assert (runs[live.run_id].status, runs[live.run_id].finished_at) == ("running", None)
        assert runs[dead_other.run_id].status == "running"  # another story's: closed by its own next crawl
        new = runs[result.run_id]
        assert (new.status, new.worker_host) == ("finished", HOST)
        assert new.worker_pid not in (None, os.getpid())  # the worker process, not its starter

        live.kill()
        with session_factory.begin() as s:
            assert close_stale_runs(s, story) == [ClosedRun(live.run_id, story, f"worker {live.proc.pid} on host {HOST} is gone")]
        with session_factory.begin() as s:
            assert close_stale_runs(s, story) == []
    again = runs_by_id(session_factory)
    assert (again[dead.run_id].finished_at, again[dead.run_id].error) == (runs[dead.run_id].finished_at, reason)


def test_a_crawl_killed_hard_with_its_worker_is_closed_by_the_next_crawl(db_url, session_factory, capsys) -> None:
    """`copyhound crawl` and its worker die by SIGKILL mid-crawl (as in an OOM kill of
    the group or a power cut): the next crawl of the story records why the run ended."""
    requested, release = threading.Event(), threading.Event()

    def slow_page(handler) -> Reply:
        requested.set()
        release.wait(timeout=60)
        return Reply(200, b"<html><head><title>Local</title></head><body><p>Nothing to see.</p></body></html>")

    story = make_story(session_factory)
    with LocalServer({"/start": slow_page}) as site:
        with session_factory.begin() as s:
            Sources(s).add(story, "start_url", site.url("/start"), max_depth=0, max_pages=1)
        crawl = subprocess.Popen(
            [sys.executable, "-m", "crawler.cli", "--db", db_url, "crawl", str(story), "--quiet"],
            cwd=ROOT, env=subprocess_env({}), stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE, text=True, start_new_session=True,
        )
        log = _Lines(crawl.stderr)
        try:
            assert requested.wait(timeout=120), "the crawl never fetched its start URL:\n" + log.text()
            [killed] = runs_by_id(session_factory).values()
            assert killed.status == "running" and killed.worker_pid not in (None, crawl.pid)
            os.killpg(crawl.pid, signal.SIGKILL)
            crawl.wait(timeout=30)
            wait_until_gone(killed.worker_pid)
        finally:
            release.set()
            if crawl.poll() is None:
                os.killpg(crawl.pid, signal.SIGKILL)
                crawl.wait(timeout=30)
        assert runs_by_id(session_factory)[killed.id].status == "running"  # nobody left to close it

        assert cli(["--db", db_url, "crawl", str(story), "--quiet"]) == 0
    err = " ".join(capsys.readouterr().err.split())  # the console wraps long lines
    reason = f"worker {killed.worker_pid} on host {HOST} is gone"
    assert f"crawl run {killed.id} had been left running; recorded as interrupted: {reason}" in err
    runs = runs_by_id(session_factory)
    assert (runs[killed.id].status, runs[killed.id].error) == ("interrupted", reason)
    assert [r.status for i, r in sorted(runs.items()) if i != killed.id] == ["finished"]


def test_the_service_closes_abandoned_runs_when_it_starts(db_url, session_factory) -> None:
    story = make_story(session_factory)
    other = make_story(session_factory, holder="Other Wire")
    with session_factory.begin() as s:
        legacy = add_run(s, None, pid=None, host=None, boot=None, age=2 * DAY)  # story removed, pre-0004 row
    with registered_run(db_url, story) as dead, registered_run(db_url, other) as live:
        dead.kill()
        with service_process(db_url, subprocess_env({"COPYHOUND_DISPATCH_INTERVAL": "1"})) as (service, log):
            assert log.wait_for("copyhound service running", timeout=60), log.text()
            runs = runs_by_id(session_factory)
            service.send_signal(signal.SIGTERM)
            service.wait(timeout=60)
        assert service.returncode == 0, log.text()
        reason = f"worker {dead.proc.pid} on host {HOST} is gone"
        assert (runs[dead.run_id].status, runs[dead.run_id].error) == ("interrupted", reason)
        assert runs[legacy].status == "interrupted" and "no worker recorded" in runs[legacy].error
        assert (runs[live.run_id].status, runs[live.run_id].finished_at) == ("running", None)
        assert f"crawl run {dead.run_id} of story {story} was left running: {reason}; recorded as interrupted" in log.text()


# --- the migration ---------------------------------------------------------------------


@pytest.fixture
def session_factory_at_0003(db_url: str):
    """A database at revision 0003 (the name `session_factory` is the conftest fixture's)."""
    from storage.engine import session_factory

    engine = make_engine(db_url)
    upgrade(engine, "0003")
    yield engine, session_factory(engine)
    engine.dispose()


def test_runs_from_before_0004_survive_it_and_close_by_age(session_factory_at_0003) -> None:
    engine, factory = session_factory_at_0003
    with engine.begin() as conn:  # only the columns revision 0003 has
        for age in (2 * DAY, timedelta(hours=1)):
            conn.execute(insert(CrawlRun.__table__).values(story_id=None, started_at=utcnow() - age, status="running", counts={}))
    upgrade(engine)
    with factory.begin() as s:
        closed = close_stale_runs(s)
    assert [c.run_id for c in closed] == [1]
    assert {i: r.status for i, r in runs_by_id(factory).items()} == {1: "interrupted", 2: "running"}

    config = alembic_config()
    with engine.begin() as conn:
        config.attributes["connection"] = conn
        command.downgrade(config, "0003")
    assert "worker_pid" not in {c["name"] for c in inspect(engine).get_columns("crawl_runs")}
    upgrade(engine)
    assert {i: r.status for i, r in runs_by_id(factory).items()} == {1: "interrupted", 2: "running"}
