"""Text extraction in worker processes, awaited from asyncio.

Why: trafilatura costs tens of milliseconds of CPU per article page. Run in the
crawl's own process it holds the GIL and the reactor stops downloading while it
works, so a crawl can never go faster than one core can extract. Here pages are
extracted by a `ProcessPoolExecutor` (one worker per core by default) while the
reactor keeps fetching.

Scraped pages are hostile, so one page must never cost more than itself:

* each job runs under a soft time limit inside the worker (SIGALRM), which ends
  a slow extraction without ending the worker;
* a page that still holds its worker past the hard limit (stuck in C code, or
  ignoring signals) gets the pool's processes killed, and the pool is rebuilt;
* a worker that dies (segfault in a parser, out of memory) breaks the whole
  pool, and every page in flight fails with it although only one caused it: the
  pool is rebuilt, and those pages are retried one at a time in a single-worker
  "isolation" lane, where a failure is surely the page's own.

Only plain data crosses the process boundary (the HTML as str or bytes, the URL;
back: `Extracted` and the content hash). No Scrapy here: the pipeline adapter is
`crawler.pipelines.ExtractPipeline`, and tests drive the pool with plain asyncio.
"""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
import os
import signal
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass

from crawler.extraction import Extracted, ExtractionError, content_hash, extract

__all__ = [
    "DEFAULT_TIMEOUT",
    "ExtractionCrashed",
    "ExtractionError",
    "ExtractionPool",
    "ExtractionTimeout",
    "PageText",
    "extract_page",
    "timeout_from_env",
    "workers_from_env",
]

LOGGER = logging.getLogger(__name__)

#: Soft limit of one extraction, seconds. A real article page takes well under
#: 0.5 s; extraction.MAX_INPUT_BYTES bounds adversarial markup to ~10-20 s.
DEFAULT_TIMEOUT = 30.0
WORKERS_ENV = "COPYHOUND_EXTRACT_WORKERS"
TIMEOUT_ENV = "COPYHOUND_EXTRACT_TIMEOUT"


class ExtractionCrashed(RuntimeError):
    """The worker process extracting this page died (the page is dropped)."""


class ExtractionTimeout(RuntimeError):
    """Extracting this page took longer than the time limit (the page is dropped)."""


class _SoftTimeout(BaseException):
    """Raised by SIGALRM inside a worker. A BaseException so the broad
    `except Exception` that guards trafilatura in `extract()` cannot swallow it."""


@dataclass(frozen=True)
class PageText:
    """What the worker sends back: the extraction, its text's content hash, and
    how long the worker spent (summed into the crawl's stats)."""

    extracted: Extracted
    content_hash: str
    seconds: float


def extract_page(html: str | bytes, url: str | None) -> PageText:
    """The job run in a worker: extraction plus the cheap work that follows it
    (the content hash), so the crawl's process does neither."""
    start = time.perf_counter()
    extracted = extract(html, url=url)
    return PageText(extracted, content_hash(extracted.text), time.perf_counter() - start)


def workers_from_env(default: int | None = None) -> int:
    """COPYHOUND_EXTRACT_WORKERS, or the number of CPUs; 0 means extract inline."""
    raw = os.environ.get(WORKERS_ENV, "").strip()
    if not raw:
        return default if default is not None else (os.cpu_count() or 1)
    try:
        value = int(raw)
    except ValueError:
        raise ValueError(f"{WORKERS_ENV} must be a whole number of worker processes (0: inline), got {raw!r}") from None
    if value < 0:
        raise ValueError(f"{WORKERS_ENV} must be >= 0 (0: extract inline), got {value}")
    return value


def timeout_from_env(default: float = DEFAULT_TIMEOUT) -> float:
    raw = os.environ.get(TIMEOUT_ENV, "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ValueError(f"{TIMEOUT_ENV} must be a number of seconds, got {raw!r}") from None
    if value <= 0:
        raise ValueError(f"{TIMEOUT_ENV} must be > 0 seconds, got {value}")
    return value


# -- inside the worker processes ----------------------------------------------------


def _on_alarm(signum, frame) -> None:  # noqa: ARG001 - signal handler signature
    raise _SoftTimeout()


def _init_worker() -> None:
    # The parent handles Ctrl-C and stops the pool; a worker must not die of it mid-job.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if hasattr(signal, "setitimer"):
        signal.signal(signal.SIGALRM, _on_alarm)


def _run_job(job: Callable[[str | bytes, str | None], PageText], html: str | bytes, url: str | None, timeout: float) -> PageText:
    alarm = hasattr(signal, "setitimer")
    if alarm:
        signal.setitimer(signal.ITIMER_REAL, timeout)
    try:
        return job(html, url)
    except _SoftTimeout:
        raise ExtractionTimeout(f"extracting {url or 'a page'} took over {timeout:g} s ({TIMEOUT_ENV})") from None
    finally:
        if alarm:
            signal.setitimer(signal.ITIMER_REAL, 0)


_WARM_UP_PAGE = (
    "<html><head><title>Warm-up</title></head><body><nav><a href='/'>Home</a></nav><article>"
    + "<p>Short paragraphs make trafilatura load its jusText stop lists, which it does lazily.</p>" * 3
    + "</article></body></html>"
)


def _warm_up() -> int:
    """Load what extraction loads lazily, so a worker's first real page is not
    slowed by it (and cannot run into the time limit because of it)."""
    try:
        extract(_WARM_UP_PAGE, url="http://warm-up.invalid/")
    except ExtractionError:
        pass
    return os.getpid()


# -- in the crawl's process -----------------------------------------------------------


class _Lane:
    """One ProcessPoolExecutor that can be thrown away and rebuilt. `generation`
    tells callers whether the pool they saw fail has already been replaced."""

    def __init__(self, workers: int, context) -> None:
        self.workers = workers
        self.context = context
        self.generation = 0
        self.rebuilds = 0
        self.executor = self._new()

    def _new(self) -> ProcessPoolExecutor:
        return ProcessPoolExecutor(max_workers=self.workers, mp_context=self.context, initializer=_init_worker)

    def rebuild(self, generation: int, *, kill: bool) -> None:
        """Replace the pool seen failing at `generation` (no-op if already replaced)."""
        if generation != self.generation:
            return
        old = self.executor
        self.generation += 1
        self.rebuilds += 1
        self.executor = self._new()
        if kill:
            _kill_workers(old)
        old.shutdown(wait=False, cancel_futures=True)

    def pids(self) -> list[int]:
        return list(getattr(self.executor, "_processes", None) or {})

    def close(self, grace: float) -> None:
        """Let running jobs finish for up to `grace` seconds, then kill the workers."""
        processes = list((getattr(self.executor, "_processes", None) or {}).values())
        self.executor.shutdown(wait=False, cancel_futures=True)
        deadline = time.monotonic() + grace
        for process in processes:
            process.join(max(0.0, deadline - time.monotonic()))
        for process in processes:
            if process.is_alive():
                process.kill()
                process.join(5)


def _kill_workers(executor: ProcessPoolExecutor) -> None:
    # concurrent.futures has no public way to stop a running job (Python 3.14 adds
    # terminate_workers()); its process table is the only handle on a stuck worker.
    for process in list((getattr(executor, "_processes", None) or {}).values()):
        try:
            process.kill()
        except (OSError, ValueError):  # already gone / already closed
            pass


class ExtractionPool:
    """Extract pages in `workers` processes; `await pool.extract(html, url)`.

    `workers=0` extracts inline in the calling thread (debugging; no isolation).
    At most `max_pending` jobs are submitted at a time (the rest wait on a
    semaphore), so a burst of pages queues as coroutines in the caller, not as
    pickled HTML inside the executor. `timeout` is the soft limit per page; the
    hard limit after which the pool is killed (`hard_timeout`) defaults to twice
    that plus a margin, which also covers the wait behind one other job queued.

    `job` is the function run in the workers (default `extract_page`); it must be
    importable by name, since workers are started with the 'spawn' method: a fork
    of a crawl's process would copy its reactor, threads and open sockets.
    """

    def __init__(
        self,
        workers: int | None = None,
        *,
        timeout: float | None = None,
        max_pending: int | None = None,
        hard_timeout: float | None = None,
        job: Callable[[str | bytes, str | None], PageText] = extract_page,
        start_method: str = "spawn",
    ) -> None:
        self.workers = workers_from_env() if workers is None else int(workers)
        if self.workers < 0:
            raise ValueError(f"workers must be >= 0 (0: extract inline; {WORKERS_ENV}), got {self.workers}")
        self.timeout = timeout_from_env() if timeout is None else float(timeout)
        if self.timeout <= 0:
            raise ValueError(f"timeout must be > 0 seconds ({TIMEOUT_ENV}), got {self.timeout}")
        self.hard_timeout = float(hard_timeout) if hard_timeout else 2 * self.timeout + 5.0
        if self.hard_timeout < self.timeout:
            raise ValueError(f"hard_timeout ({self.hard_timeout:g} s) must be at least timeout ({self.timeout:g} s)")
        self.max_pending = max_pending or 2 * max(1, self.workers)
        self.job = job
        self._context = multiprocessing.get_context(start_method)
        self._main: _Lane | None = None
        self._isolation: _Lane | None = None
        # asyncio primitives belong to one event loop: made for the loop in use.
        self._loop: asyncio.AbstractEventLoop | None = None
        self._semaphore = asyncio.Semaphore(self.max_pending)
        self._isolation_lock = asyncio.Lock()
        self.closed = False
        self.crashes = 0
        self.timeouts = 0
        if self.workers:
            self._main = _Lane(self.workers, self._context)

    # -- lifecycle ----------------------------------------------------------------

    @property
    def inline(self) -> bool:
        return self.workers == 0

    def start(self, *, wait: bool = True) -> None:
        """Start every worker now (they import trafilatura, ~1 s), rather than on
        the first pages of the crawl."""
        if self._main is None:
            return
        futures = [self._main.executor.submit(_warm_up) for _ in range(self.workers)]
        if wait:
            for future in futures:
                future.result(timeout=120)

    def worker_pids(self) -> list[int]:
        return self._main.pids() if self._main else []

    @property
    def rebuilds(self) -> int:
        return (self._main.rebuilds if self._main else 0) + (self._isolation.rebuilds if self._isolation else 0)

    def close(self) -> None:
        """Stop the workers: queued jobs are cancelled, running ones get the soft
        time limit to finish before their process is killed."""
        if self.closed:
            return
        self.closed = True
        for lane in (self._main, self._isolation):
            if lane is not None:
                lane.close(grace=self.timeout + 1.0)

    def __enter__(self) -> ExtractionPool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- work -----------------------------------------------------------------------

    async def extract(self, html: str | bytes, url: str | None = None) -> PageText:
        """The page's text; raises ExtractionError (no text), ExtractionTimeout or
        ExtractionCrashed. Only this page is lost in each case."""
        if self.closed:
            raise RuntimeError("the extraction pool is closed")
        if self._main is None:
            return self.job(html, url)
        loop = asyncio.get_running_loop()
        if loop is not self._loop:
            self._loop = loop
            self._semaphore = asyncio.Semaphore(self.max_pending)
            self._isolation_lock = asyncio.Lock()
        async with self._semaphore:
            generation = self._main.generation
            try:
                future = self._main.executor.submit(_run_job, self.job, html, url, self.timeout)
                return await asyncio.wait_for(asyncio.wrap_future(future), self.hard_timeout)
            except asyncio.TimeoutError:
                self.timeouts += 1
                LOGGER.warning("extraction of %s held a worker over %.0f s: restarting the extraction workers", url, self.hard_timeout)
                self._main.rebuild(generation, kill=True)
                raise ExtractionTimeout(f"extracting {url or 'a page'} took over {self.hard_timeout:g} s; its worker was killed") from None
            except BrokenProcessPool:
                self._main.rebuild(generation, kill=False)
        # A worker died with this page among those in flight: retry it alone.
        return await self._isolated(html, url)

    async def _isolated(self, html: str | bytes, url: str | None) -> PageText:
        async with self._isolation_lock:
            if self._isolation is None:
                self._isolation = _Lane(1, self._context)
            generation = self._isolation.generation
            try:
                future = self._isolation.executor.submit(_run_job, self.job, html, url, self.timeout)
                return await asyncio.wait_for(asyncio.wrap_future(future), self.hard_timeout)
            except asyncio.TimeoutError:
                self.timeouts += 1
                self._isolation.rebuild(generation, kill=True)
                raise ExtractionTimeout(f"extracting {url or 'a page'} took over {self.hard_timeout:g} s; its worker was killed") from None
            except BrokenProcessPool:
                self.crashes += 1
                LOGGER.warning("the extraction worker died on %s: page dropped", url)
                self._isolation.rebuild(generation, kill=False)
                raise ExtractionCrashed(f"the extraction worker died while extracting {url or 'a page'}") from None

