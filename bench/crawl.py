"""Benchmark of the crawl: bare Scrapy against the full copyhound pipeline.

    python bench/crawl.py            # table
    python bench/crawl.py --json     # one JSON document on stdout
    python bench/crawl.py --quick    # small smoke run (used by tests/test_bench_crawl.py)
    python bench/crawl.py --pages N  # article pages in the generated web (default 2000)

In one run, against one generated local news web:
* a bare Scrapy spider (regex link extraction, no item processing) crawls it in a
  subprocess;
* the full pipeline (`crawler.crawling.run_crawl`: crawl with extraction and storage,
  then the match phase against 1,000 registered stories) crawls it on a fresh SQLite
  database.
Both crawls run with the same settings (AUTOTHROTTLE off, robots.txt obeyed, same
concurrency) and are timed end to end, process start-up included; pages/s is HTML
pages fetched and processed per wall-clock second. The JSON also says where the
pipeline's time goes (crawl phase vs match phase, extraction CPU, the matcher and
storage measured alone) and how much CPU the web server used.

The web: article pages of ~50 KB with the chrome real news sites have (navigation,
inline styles and scripts, JSON-LD, teasers, comments, footer) and 100+ links each;
a few of them carry verbatim copies of registered stories, so the match phase finds
real work. It is rendered once into memory and served by a small asyncio HTTP/1.1
server in its own process (keep-alive, pre-built responses), so the server neither
shares the crawler's GIL nor limits it (its CPU time is reported).
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import json
import os
import platform
import random
import re
import subprocess
import sys
import tempfile
import time
from html import escape
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

STORIES = 1000
FOCUS_STORY = 0  # the story crawled; its copies and every other story's are matched
COPY_EVERY = 150  # one article in this many carries a registered story's text verbatim
SECTIONS = ("world", "politics", "business", "technology", "science", "health", "sport", "culture",
            "opinion", "travel", "property", "education", "environment", "motoring", "money", "local")
PAGE_TARGET_BYTES = 50_000
SHARED_SETTINGS = {
    "AUTOTHROTTLE_ENABLED": "False",
    "DOWNLOAD_DELAY": "0",
    "ROBOTSTXT_OBEY": "True",
    "CONCURRENT_REQUESTS": "16",
    "CONCURRENT_REQUESTS_PER_DOMAIN": "16",
    "RETRY_TIMES": "0",
    "LOG_LEVEL": "WARNING",
}


def _news_generator():
    """bench/match.py's synthetic news (Zipf vocabulary, names, figures, quotes)."""
    spec = importlib.util.spec_from_file_location("_bench_match", ROOT / "bench" / "match.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.NewsGenerator(seed=7)


# --- the web ---------------------------------------------------------------------------


class Web:
    """Deterministic pages of the generated web (path -> HTML) and the stories."""

    def __init__(self, pages: int, *, stories: int = STORIES) -> None:
        self.n = pages
        self.gen = _news_generator()
        self.stories = {i: self.gen.story(i) for i in range(stories)}
        rng = random.Random(5)
        self.titles = [" ".join(w.capitalize() for w in rng.sample(self.gen.vocab[:3000], rng.randint(5, 9)))
                       for _ in range(pages)]
        self.section_of = [SECTIONS[i % len(SECTIONS)] for i in range(pages)]
        # article index -> story id whose text it copies (article 0: the crawled story)
        self.copies = {i: (i // COPY_EVERY) % stories for i in range(0, pages, COPY_EVERY)}

    def article_path(self, i: int) -> str:
        slug = "-".join(self.titles[i].lower().split()[:5])
        return f"/news/{self.section_of[i]}/{i:05d}-{slug}.html"

    def paths(self) -> list[str]:
        return ["/", *(f"/section/{s}/" for s in SECTIONS), *(self.article_path(i) for i in range(self.n))]

    def copy_urls(self, base: str) -> dict[str, int]:
        return {base + self.article_path(i): sid for i, sid in self.copies.items()}

    # chrome ----------------------------------------------------------------------------
    def _link(self, i: int) -> str:
        return f'<li><a href="{escape(self.article_path(i))}">{escape(self.titles[i])}</a></li>'

    def _head(self, title: str, path: str, rng: random.Random) -> str:
        style = "".join(f".c{k}{{margin:{k % 7}px;padding:{k % 5}px;color:#{k * 2654435761 % 0xFFFFFF:06x}}}"
                        for k in range(160))
        state = json.dumps({"page": path, "ads": [{"slot": f"ad-{k}", "sizes": [[300, 250], [728, 90]],
                                                   "targeting": {"kw": rng.sample(self.gen.vocab[:500], 6)}}
                                                  for k in range(40)]})
        ld = json.dumps({"@context": "https://schema.org", "@type": "NewsArticle", "headline": title,
                         "datePublished": "2024-05-14T08:00:00Z", "publisher": {"@type": "Organization", "name": "Bench Herald"}})
        return (
            f'<!DOCTYPE html><html lang="en-GB"><head><meta charset="utf-8"><title>{escape(title)} | Bench Herald</title>'
            f'<meta name="viewport" content="width=device-width, initial-scale=1">'
            f'<meta property="og:title" content="{escape(title)}"><meta property="og:site_name" content="Bench Herald">'
            f'<link rel="canonical" href="{escape(path)}"><style>{style}</style>'
            f'<script type="application/ld+json">{ld}</script>'
            f'<script>window.__STATE__={state};(function(){{var d=document;}})();</script></head><body>'
            '<div class="cookie-banner" id="cookie-consent"><p>We and our 143 partners use cookies and similar '
            'technologies to store and access information on your device.</p><button>Accept all</button>'
            '<a href="/privacy/">Manage preferences</a></div>'
            '<header class="masthead"><a class="logo" href="/">Bench Herald</a><nav><a href="/">Home</a>'
            + "".join(f'<a href="/section/{s}/">{s.capitalize()}</a>' for s in SECTIONS)
            + '</nav></header>'
        )

    def _footer(self, rng: random.Random) -> str:
        picks = rng.sample(range(self.n), min(self.n, 25))
        return (
            '<footer class="site-footer"><section class="more"><h2>More from Bench Herald</h2><ul>'
            + "".join(self._link(i) for i in picks)
            + '</ul></section><ul class="corporate"><li><a href="/about/">About us</a></li>'
            '<li><a href="/private/staff/">Staff login</a></li><li><a href="https://twitter.example/benchherald">Twitter</a></li>'
            '<li><a href="https://facebook.example/benchherald">Facebook</a></li><li><a href="mailto:desk@bench.example">Contact</a></li>'
            '<li><a href="/static/app.js">App</a></li></ul><p>&copy; 2024 Bench Herald Ltd. All rights reserved.</p></footer>'
            '<script>(function(){var s=document.createElement("script");s.async=1;})();</script></body></html>'
        )

    def article(self, i: int) -> str:
        rng = random.Random(1_000_003 + i)
        path = self.article_path(i)
        title = self.titles[i]
        if i in self.copies:
            text = self.stories[self.copies[i]]
        else:
            text = self.gen.story(10_000_000 + i)
        paras = "".join(f"<p>{escape(p)}</p>" for p in text.split("\n\n"))
        related = rng.sample(range(self.n), min(self.n, 12))
        latest = rng.sample(range(self.n), min(self.n, 20))
        section = [j for j in rng.sample(range(self.n), min(self.n, 200)) if self.section_of[j] == self.section_of[i]][:30]
        more = rng.sample(range(self.n), min(self.n, 40))
        comments = "".join(
            f'<li class="comment"><span class="author">{escape(rng.choice(self.gen.names))}</span>'
            f"<p>{escape(self.gen._sentence(rng, self.gen.vocab[:300], self.gen.names[:5], ['Council']))}</p></li>"
            for _ in range(6)
        )
        body = (
            f'<main><article class="story"><nav class="breadcrumb"><a href="/">Home</a> &rsaquo; '
            f'<a href="/section/{self.section_of[i]}/">{self.section_of[i].capitalize()}</a></nav>'
            f'<h1>{escape(title)}</h1><p class="byline">By {escape(rng.choice(self.gen.names))}, '
            f'<time datetime="2024-05-14">14 May 2024</time></p><div class="article-body">{paras}</div>'
            '<aside class="related"><h2>Related stories</h2><ul>' + "".join(self._link(j) for j in related) + "</ul></aside>"
            '<section class="comments"><h2>Comments</h2><ol>' + comments + "</ol></section></article>"
            '<aside class="sidebar"><section class="latest"><h2>Latest</h2><ol>' + "".join(self._link(j) for j in latest)
            + '</ol></section><section class="section-more"><h2>More in this section</h2><ul>'
            + "".join(self._link(j) for j in section) + '</ul></section><div class="ad-slot">Advertisement</div>'
            '<section class="newsletter"><h2>Get the morning briefing</h2><p>The day\'s top stories in your inbox '
            'before 7am. Free, and you can unsubscribe at any time.</p></section></aside></main>'
            '<section class="trending"><h2>Trending</h2><ul>' + "".join(self._link(j) for j in more) + "</ul></section>"
        )
        page = self._head(title, path, rng) + body + self._footer(rng)
        if len(page) < PAGE_TARGET_BYTES:  # pad with an inline script blob, as sites do
            filler = json.dumps(rng.choices(self.gen.vocab[:2000], k=(PAGE_TARGET_BYTES - len(page)) // 8))
            page = page.replace("</body>", f"<script>window.__TRACKING__={filler};</script></body>")
        return page

    def index(self, section: str | None) -> str:
        rng = random.Random(SECTIONS.index(section) if section else len(SECTIONS))
        members = [i for i in range(self.n) if section is None or self.section_of[i] == section]
        if section is None:
            members = members[-60:]
        title = section.capitalize() if section else "Front page"
        return (
            self._head(title, f"/section/{section}/" if section else "/", rng)
            + f"<main><h1>{escape(title)}</h1><ul class='teasers'>" + "".join(self._link(i) for i in members)
            + "</ul></main>" + self._footer(rng)
        )

    def render(self, path: str) -> str | None:
        if path == "/":
            return self.index(None)
        m = re.fullmatch(r"/section/([a-z]+)/", path)
        if m and m.group(1) in SECTIONS:
            return self.index(m.group(1))
        m = re.fullmatch(r"/news/[a-z]+/(\d{5})-[^/]*\.html", path)
        if m and int(m.group(1)) < self.n and path == self.article_path(int(m.group(1))):
            return self.article(int(m.group(1)))
        return None


ROBOTS = b"User-agent: *\nDisallow: /private/\n"


def _response(status: str, body: bytes, content_type: str) -> bytes:
    return (f"HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {len(body)}\r\n"
            "Connection: keep-alive\r\n\r\n").encode() + body


def serve(pages: int) -> None:
    """Child process: render every page into memory, print the port, serve until stdin closes."""
    web = Web(pages, stories=STORIES)
    responses = {p: _response("200 OK", web.render(p).encode("utf-8"), "text/html; charset=utf-8") for p in web.paths()}
    responses["/robots.txt"] = _response("200 OK", ROBOTS, "text/plain")
    for path in ("/about/", "/privacy/"):
        responses[path] = _response("200 OK", f"<html><body><h1>{path}</h1><p>Bench Herald Ltd.</p></body></html>".encode(), "text/html")
    missing = _response("404 Not Found", b"<html><body>not found</body></html>", "text/html")
    sizes = [len(r) for p, r in responses.items() if p.startswith("/news/")]

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                parts = head.split(b" ", 2)
                path = parts[1].decode("latin-1").split("?", 1)[0] if len(parts) > 2 else "/"
                writer.write(responses.get(path, missing))
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError, asyncio.LimitOverrunError):
            pass
        finally:
            writer.close()

    async def main() -> None:
        server = await asyncio.start_server(handle, "127.0.0.1", 0, backlog=256)
        port = server.sockets[0].getsockname()[1]
        print(json.dumps({"port": port, "pid": os.getpid(), "article_pages": len(sizes),
                          "mean_article_bytes": sum(sizes) // max(1, len(sizes))}), flush=True)
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(None, sys.stdin.read)  # parent closes stdin to stop us
        server.close()

    asyncio.run(main())


class Server:
    def __init__(self, pages: int) -> None:
        self.proc = subprocess.Popen([sys.executable, __file__, "--serve", "--pages", str(pages)],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError("the benchmark web server did not start (see its stderr)")
        self.info = json.loads(line)
        self.base = f"http://127.0.0.1:{self.info['port']}"

    def cpu_seconds(self) -> float | None:
        """utime + stime of the server process (Linux /proc), to tell whether it limits the crawl."""
        try:
            fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
            return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        except (OSError, ValueError, IndexError):
            return None

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.stdin.close()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


# --- (a) bare Scrapy --------------------------------------------------------------------


def bare_crawl(start_url: str, settings: dict[str, str]) -> None:
    """Child process: crawl everything reachable, doing nothing with the pages."""
    import scrapy
    from scrapy.crawler import CrawlerProcess

    from crawler.links import hrefs

    class BareSpider(scrapy.Spider):
        name = "bare"
        allowed_domains = ["127.0.0.1"]

        async def start(self):
            yield scrapy.Request(start_url, callback=self.parse)

        def parse(self, response):
            self.crawler.stats.inc_value("bench/pages")
            for href in hrefs(response.text):
                yield response.follow(href, callback=self.parse)

    process = CrawlerProcess({**settings, "TELNETCONSOLE_ENABLED": False})
    crawler = process.create_crawler(BareSpider)
    process.crawl(crawler)
    process.start()
    stats = crawler.stats.get_stats()
    print("@bare " + json.dumps({"pages": stats.get("bench/pages", 0),
                                 "elapsed_s": stats.get("elapsed_time_seconds"),
                                 "responses": stats.get("downloader/response_count", 0)}), flush=True)


def run_bare(server: Server) -> dict:
    cmd = [sys.executable, __file__, "--bare-crawl", server.base + "/", "--settings", json.dumps(SHARED_SETTINGS)]
    cpu0 = server.cpu_seconds()
    t0 = time.perf_counter()
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=3600)
    wall = time.perf_counter() - t0
    cpu1 = server.cpu_seconds()
    lines = [l for l in out.stdout.splitlines() if l.startswith("@bare ")]
    if out.returncode != 0 or not lines:
        raise RuntimeError(f"bare crawl failed ({out.returncode}): {out.stderr[-2000:]}")
    res = json.loads(lines[-1][len("@bare "):])
    res["wall_s"] = round(wall, 3)
    res["pages_per_s"] = round(res["pages"] / wall, 1)
    res["crawl_only_pages_per_s"] = round(res["pages"] / res["elapsed_s"], 1) if res.get("elapsed_s") else None
    res["server_cpu_s"] = round(cpu1 - cpu0, 3) if cpu0 is not None and cpu1 is not None else None
    return res


# --- (b) the copyhound pipeline ---------------------------------------------------------


def register_stories(db_url: str, web: Web, start_url: str) -> tuple[int, float]:
    from crawler.seeds import SeedText, register_story
    from storage.engine import make_engine, session_factory, upgrade

    engine = make_engine(db_url)
    upgrade(engine)
    factory = session_factory(engine)
    t0 = time.perf_counter()
    focus = None
    with factory.begin() as session:
        for sid, text in web.stories.items():
            title = text.split("\n\n", 1)[0]
            sources = [("start_url", start_url)] if sid == FOCUS_STORY else []
            story, _ = register_story(session, SeedText(title, text), holder="Bench Wire", sources=sources,
                                      max_depth=20, max_pages=web.n + 100)
            if sid == FOCUS_STORY:
                focus = story.id
    engine.dispose()
    return focus, time.perf_counter() - t0


def run_pipeline(server: Server, web: Web, db_url: str, focus: int) -> dict:
    from crawler.crawling import run_crawl

    marks: dict[str, float] = {}

    def progress(counts: dict) -> None:
        now = time.perf_counter()
        marks.setdefault("first_progress", now)
        if counts.get("pages_matched", 0) > 0:  # the crawl phase reports pages_matched=0
            marks.setdefault("first_match_progress", now)
        else:
            marks["last_crawl_progress"] = now

    cpu0 = server.cpu_seconds()
    t0 = time.perf_counter()
    result = run_crawl(db_url, focus, settings=SHARED_SETTINGS, on_progress=progress, timeout=3600)
    wall = time.perf_counter() - t0
    cpu1 = server.cpu_seconds()
    if result.status != "finished":
        raise RuntimeError(f"pipeline crawl {result.status}: {result.error}")
    counts = result.counts
    pages = counts.get("pages", 0)
    crawl_end = marks.get("last_crawl_progress", t0 + wall)
    return {
        "pages": pages,
        "wall_s": round(wall, 3),
        "pages_per_s": round(pages / wall, 1),
        "crawl_phase_s": round(crawl_end - t0, 2),
        "match_phase_s": round(t0 + wall - crawl_end, 2),
        "phases_note": "split at the last crawl-phase progress line (reported at most every 0.5 s); "
                       "match_phase_s includes building the matcher and the worker's exit",
        "server_cpu_s": round(cpu1 - cpu0, 3) if cpu0 is not None and cpu1 is not None else None,
        "counts": counts,
    }


def measure_parts(db_url: str, sample: int) -> dict:
    """The match phase's and storage's costs measured alone, in this process, on the
    pages the pipeline stored: to tell where the pipeline's time goes."""
    from sqlalchemy import select

    from crawler.extraction import content_hash
    from crawler.monitoring import MatchPhase, store_page
    from storage.engine import make_engine, session_factory, upgrade
    from storage.models import Page

    engine = make_engine(db_url)
    factory = session_factory(engine)
    with factory.begin() as session:
        rows = session.execute(select(Page.url, Page.text).order_by(Page.id)).all()
    engine.dispose()
    t0 = time.perf_counter()
    phase = MatchPhase.load(factory)
    load_s = time.perf_counter() - t0
    texts = [text for _, text in rows if text][:sample]
    t0 = time.perf_counter()
    for text in texts:
        phase.matcher.match(text, include=phase.focus)
    match_s = time.perf_counter() - t0
    with tempfile.TemporaryDirectory() as tmp:
        scratch = make_engine(f"sqlite:///{Path(tmp) / 'scratch.db'}")
        upgrade(scratch)
        scratch_factory = session_factory(scratch)
        body = b"x" * PAGE_TARGET_BYTES
        t0 = time.perf_counter()
        for url, text in rows[:sample]:
            store_page(scratch_factory, url=url, text=text or "", body=body, headers={"Content-Type": "text/html"},
                       content_hash=content_hash(text or ""), site="127.0.0.1", http_status=200)
        store_s = time.perf_counter() - t0
        scratch.dispose()
    n = max(1, len(texts))
    return {
        "match_load_s": round(load_s, 2),
        "match_ms_per_page": round(match_s / n * 1e3, 2),
        "match_pages_per_s_one_core": round(n / match_s, 1) if match_s else None,
        "store_ms_per_page": round(store_s / max(1, min(sample, len(rows))) * 1e3, 2),
        "sample_pages": n,
    }


# --- the run ----------------------------------------------------------------------------


def run(pages: int, *, parts: bool = True) -> dict:
    t0 = time.perf_counter()
    web = Web(pages)
    out: dict = {
        "pages_requested": pages,
        "python": platform.python_version(),
        "cpu_count": os.cpu_count(),
        "extract_workers": os.environ.get("COPYHOUND_EXTRACT_WORKERS") or f"default ({os.cpu_count()})",
        "settings": SHARED_SETTINGS,
        "stories": len(web.stories),
        "copies_planted": len(web.copies),
    }
    server = Server(pages)
    try:
        out["web"] = {**{k: v for k, v in server.info.items() if k != "pid"}, "generate_s": round(time.perf_counter() - t0, 2)}
        with tempfile.TemporaryDirectory(prefix="copyhound-bench-") as tmp:
            db_url = f"sqlite:///{Path(tmp) / 'bench.db'}"
            focus, register_s = register_stories(db_url, web, server.base + "/")
            out["register_stories_s"] = round(register_s, 2)
            bare = run_bare(server)
            pipeline = run_pipeline(server, web, db_url, focus)
            if parts:
                pipeline["parts"] = measure_parts(db_url, sample=min(300, pipeline["pages"]))
    finally:
        server.close()
    counts = pipeline["counts"]
    workers = int(os.environ.get("COPYHOUND_EXTRACT_WORKERS") or os.cpu_count() or 1)
    extract_cpu = counts.get("extract_seconds", 0.0)
    pipeline["breakdown"] = {
        "extract_cpu_s": round(extract_cpu, 2),
        "extract_ms_per_page": round(extract_cpu / max(1, pipeline["pages"]) * 1e3, 2),
        "extract_s_if_spread_over_workers": round(extract_cpu / max(1, workers), 2),
        "crawl_phase_s": pipeline["crawl_phase_s"],
        "match_phase_s": pipeline["match_phase_s"],
    }
    if parts:
        p = pipeline["parts"]
        pipeline["breakdown"]["store_s_estimate"] = round(p["store_ms_per_page"] * pipeline["pages"] / 1e3, 2)
        pipeline["breakdown"]["match_s_estimate"] = round(p["match_load_s"] + p["match_ms_per_page"] * pipeline["pages"] / 1e3, 2)
    out["bare"] = bare
    out["pipeline"] = pipeline
    out["bare_pages_per_s"] = bare["pages_per_s"]
    out["pipeline_pages_per_s"] = pipeline["pages_per_s"]
    out["ratio"] = round(pipeline["pages_per_s"] / bare["pages_per_s"], 3) if bare["pages_per_s"] else None
    out["target_ratio"] = 0.6
    out["matches_new"] = counts.get("matches_new", 0)
    out["total_s"] = round(time.perf_counter() - t0, 1)
    return out


def _table(res: dict) -> str:
    b, p = res["bare"], res["pipeline"]
    lines = [
        f"web: {res['web']['article_pages']} article pages, {res['web']['mean_article_bytes']} bytes each on average",
        f"bare Scrapy:       {b['pages']} pages in {b['wall_s']} s = {b['pages_per_s']} pages/s "
        f"(server CPU {b['server_cpu_s']} s)",
        f"copyhound pipeline: {p['pages']} pages in {p['wall_s']} s = {p['pages_per_s']} pages/s "
        f"(crawl {p['crawl_phase_s']} s + match {p['match_phase_s']} s; server CPU {p['server_cpu_s']} s)",
        f"ratio: {res['ratio']} (target {res['target_ratio']})",
        "breakdown: " + ", ".join(f"{k}={v}" for k, v in p["breakdown"].items()),
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--json", action="store_true", help="print one JSON document")
    ap.add_argument("--quick", action="store_true", help="small smoke run (60 pages)")
    ap.add_argument("--pages", type=int, default=None, help="article pages in the web (default 2000)")
    ap.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--bare-crawl", metavar="URL", help=argparse.SUPPRESS)
    ap.add_argument("--settings", default="{}", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    pages = args.pages or (60 if args.quick else 2000)
    if pages < 1:
        ap.error("--pages must be at least 1")
    if args.serve:
        serve(pages)
        return 0
    if args.bare_crawl:
        bare_crawl(args.bare_crawl, json.loads(args.settings))
        return 0
    res = run(pages, parts=True)
    res["quick"] = args.quick
    print(json.dumps(res, indent=2) if args.json else _table(res))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
