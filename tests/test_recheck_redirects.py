"""A known copy whose URL now redirects to another page is taken down, as for a 404:
its URL is recorded as gone (the redirect's status and where it leads), its match
removed with one `copy.removed`; the page it leads to is checked as any page. A
redirect that only canonicalises the copy's URL is no removal.

The spider's decision is tested on plain responses; the rest with real crawls
against a real local server, on SQLite and PostgreSQL."""

from __future__ import annotations

import pytest
from scrapy.http import Request, Response
from sqlalchemy import select

from crawler.crawling import run_crawl
from crawler.evidence import write_evidence
from crawler.items import GoneItem
from crawler.monitoring import record_gone
from crawler.spiders.story import same_address
from storage.models import Alert, Match, Page
from tests.servers import LocalServer, Reply, html_page
from tests.test_cli import STORY
from tests.test_discovery import SETTINGS, count, make_spider, register

TITLE = "Ferry yard to close its dry dock"


def test_only_a_redirect_to_another_page_takes_a_known_copy_away() -> None:
    assert same_address("http://c.example/copy", "https://www.c.example/copy/?utm_source=feed#top")
    assert not same_address("http://c.example/copy", "http://c.example/")
    assert not same_address("http://c.example/copy", "http://c.example/copy?page=2")
    assert not same_address("http://c.example/copy", "http://elsewhere.example/copy")

    spider = make_spider(recheck=["http://c.example/copy"])

    def answer(request: Request, status: int, location: str) -> list:
        return list(spider.parse_page(Response(request.url, status=status, headers={"Location": location}, request=request)))

    (follow,) = answer(spider._recheck("http://c.example/copy"), 301, "https://www.c.example/copy/")
    assert follow.url == "https://www.c.example/copy/" and follow.meta["recheck"]  # still the copy
    (gone,) = spider.parse_page(Response(follow.url, status=404, request=follow))
    assert gone == GoneItem(url="http://c.example/copy", status=404)
    gone, landing = answer(follow, 302, "/?from=copy")
    assert gone == GoneItem(url="http://c.example/copy", status=302, location="https://www.c.example/?from=copy")
    assert landing.url == "https://www.c.example/?from=copy" and not landing.meta.get("recheck")

    loop = spider._recheck("http://c.example/copy/", copy_url="http://c.example/copy", redirects=spider.max_redirects)
    assert answer(loop, 308, "http://c.example/copy") == []
    assert spider.crawler.stats.get_value("copyhound/skipped/redirect_loop") == 1


def test_a_redirect_is_recorded_with_where_it_leads(session_factory) -> None:
    with pytest.raises(ValueError, match="location"):
        record_gone(session_factory, "http://c.example/copy", 301)
    with pytest.raises(ValueError, match="no location"):
        record_gone(session_factory, "http://c.example/copy", 404, location="http://c.example/")
    with pytest.raises(ValueError, match="not 200"):
        record_gone(session_factory, "http://c.example/copy", 200)
    never_seen = record_gone(session_factory, "http://c.example/copy", 308, location="http://c.example/")
    assert (never_seen.pages_gone, never_seen.pages_moved, never_seen.matches_removed) == (1, 1, 0)


def copy_site(copy: Reply) -> LocalServer:
    return LocalServer({"/": Reply(body=b"<html><body><a href='/copy'>copy</a></body></html>"), "/copy": copy})


def page(factory, url: str) -> tuple[int | None, str | None]:
    with factory.begin() as session:
        row = session.execute(select(Page.http_status, Page.canonical_url).where(Page.url == url)).one()
        return row.http_status, row.canonical_url


def removed_payload_page(factory) -> dict[str, str]:
    with factory.begin() as session:
        (payload,) = session.scalars(select(Alert.payload).where(Alert.event == "copy.removed"))
    return {k: payload["page"][k] for k in ("url", "canonical_url")}


def test_a_copy_redirected_to_the_home_page_is_removed_once_and_can_come_back(db_url, session_factory, tmp_path) -> None:
    factory = session_factory
    copy = Reply(body=html_page(TITLE, STORY))
    with copy_site(copy) as server:
        story_id = register(factory, [("start_url", server.url("/"))])
        first = run_crawl(db_url, story_id, settings=SETTINGS)
        assert first.status == "finished", first.error
        assert first.counts["matches_new"] == 1

        server.routes["/copy"] = Reply(301, b"", {"Location": "/"})
        moved = run_crawl(db_url, story_id, settings=SETTINGS)
        assert moved.status == "finished", moved.error
        assert (moved.counts["pages_gone"], moved.counts["pages_moved"], moved.counts["matches_removed"]) == (1, 1, 1)
        assert page(factory, server.url("/copy")) == (301, server.url("/"))
        assert count(factory, Match, Match.status == "removed") == 1
        assert removed_payload_page(factory) == {"url": server.url("/copy"), "canonical_url": server.url("/")}
        with factory.begin() as session:
            match_id = session.scalar(select(Match.id))
        pack = write_evidence(factory, match_id, tmp_path / "evidence")
        assert any(f"redirected (HTTP 301) to {server.url('/')}" in m and "taken down" in m for m in pack.missing)

        server.requests.clear()
        again = run_crawl(db_url, story_id, settings=SETTINGS)
        assert again.status == "finished", again.error
        assert "/copy" in server.requests  # still rechecked
        assert again.counts["matches_removed"] == 0 and again.counts["alerts_queued"] == 0
        assert count(factory, Alert, Alert.event == "copy.removed") == 1
        assert count(factory, Match, Match.status == "removed") == 1
        assert page(factory, server.url("/copy")) == (301, server.url("/"))

        server.routes["/copy"] = copy
        back = run_crawl(db_url, story_id, settings=SETTINGS)
        assert back.status == "finished", back.error
        assert back.counts["matches_reappeared"] == 1
        assert count(factory, Alert, Alert.event == "copy.reappeared") == 1
        assert page(factory, server.url("/copy")) == (200, None)  # no longer the home page's URL


def test_a_copy_moved_to_a_new_url_is_matched_there(db_url, session_factory) -> None:
    factory = session_factory
    with copy_site(Reply(body=html_page(TITLE, STORY))) as server:
        story_id = register(factory, [("start_url", server.url("/"))])
        assert run_crawl(db_url, story_id, settings=SETTINGS).counts["matches_new"] == 1

        server.routes["/copy"] = Reply(301, b"", {"Location": "/news/dry-dock-closes"})
        server.routes["/news/dry-dock-closes"] = Reply(body=html_page(TITLE, STORY))
        moved = run_crawl(db_url, story_id, settings=SETTINGS)
        assert moved.status == "finished", moved.error
    assert moved.counts["pages_moved"] == 1
    assert page(factory, server.url("/copy")) == (301, server.url("/news/dry-dock-closes"))
    with factory.begin() as session:
        found = {m.page.url: m.status for m in session.scalars(select(Match))}
    assert found == {server.url("/copy"): "removed", server.url("/news/dry-dock-closes"): "active"}
    # The holder is told where the copy's URL now leads; the same text under the new
    # URL is the same copy to the outbox, so no second copy.new.
    assert removed_payload_page(factory) == {"url": server.url("/copy"), "canonical_url": server.url("/news/dry-dock-closes")}
    assert count(factory, Alert, Alert.event == "copy.new") == 1


@pytest.mark.parametrize("landing", ["/copy/", "/copy?utm_source=home"])
def test_a_redirect_that_only_canonicalises_the_url_is_no_removal(db_url, session_factory, landing: str) -> None:
    factory = session_factory
    with copy_site(Reply(body=html_page(TITLE, STORY))) as server:
        story_id = register(factory, [("start_url", server.url("/"))])
        assert run_crawl(db_url, story_id, settings=SETTINGS).counts["matches_new"] == 1

        server.routes[landing] = server.routes["/copy"]
        server.routes["/copy"] = Reply(301, b"", {"Location": landing})
        server.requests.clear()
        second = run_crawl(db_url, story_id, settings=SETTINGS)
        assert second.status == "finished", second.error
    assert landing in server.requests
    assert second.counts.get("pages_gone", 0) == 0 and second.counts.get("matches_removed", 0) == 0
    assert count(factory, Match, Match.status == "removed") == 0
    assert count(factory, Alert, Alert.event == "copy.removed") == 0
    assert page(factory, server.url("/copy")) == (200, None)


def test_a_redirected_copy_whose_landing_page_is_gone_is_removed(db_url, session_factory) -> None:
    factory = session_factory
    with copy_site(Reply(body=html_page(TITLE, STORY))) as server:
        story_id = register(factory, [("start_url", server.url("/"))])
        assert run_crawl(db_url, story_id, settings=SETTINGS).counts["matches_new"] == 1

        server.routes["/copy"] = Reply(302, b"", {"Location": "/search?q=dry+dock"})  # no such page: 404
        moved = run_crawl(db_url, story_id, settings=SETTINGS)
        assert moved.status == "finished", moved.error
    assert (moved.counts["pages_gone"], moved.counts["matches_removed"]) == (1, 1)
    assert page(factory, server.url("/copy")) == (302, server.url("/search?q=dry+dock"))
    assert count(factory, Alert, Alert.event == "copy.removed") == 1
    with factory.begin() as session:
        assert session.scalar(select(Page.id).where(Page.url.like("%/search%"))) is None
