"""The extraction pool: real worker processes, real pages, real crashes and hangs.

The hostile pages are ordinary HTML carrying a marker that `hostile_job` (run in the
workers instead of plain `extract_page`) turns into a dead or stuck worker: no page
is known to crash lxml on demand, and the pool must survive one that does.
"""

from __future__ import annotations

import asyncio
import os
import signal
import time
from pathlib import Path

import pytest

from crawler.extraction import ExtractionError, content_hash, extract
from crawler.extraction_pool import (
    ExtractionCrashed,
    ExtractionPool,
    ExtractionTimeout,
    extract_page,
    workers_from_env,
)
from tests.servers import html_page
from tests.test_cli import STORY

PAGES = [
    html_page("Ferry yard to close its dry dock", STORY),
    html_page("Council rejects harbour plan", [p[::-1] for p in STORY]),
    "<html><body><article><p>Only a short quoted paragraph from the story, "
    "worth keeping.</p></article></body></html>",
    html_page("Caf\u00e9 owners \u00e0 la gare", ["Un paragraphe en fran\u00e7ais avec des accents."] * 6).decode("utf-8"),
]
CRASH = "<!-- bench:crash -->"
HANG = "<!-- bench:hang -->"
STUCK = "<!-- bench:stuck -->"


def hostile_job(html, url):
    """Runs in a worker: dies, sleeps, or sleeps deaf to signals on a marker."""
    text = html.decode("utf-8", "replace") if isinstance(html, bytes) else html
    if CRASH in text:
        os._exit(3)  # as a segfault in a parser would: no exception, no cleanup
    if HANG in text:
        time.sleep(600)  # a loop the soft time limit ends
    if STUCK in text:
        signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGALRM})
        time.sleep(600)  # stuck where no signal reaches: only killing the worker helps
    return extract_page(html, url)


def run(coro):
    return asyncio.run(coro)


async def extract_all(pool: ExtractionPool, pages: list, *, urls=None) -> list:
    urls = urls or [f"http://127.0.0.1/p{i}" for i in range(len(pages))]
    return await asyncio.gather(*(pool.extract(p, u) for p, u in zip(pages, urls)), return_exceptions=True)


def test_results_equal_inline_extraction() -> None:
    urls = [f"http://127.0.0.1/p{i}" for i in range(len(PAGES))]
    with ExtractionPool(2, timeout=20) as pool:
        results = run(extract_all(pool, PAGES * 3, urls=urls * 3))
    for result, page, url in zip(results, PAGES * 3, urls * 3):
        assert not isinstance(result, BaseException), result
        expected = extract(page, url=url)
        assert result.extracted == expected
        assert result.content_hash == content_hash(expected.text)
        assert result.seconds >= 0


def test_inline_mode_gives_the_same_results_and_errors() -> None:
    pool = ExtractionPool(0)
    assert pool.inline and pool.worker_pids() == []
    result = run(pool.extract(PAGES[0], "http://127.0.0.1/a"))
    assert result.extracted == extract(PAGES[0], url="http://127.0.0.1/a")
    with pytest.raises(ExtractionError):
        run(pool.extract(b"\x00\x01binary" * 10, "http://127.0.0.1/bin"))
    pool.close()
    with pytest.raises(RuntimeError, match="closed"):
        run(pool.extract(PAGES[0], "http://127.0.0.1/a"))


def test_a_page_without_text_is_an_extraction_error_from_the_worker() -> None:
    with ExtractionPool(1, timeout=20) as pool:
        results = run(extract_all(pool, [b"%PDF-1.4 not a page", PAGES[0]]))
    assert isinstance(results[0], ExtractionError) and "PDF" in str(results[0])
    assert results[1].extracted.text == extract(PAGES[0], url="http://127.0.0.1/p1").text


def test_a_page_that_kills_its_worker_is_dropped_alone_and_the_pool_recovers() -> None:
    crash = html_page("Crash", STORY).decode().replace("<body>", "<body>" + CRASH)
    batch = PAGES + [crash] + PAGES
    with ExtractionPool(2, timeout=20, job=hostile_job) as pool:
        pool.start()
        before = set(pool.worker_pids())
        results = run(extract_all(pool, batch))
        crashed = [r for r in results if isinstance(r, ExtractionCrashed)]
        assert len(crashed) == 1 and isinstance(results[len(PAGES)], ExtractionCrashed)
        good = [r for i, r in enumerate(results) if i != len(PAGES)]
        assert all(not isinstance(r, BaseException) for r in good), good
        assert pool.crashes == 1 and pool.rebuilds >= 1
        # The rebuilt pool works, in new processes.
        again = run(extract_all(pool, PAGES))
        assert [r.extracted.text for r in again] == [extract(p, url=f"http://127.0.0.1/p{i}").text for i, p in enumerate(PAGES)]
        assert set(pool.worker_pids()).isdisjoint(before)


def test_a_slow_page_times_out_without_costing_its_worker() -> None:
    hang = html_page("Hang", STORY).decode().replace("<body>", "<body>" + HANG)
    with ExtractionPool(1, timeout=5.0, job=hostile_job) as pool:
        pool.start()
        pids = set(pool.worker_pids())
        results = run(extract_all(pool, [hang, PAGES[0]]))
        assert isinstance(results[0], ExtractionTimeout)
        assert not isinstance(results[1], BaseException)
        assert pool.rebuilds == 0 and set(pool.worker_pids()) == pids


def stopped(process, timeout: float = 30.0) -> bool:
    """Whether the worker process has ended. The executor's own thread reaps its
    workers too, which can leave `is_alive()` stale, so the OS is asked as well: a
    process that is gone or a zombie (killed, not yet reaped) runs no more code."""
    process.join(timeout)
    if process.exitcode is not None:
        return True
    try:
        state = Path(f"/proc/{process.pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return True
    except OSError:
        return not process.is_alive()
    return state in ("Z", "X")


def test_a_stuck_worker_is_killed_and_the_pool_rebuilt() -> None:
    stuck = html_page("Stuck", STORY).decode().replace("<body>", "<body>" + STUCK)
    with ExtractionPool(2, timeout=10.0, hard_timeout=12.0, job=hostile_job) as pool:
        pool.start()
        old = list(pool._main.executor._processes.values())
        results = run(extract_all(pool, [stuck, *PAGES]))
        assert isinstance(results[0], ExtractionTimeout)
        assert all(not isinstance(r, BaseException) for r in results[1:]), results
        assert pool.timeouts == 1 and pool.rebuilds >= 1
        for process in old:
            assert stopped(process), f"old worker {process.pid} still running"
        assert not isinstance(run(pool.extract(PAGES[0], "http://127.0.0.1/x")), BaseException)


def test_close_stops_every_worker() -> None:
    pool = ExtractionPool(2, timeout=20)
    pool.start()
    processes = list(pool._main.executor._processes.values())
    assert len(processes) == 2 and all(p.is_alive() for p in processes)
    pool.close()
    assert all(stopped(p) for p in processes)
    with pytest.raises(RuntimeError, match="closed"):
        run(pool.extract(PAGES[0]))


def test_worker_count_comes_from_the_environment(monkeypatch) -> None:
    monkeypatch.setenv("COPYHOUND_EXTRACT_WORKERS", "0")
    assert workers_from_env() == 0 and ExtractionPool().inline
    monkeypatch.setenv("COPYHOUND_EXTRACT_WORKERS", "many")
    with pytest.raises(ValueError, match="COPYHOUND_EXTRACT_WORKERS"):
        workers_from_env()
    monkeypatch.delenv("COPYHOUND_EXTRACT_WORKERS")
    assert workers_from_env() == (os.cpu_count() or 1)
