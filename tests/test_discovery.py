"""Discovery: feeds and sitemaps newer than the story, known copies re-checked
(changed, gone, back), their links followed, polite retries and conditional GETs.

Pure parts are tested with plain values; the crawl itself against real local
servers and a real SQLite file, as `copyhound` runs it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path

import pytest
from scrapy.http import HtmlResponse, Request, Response
from scrapy.utils.test import get_crawler
from sqlalchemy import func, select

from crawler.crawl_worker import crawl_plan
from crawler.crawling import run_crawl
from crawler.demo_run import DEMO_CRAWL_SETTINGS
from crawler.feeds import DocumentError, feed_entries, iter_entries, newer_than, parse_date
from crawler.items import GoneItem, NotModifiedItem, PageItem
from crawler.middlewares import ConditionalGetMiddleware, retry_after_seconds
from crawler.monitoring import record_gone
from crawler.seeds import SeedText, register_story
from crawler.spiders.story import StorySpider, user_agent
from crawler.urls import canonical, url_pattern
from storage.engine import make_engine, session_factory, upgrade
from storage.models import Alert, Match, Page
from tests.servers import LocalServer, Reply, html_page
from tests.test_cli import STORY

SETTINGS = {**DEMO_CRAWL_SETTINGS, "RETRY_TIMES": "0", "DOWNLOAD_TIMEOUT": "10"}
PUBLISHED = datetime(2025, 1, 1, tzinfo=UTC)
OLD, NEW = datetime(2024, 6, 1, tzinfo=UTC), datetime(2025, 6, 1, tzinfo=UTC)
OTHER = [
    "The county library will extend its opening hours on Saturdays from next month, the council announced on Tuesday.",
    "Readers asked for longer hours in a survey last spring; the extra staff will be paid from the reading fund.",
    "The mobile library van will also visit three more villages on the western shore every fortnight.",
]


# -- pure parts --------------------------------------------------------------------

def test_feed_and_sitemap_entries_with_their_dates() -> None:
    rss = (
        "<rss version='2.0'><channel><link>http://s/</link>"
        f"<item><link>http://s/a</link><pubDate>{format_datetime(OLD)}</pubDate></item>"
        "<item><guid>http://s/b</guid></item></channel></rss>"
    ).encode()
    assert [(e.url, e.date) for e in feed_entries(rss)] == [("http://s/a", OLD), ("http://s/b", None)]
    atom = b"<feed xmlns='http://www.w3.org/2005/Atom'><entry><link rel='self' href='http://x/'/><link href='http://s/c'/><published>2025-06-01T00:00:00Z</published></entry></feed>"
    assert [(e.url, e.date) for e in feed_entries(atom)] == [("http://s/c", NEW)]
    news = (
        b"<urlset xmlns='http://www.sitemaps.org/schemas/sitemap/0.9' xmlns:news='http://www.google.com/schemas/sitemap-news/0.9'>"
        b"<url><loc>http://s/n</loc><news:news><news:publication_date>2025-06-01T02:00:00+02:00</news:publication_date></news:news></url></urlset>"
    )
    assert [(e.url, e.date, e.kind) for e in iter_entries(news)] == [("http://s/n", NEW, "page")]
    index = b"<sitemapindex><sitemap><loc>http://s/1.xml</loc></sitemap></sitemapindex>"
    assert [(e.url, e.kind) for e in iter_entries(index)] == [("http://s/1.xml", "sitemap")]
    entry = feed_entries(rss)[0]
    assert not newer_than(entry, PUBLISHED) and newer_than(entry, None)
    assert parse_date("not a date") is None and parse_date("2025-01-01") == PUBLISHED


@pytest.mark.parametrize("body", [b"", b"<html><body>hi</body></html>", b"<rss><channel><item><link>http://s/a</link></item>"])
def test_documents_that_are_not_feeds_raise_a_clear_error(body: bytes) -> None:
    with pytest.raises(DocumentError):
        feed_entries(body)


def test_retry_after_in_seconds_and_as_an_http_date() -> None:
    now = datetime(2025, 1, 1, 12, 0, tzinfo=UTC)
    assert retry_after_seconds(b"120", now=now) == 120
    assert retry_after_seconds(format_datetime(now + timedelta(seconds=30), usegmt=True), now=now) == 30
    assert retry_after_seconds(format_datetime(now - timedelta(hours=1), usegmt=True), now=now) == 0
    assert retry_after_seconds("soon", now=now) is None and retry_after_seconds(None) is None


def test_urls_lose_tracking_parameters_and_traps_share_a_pattern() -> None:
    assert canonical("http://a.example/x?utm_source=n&utm_whatever=1&id=3&fbclid=z#top") == "http://a.example/x?id=3"
    assert url_pattern("http://a.example/cal?month=7") == url_pattern("http://a.example/cal?month=12")
    assert url_pattern("http://a.example/news/one") != url_pattern("http://a.example/news/two")
    assert "https://ops.example/bot" in user_agent("https://ops.example/bot")
    with pytest.raises(ValueError, match="COPYHOUND_CONTACT_URL"):
        user_agent("call me")


def make_spider(**plan) -> StorySpider:
    crawler = get_crawler(StorySpider, {"COPYHOUND_MAX_PER_PATTERN": 3})
    return StorySpider.from_crawler(crawler, plan={"sources": [{"kind": "start_url", "url": "http://a.example/"}], **plan})


def test_an_amp_page_is_traded_for_its_canonical_article() -> None:
    spider = make_spider()
    amp = b"<html amp><head><link rel='canonical' href='/story?utm_source=amp'></head><body><p>text</p></body></html>"
    request = Request("http://a.example/amp/story", meta={"hops": 1, "max_depth": 2, "source": "s0", "budget": "s0"})
    out = list(spider.parse_page(HtmlResponse(request.url, body=amp, request=request, headers={"Content-Type": "text/html"})))
    assert [r.url for r in out] == ["http://a.example/story"]
    assert spider.crawler.stats.get_value("copyhound/skipped/amp_to_canonical") == 1


def test_known_copies_answers_become_gone_and_not_modified_items() -> None:
    spider = make_spider(recheck=["http://c.example/copy"])
    for status, kind in ((410, GoneItem), (404, GoneItem), (304, NotModifiedItem)):
        request = Request("http://c.example/copy", meta={"recheck": True})
        (item,) = spider.parse_page(Response(request.url, status=status, request=request))
        assert isinstance(item, kind)


def test_links_of_a_known_copy_are_followed_one_hop_even_off_site() -> None:
    spider = make_spider(recheck=["http://c.example/copy"])
    page = html_page("t", STORY).replace(b"</article>", b"<a href='http://d.example/source'>s</a></article>")
    request = Request("http://c.example/copy", meta={"recheck": True})
    out = list(spider.parse_page(HtmlResponse(request.url, body=page, request=request, headers={"Content-Type": "text/html"})))
    assert isinstance(out[0], PageItem)
    follow = {r.url: r.meta for r in out[1:]}
    assert follow["http://d.example/source"]["allow_offsite"] is True
    assert follow["http://d.example/source"]["hops"] == follow["http://d.example/source"]["max_depth"]


def test_the_trap_guard_and_the_page_budget_bound_the_requests() -> None:
    spider = make_spider(max_pages=5)
    made = [spider._page_request(f"http://a.example/cal?month={n}", {"hops": 1}, budget="s0") for n in range(10)]
    assert sum(r is not None for r in made) == 3  # COPYHOUND_MAX_PER_PATTERN
    made = [spider._page_request(f"http://a.example/p{chr(97 + n)}", {"hops": 1}, budget="s0") for n in range(10)]
    assert sum(r is not None for r in made) == 2  # 5 pages in all
    assert spider._page_request("http://a.example/pa", {}, budget="s0") is None  # asked for already


def test_conditional_get_headers_belong_to_their_url_only() -> None:
    crawler = get_crawler(StorySpider)
    crawler.spider = type("S", (), {"validators": {"http://a.example/p": {"etag": '"v1"', "last_modified": "Wed, 01 Jan 2025 00:00:00 GMT"}}})()
    mw = ConditionalGetMiddleware.from_crawler(crawler)
    request = Request("http://a.example/p", meta={"conditional": True})
    mw.process_request(request)
    assert request.headers[b"If-None-Match"] == b'"v1"' and 304 in request.meta["handle_httpstatus_list"]
    moved = request.replace(url="http://a.example/elsewhere")
    mw.process_request(moved)
    assert b"If-None-Match" not in moved.headers and b"If-Modified-Since" not in moved.headers
    plain = Request("http://a.example/p")
    mw.process_request(plain)
    assert b"If-None-Match" not in plain.headers


# -- crawls ------------------------------------------------------------------------

@pytest.fixture
def db(tmp_path: Path):
    url = f"sqlite:///{tmp_path / 'crawl.db'}"
    engine = make_engine(url)
    upgrade(engine)
    yield url, session_factory(engine)
    engine.dispose()


def register(factory, sources, **kwargs) -> int:
    with factory.begin() as session:
        story, _ = register_story(
            session, SeedText("Ferry yard to close its dry dock", "\n".join(STORY)),
            holder="Test Wire", emails=["desk@testwire.example"], sources=sources, **kwargs,
        )
        story.published_at = PUBLISHED
        return story.id


def count(factory, model, *where) -> int:
    with factory.begin() as session:
        return session.scalar(select(func.count()).select_from(model).where(*where))


def other_page(n: str) -> Reply:
    return Reply(body=html_page(f"Library hours {n}", OTHER))


def test_feeds_and_sitemaps_fetch_only_entries_newer_than_the_story_or_the_last_run(db) -> None:
    url, factory = db
    rss = lambda base: (  # noqa: E731
        "<rss version='2.0'><channel>"
        f"<item><link>{base}/f-old</link><pubDate>{format_datetime(OLD)}</pubDate></item>"
        f"<item><link>{base}/f-new</link><pubDate>{format_datetime(NEW)}</pubDate></item>"
        f"<item><link>{base}/f-undated</link></item></channel></rss>"
    ).encode()
    atom = b"<feed xmlns='http://www.w3.org/2005/Atom'><entry><link href='/a-old'/><updated>2024-06-01T00:00:00Z</updated></entry><entry><link href='/a-new'/><updated>2025-06-01T00:00:00Z</updated></entry></feed>"
    news = (
        b"<urlset xmlns='http://www.sitemaps.org/schemas/sitemap/0.9' xmlns:news='http://www.google.com/schemas/sitemap-news/0.9'>"
        b"<url><loc>/n-old</loc><news:news><news:publication_date>2024-06-01</news:publication_date></news:news></url>"
        b"<url><loc>/n-new</loc><news:news><news:publication_date>2025-06-01T09:00:00Z</news:publication_date></news:news></url></urlset>"
    )
    plain = b"<urlset><url><loc>/s-old</loc><lastmod>2024-06-01</lastmod></url><url><loc>/s-undated</loc></url></urlset>"
    index = b"<sitemapindex><sitemap><loc>/news.xml</loc></sitemap><sitemap><loc>/plain.xml</loc></sitemap></sitemapindex>"
    xml = {"Content-Type": "application/xml"}
    pages = ["f-old", "f-new", "f-undated", "a-old", "a-new", "n-old", "n-new", "s-old", "s-undated"]
    with LocalServer({f"/{p}": other_page(p) for p in pages}) as server:
        server.routes.update({
            "/feed.xml": Reply(body=rss(server.base), headers=xml), "/atom.xml": Reply(body=atom, headers=xml),
            "/index.xml": Reply(body=index, headers=xml), "/news.xml": Reply(body=news, headers=xml),
            "/plain.xml": Reply(body=plain, headers=xml),
        })
        story_id = register(factory, [("feed", server.url("/feed.xml")), ("feed", server.url("/atom.xml")), ("sitemap", server.url("/index.xml"))])
        assert crawl_plan(factory, story_id)["since"] == PUBLISHED.isoformat()
        first = run_crawl(url, story_id, settings=SETTINGS)
        assert first.status == "finished", first.error
        fetched = {p.strip("/") for p in server.requests if p.strip("/") in pages}
        assert fetched == {"f-new", "f-undated", "a-new", "n-new", "s-undated"}
        assert first.counts["skipped/older_than_since"] == 4

        # The next run looks only past the start of this one: dated entries are old now.
        since = datetime.fromisoformat(crawl_plan(factory, story_id)["since"])
        assert since > NEW
        server.requests.clear()
        second = run_crawl(url, story_id, settings=SETTINGS)
        assert second.status == "finished", second.error
        assert {p.strip("/") for p in server.requests if p.strip("/") in pages} == {"f-undated", "s-undated"}


def test_429_and_503_are_retried_after_the_wait_the_server_asks_for(db) -> None:
    url, factory = db
    answers = {"/limited": [Reply(429, b"slow down", {"Retry-After": "1"})],
               "/busy": [Reply(503, b"busy", {"Retry-After": format_datetime(datetime.now(UTC) + timedelta(seconds=1), usegmt=True)})],
               "/never": [Reply(429, b"go away", {"Retry-After": "86400"})]}

    def route(path: str, final: Reply):
        return lambda handler: answers[path].pop(0) if answers[path] else final

    copy = Reply(body=html_page("Ferry yard to close its dry dock", STORY))
    links = b"".join(b"<a href='%s'>x</a>" % p.encode() for p in answers)
    with LocalServer({"/": Reply(body=b"<html><body>" + links + b"</body></html>")}) as server:
        server.routes.update({p: route(p, copy if p == "/limited" else other_page(p)) for p in answers})
        story_id = register(factory, [("start_url", server.url("/"))])
        result = run_crawl(url, story_id, settings={**SETTINGS, "RETRY_TIMES": "2"})
    assert result.status == "finished", result.error
    assert server.requests.count("/limited") == 2 and server.requests.count("/busy") == 2
    assert server.requests.count("/never") == 1  # a day is over COPYHOUND_RETRY_AFTER_MAX
    assert result.counts["skipped/retry_after_too_long"] == 1
    assert result.counts["retry_wait_seconds"] >= 1
    assert count(factory, Match) == 1  # /limited, once it answered


def test_a_second_run_revalidates_known_pages_and_stores_nothing_new(db) -> None:
    url, factory = db
    body = html_page("Ferry yard to close its dry dock", STORY)
    etag = '"copy-v1"'

    def copy(handler) -> Reply:
        if handler.headers.get("If-None-Match") == etag:
            return Reply(304, b"", {"ETag": etag})
        return Reply(body=body, headers={"Content-Type": "text/html; charset=utf-8", "ETag": etag})

    with LocalServer({"/": Reply(body=b"<html><body><a href='/copy?utm_source=home'>copy</a> <a href='/moved'>old</a></body></html>"),
                      "/copy": copy, "/moved": Reply(301, b"", {"Location": "/copy"})}) as server:
        story_id = register(factory, [("start_url", server.url("/"))])
        first = run_crawl(url, story_id, settings=SETTINGS)
        assert first.status == "finished" and first.counts["matches_new"] == 1
        assert first.counts["not_modified"] == 0
        pages, matches, alerts = count(factory, Page), count(factory, Match), count(factory, Alert)
        server.request_headers.clear()
        second = run_crawl(url, story_id, settings=SETTINGS)
    assert second.status == "finished", second.error
    sent = [h for p, h in server.request_headers if p == "/copy"]
    assert len(sent) == 1 and sent[0].get("If-None-Match") == etag  # once, though linked twice
    assert second.counts["not_modified"] == 1
    assert second.counts["pages_stored"] == 0 and second.counts["matches_new"] == 0
    assert second.counts["matches_seen"] == 1
    assert (count(factory, Page), count(factory, Match), count(factory, Alert)) == (pages, matches, alerts)


def test_a_known_copy_that_goes_away_and_comes_back_is_recorded_each_time(db) -> None:
    url, factory = db
    copy = Reply(body=html_page("Ferry yard to close its dry dock", STORY))
    with LocalServer({"/": Reply(body=b"<html><body><a href='/copy'>copy</a></body></html>"), "/copy": copy}) as server:
        story_id = register(factory, [("start_url", server.url("/"))])
        assert run_crawl(url, story_id, settings=SETTINGS).counts["matches_new"] == 1

        server.routes["/copy"] = Reply(410, b"<html><body>gone</body></html>")
        gone = run_crawl(url, story_id, settings=SETTINGS)
        assert gone.status == "finished", gone.error
        assert gone.counts["matches_removed"] == 1
        assert count(factory, Match, Match.status == "removed") == 1
        assert count(factory, Alert, Alert.event == "copy.removed") == 1
        assert count(factory, Page, Page.http_status == 410) == 1

        server.routes["/copy"] = copy
        back = run_crawl(url, story_id, settings=SETTINGS)
        assert back.status == "finished", back.error
        assert back.counts["matches_reappeared"] == 1
        assert count(factory, Match, Match.status == "active") == 1
        assert count(factory, Alert, Alert.event == "copy.reappeared") == 1

        # The page stays but the story is edited out of it: removed again.
        server.routes["/copy"] = other_page("copy")
        edited = run_crawl(url, story_id, settings=SETTINGS)
        assert edited.status == "finished", edited.error
        assert edited.counts["matches_removed"] == 1
        assert count(factory, Match, Match.status == "removed") == 1
        assert server.requests.count("/copy") == 4  # once per run


def test_record_gone_is_idempotent(db) -> None:
    url, factory = db
    copy = Reply(body=html_page("Ferry yard to close its dry dock", STORY))
    with LocalServer({"/copy": copy}) as server:
        story_id = register(factory, [("start_url", server.url("/copy"))])
        assert run_crawl(url, story_id, settings=SETTINGS).counts["matches_new"] == 1
    first = record_gone(factory, server.url("/copy"), 404)
    again = record_gone(factory, server.url("/copy"), 404)
    assert (first.matches_removed, first.alerts_queued) == (1, 1)
    assert (again.matches_removed, again.alerts_queued) == (0, 0)
    assert record_gone(factory, server.url("/never-seen"), 410).pages_gone == 1


def test_links_on_known_copies_are_followed_one_hop_off_site(db) -> None:
    url, factory = db
    with LocalServer({"/other-copy": Reply(body=html_page("Dry dock to shut", STORY[:3]).replace(b"</article>", b"<a href='/deeper'>more</a></article>")),
                      "/deeper": other_page("deeper")}, host="127.0.0.2") as elsewhere:
        page = html_page("Ferry yard to close its dry dock", STORY).replace(
            b"</article>", f"<a href='{elsewhere.url('/other-copy')}'>source</a></article>".encode()
        )
        with LocalServer({"/": Reply(body=b"<a href='/copy'>copy</a>"), "/copy": Reply(body=page)}) as home:
            story_id = register(factory, [("start_url", home.url("/"))])
            first = run_crawl(url, story_id, settings=SETTINGS)
            assert first.status == "finished", first.error
            assert elsewhere.requests == []  # off-site, and /copy was not known yet
            second = run_crawl(url, story_id, settings=SETTINGS)
            assert second.status == "finished", second.error
    assert "/other-copy" in elsewhere.requests
    assert "/deeper" not in elsewhere.requests  # one hop, no further
    with factory.begin() as session:
        found = {m.page.url for m in session.scalars(select(Match))}
    assert elsewhere.url("/other-copy") in found
