"""Bad input, served on purpose by a local server that misbehaves: every case is
skipped with a reason recorded in the run's counts, bounded in time and memory, and
the run finishes. One crawl (module fixture) serves every test here; each test names
one misbehaviour and checks what the crawl made of it."""

from __future__ import annotations

import gzip
import time
from collections import Counter

import pytest
from sqlalchemy import select

from crawler.crawling import CrawlResult, run_crawl
from crawler.demo_run import DEMO_CRAWL_SETTINGS
from crawler.seeds import SeedText, register_story
from storage.engine import make_engine, session_factory, upgrade
from storage.models import Match, Page
from storage.repositories import Sources
from tests.servers import LocalServer, Reply, html_page
from tests.test_cli import STORY

MAXSIZE = 8_000_000
MAX_PER_PATTERN = 5
SITEMAP_PAGES = 10
SITEMAP_ENTRIES = 100_000
# Unrelated news in French: accents tell a right decoding from a wrong one.
CAFE = [
    "Le café du port de Saint-Aubin fermera ses portes à la fin de l'été après quarante-deux années de service aux pêcheurs.",
    "La propriétaire, Hélène Marchetti, explique que le loyer a doublé et qu'aucun repreneur ne s'est présenté malgré l'appel lancé en février.",
    "Les habitués se réuniront samedi pour un dernier déjeuner; la mairie étudie la création d'une halle couverte à la place du café.",
    "Le conseil municipal se prononcera en septembre sur le projet, dont le coût est estimé à un million d'euros.",
]
LINKED = [
    "/copy", "/malformed", "/truncated", "/huge", "/huge-nolength", "/bomb", "/binary-html", "/no-charset",
    "/wrong-charset", "/bogus-charset", "/redirect-loop", "/chain/1", "/calendar?month=1", "/slow",
]


def cafe_page(charset_meta: bool = False) -> str:
    meta = "<meta charset='utf-8'>" if charset_meta else ""
    body = "".join(f"<p>{p}</p>" for p in CAFE)
    return f"<!doctype html><html><head>{meta}<title>Le café ferme</title></head><body><article><h1>Le café ferme</h1>{body}</article></body></html>"


def calendar(handler) -> Reply | None:
    """/calendar?month=N links to month N+1, forever: a classic crawler trap."""
    if not handler.path.startswith("/calendar?month="):
        return None
    month = int(handler.path.rsplit("=", 1)[1])
    return Reply(body=f"<html><body><h1>Events, month {month}</h1><a href='/calendar?month={month + 1}'>next</a></body></html>".encode())


def sitemap_page(handler) -> Reply | None:
    if not handler.path.startswith("/p/"):
        return None
    return Reply(body=f"<html><body><h1>Page {handler.path}</h1><p>Nothing to see.</p></body></html>".encode())


def fallback(handler) -> Reply | None:
    return calendar(handler) or sitemap_page(handler) or redirect_chain(handler)


def huge_chunks():
    chunk = b"<p>" + b"x" * 65_530 + b"</p>"
    for _ in range(50_000_000 // len(chunk) + 1):  # 50 MB at most, lazily
        yield chunk


def trickle():
    yield b"<html><body><p>"
    for _ in range(200):  # 200 bytes over up to 50 s: DOWNLOAD_TIMEOUT ends it long before
        time.sleep(0.25)
        yield b"a"


def big_sitemap(base: str) -> bytes:
    urls = "".join(f"<url><loc>{base}/p/{i}</loc></url>" for i in range(SITEMAP_ENTRIES))
    return f'<?xml version="1.0"?><urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">{urls}</urlset>'.encode()


def redirect_chain(handler) -> Reply | None:
    """/chain/N redirects to /chain/N+1, forever: every hop a new URL."""
    if not handler.path.startswith("/chain/"):
        return None
    return Reply(302, b"", {"Location": f"/chain/{int(handler.path.rsplit('/', 1)[1]) + 1}"})


def hostile_routes() -> dict[str, Reply]:
    copy = html_page("Ferry yard to close its dry dock", STORY)
    links = "".join(f"<a href='{p}'>{p}</a> " for p in LINKED)
    routes = {
        "/": Reply(body=f"<html><body><h1>Index</h1>{links}</body></html>".encode()),
        "/copy": Reply(body=copy),
        "/malformed": Reply(body=b"<html><body><<<div>>><p class='x>" + copy.replace(b"</p>", b"") + b"</div></span></table>"),
        "/truncated": Reply(body=copy[: len(copy) * 2 // 3]),
        "/huge": Reply(chunks=huge_chunks, length=50_000_000),
        "/huge-nolength": Reply(chunks=huge_chunks),
        "/bomb": Reply(body=gzip.compress(b"\0" * 50_000_000), headers={"Content-Type": "text/html", "Content-Encoding": "gzip"}),
        "/binary-html": Reply(body=bytes(range(256)) * 400),
        "/no-charset": Reply(body=cafe_page().encode("utf-8"), headers={"Content-Type": "text/html"}),
        "/wrong-charset": Reply(body=cafe_page().encode("cp1252"), headers={"Content-Type": "text/html; charset=utf-8"}),
        "/bogus-charset": Reply(body=cafe_page(charset_meta=True).encode("utf-8"), headers={"Content-Type": "text/html; charset=x-no-such-charset"}),
        "/redirect-loop": Reply(302, b"", {"Location": "/loop-b"}),
        "/loop-b": Reply(302, b"", {"Location": "/redirect-loop"}),
        "/slow": Reply(chunks=trickle),
        "/bad-feed.xml": Reply(
            body=b"<?xml version='1.0'?><rss><channel><item><link>/from-bad-feed</link></item><item><link>/x</link><title>a & b</",
            headers={"Content-Type": "application/rss+xml"},
        ),
    }
    return routes


@pytest.fixture(scope="module")
def hostile(tmp_path_factory) -> tuple[CrawlResult, LocalServer, object]:
    db = tmp_path_factory.mktemp("hostile") / "crawl.db"
    url = f"sqlite:///{db}"
    engine = make_engine(url)
    upgrade(engine)
    factory = session_factory(engine)
    with LocalServer(hostile_routes(), fallback=fallback) as server:
        server.routes["/sitemap.xml"] = Reply(body=big_sitemap(server.base), headers={"Content-Type": "application/xml"})
        with factory.begin() as session:
            story, _ = register_story(
                session, SeedText("Ferry yard to close its dry dock", "\n".join(STORY)),
                holder="Test Wire", emails=["desk@testwire.example"],
                sources=[("start_url", server.url("/")), ("start_url", "http://127.0.0.1:9/")],
                max_depth=50, max_pages=60,
            )
            Sources(session).add(story.id, "sitemap", server.url("/sitemap.xml"), max_depth=0, max_pages=SITEMAP_PAGES)
            Sources(session).add(story.id, "feed", server.url("/bad-feed.xml"), max_depth=0, max_pages=10)
            story_id = story.id
        settings = {
            **DEMO_CRAWL_SETTINGS,
            "DOWNLOAD_MAXSIZE": str(MAXSIZE),
            "DOWNLOAD_WARNSIZE": str(MAXSIZE),
            "DOWNLOAD_TIMEOUT": "3",
            "RETRY_TIMES": "0",
            "COPYHOUND_MAX_PER_PATTERN": str(MAX_PER_PATTERN),
        }
        result = run_crawl(url, story_id, settings=settings, timeout=240)
        yield result, server, factory
    engine.dispose()


def skipped(result: CrawlResult, reason: str) -> int:
    return result.counts.get(f"skipped/{reason}", 0)


def stored(factory, path_suffix: str) -> Page | None:
    with factory.begin() as session:
        page = session.scalars(select(Page).where(Page.url.like(f"%{path_suffix}"))).one_or_none()
        if page is not None:
            session.expunge(page)
        return page


def test_the_run_finishes_with_its_copy_found(hostile) -> None:
    result, server, factory = hostile
    assert result.status == "finished", result.error
    with factory.begin() as session:
        found = {m.page.url for m in session.scalars(select(Match))}
    assert server.url("/copy") in found
    # Nothing fetched twice in one run.
    assert max(Counter(server.requests).values()) == 1


def test_malformed_and_truncated_html_are_still_read(hostile) -> None:
    _, _, factory = hostile
    for path in ("/malformed", "/truncated"):
        page = stored(factory, path)
        assert page is not None and "Lindqvist" in (page.text or ""), path


def test_pages_over_the_size_cap_are_skipped_and_recorded(hostile) -> None:
    result, server, factory = hostile
    # /huge announces 50 MB, /huge-nolength streams it, /bomb inflates to it.
    assert skipped(result, "too_large") == 3
    for path in ("/huge", "/huge-nolength", "/bomb"):
        assert stored(factory, path) is None
        assert server.requests.count(path) == 1


def test_binary_served_as_html_is_skipped(hostile) -> None:
    result, _, factory = hostile
    assert skipped(result, "binary") == 1
    assert stored(factory, "/binary-html") is None


def test_missing_wrong_and_unknown_charsets_are_decoded_without_failing(hostile) -> None:
    _, _, factory = hostile
    assert "café" in stored(factory, "/no-charset").text
    assert "café" in stored(factory, "/bogus-charset").text  # falls back to <meta charset>
    wrong = stored(factory, "/wrong-charset")  # cp1252 bytes declared as UTF-8
    assert wrong is not None and "Marchetti" in wrong.text


def test_redirect_loops_are_cut_and_recorded(hostile) -> None:
    result, server, _ = hostile
    # A ping-pong between two URLs: the duplicate filter fetches each once.
    assert server.requests.count("/redirect-loop") == 1 and server.requests.count("/loop-b") == 1
    # An endless chain of new URLs: REDIRECT_MAX_TIMES (5) ends it, recorded.
    assert skipped(result, "redirect_loop") == 1
    assert len([p for p in server.requests if p.startswith("/chain/")]) == 1 + 5


def test_an_endless_calendar_is_bounded_by_the_url_pattern_guard(hostile) -> None:
    result, server, _ = hostile
    months = [p for p in server.requests if p.startswith("/calendar")]
    assert len(months) == MAX_PER_PATTERN  # well below the depth (50) and page (60) limits
    assert skipped(result, "url_trap") >= 1


def test_a_dead_host_is_recorded(hostile) -> None:
    result, _, _ = hostile
    assert skipped(result, "unreachable") == 1
    assert sum(result.counts["errors"].values()) >= 1


def test_a_trickling_server_is_cut_off_by_the_download_timeout(hostile) -> None:
    result, server, factory = hostile
    assert skipped(result, "timeout") == 1
    assert server.requests.count("/slow") == 1
    assert stored(factory, "/slow") is None


def test_a_sitemap_of_100k_entries_costs_only_the_page_limit(hostile) -> None:
    result, server, _ = hostile
    fetched = [p for p in server.requests if p.startswith("/p/")]
    assert 1 <= len(fetched) <= SITEMAP_PAGES
    assert skipped(result, "page_limit") >= 1


def test_a_feed_that_is_not_well_formed_xml_is_skipped(hostile) -> None:
    result, server, _ = hostile
    assert skipped(result, "bad_feed") == 1
    assert "/from-bad-feed" not in server.requests  # not even its readable first item
