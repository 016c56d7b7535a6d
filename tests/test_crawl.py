"""The crawl subprocess against real local web servers, storing into a real SQLite file."""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest
from sqlalchemy import func, select

from crawler.crawling import run_crawl
from crawler.demo.web import DemoWeb
from crawler.demo_run import DEMO_CRAWL_SETTINGS
from crawler.seeds import SeedText, register_story
from storage.engine import make_engine, session_factory, upgrade
from storage.models import Alert, CrawlRun, Match, Page
from tests.servers import LocalServer, Reply, html_page
from tests.test_cli import STORY


def count(factory, model) -> int:
    with factory.begin() as session:
        return session.scalar(select(func.count()).select_from(model))


@pytest.fixture
def db(tmp_path: Path):
    url = f"sqlite:///{tmp_path / 'crawl.db'}"
    engine = make_engine(url)
    upgrade(engine)
    yield url, session_factory(engine)
    engine.dispose()


@pytest.fixture(scope="module")
def demo_web():
    with DemoWeb() as web:
        yield web


def register(factory, seed: SeedText, sources, **kwargs) -> int:
    with factory.begin() as session:
        story, _ = register_story(session, seed, holder="Test Wire", emails=["desk@testwire.example"], sources=sources, **kwargs)
        return story.id


def test_crawl_of_the_demo_web_finds_the_derivatives_and_nothing_else(db, demo_web: DemoWeb) -> None:
    url, factory = db
    web = demo_web
    sources = [("start_url", u) for u in web.start_urls()] + [("feed", u) for u in web.feed_urls()]
    sources += [("sitemap", u) for u in web.sitemap_urls()]
    story_id = register(factory, SeedText(web.story_title, web.story_text, web.story_url), sources, max_pages=500)

    progress: list[dict] = []
    first = run_crawl(url, story_id, settings=DEMO_CRAWL_SETTINGS, on_progress=progress.append)
    assert first.status == "finished", first.error
    assert first.exit_code == 0
    assert progress, "the worker reported no progress"

    with factory.begin() as session:
        found = {m.page.url: m.kind for m in session.scalars(select(Match))}
        run = session.get(CrawlRun, first.run_id)
        assert run.status == "finished" and run.finished_at is not None
        assert run.counts["pages"] >= 20
    assert found == web.expected()
    # Each new copy queued one alert for the holder's one destination.
    assert count(factory, Alert) == len(web.expected())
    # robots.txt is obeyed: the disallowed section was never fetched.
    assert not [path for _, path in web.request_log if path.startswith("/private/")]

    pages, matches, alerts = count(factory, Page), count(factory, Match), count(factory, Alert)
    second = run_crawl(url, story_id, settings=DEMO_CRAWL_SETTINGS)
    assert second.status == "finished", second.error
    assert second.counts.get("matches_new", 0) == 0
    assert second.counts.get("pages_stored", 0) == 0
    assert (count(factory, Page), count(factory, Match), count(factory, Alert)) == (pages, matches, alerts)
    assert second.counts.get("matches_seen", 0) == len(web.expected())


def test_a_crawl_survives_hostile_pages_and_records_them(db) -> None:
    url, factory = db
    copy = html_page("Ferry yard to close its dry dock", STORY)
    links = "".join(f"<a href='{p}'>{p}</a> " for p in ["/copy", "/broken", "/binary", "/loop", "/gone", "/gzip", "/empty"])
    routes = {
        "/": Reply(body=f"<html><body><h1>Index</h1>{links}</body></html>".encode()),
        "/copy": Reply(body=copy),
        "/broken": Reply(body=b"<html><body><article><p>Unclosed <b>markup <div><p>" + copy[:400]),
        "/binary": Reply(body=bytes(range(256)) * 200),
        "/loop": Reply(302, b"", {"Location": "/loop2"}),
        "/loop2": Reply(302, b"", {"Location": "/loop"}),
        "/gone": Reply(404, b"<html><body>gone</body></html>"),
        "/gzip": Reply(body=gzip.compress(b"<html>" + b"A" * 50_000_000 + b"</html>"),
                       headers={"Content-Type": "text/html", "Content-Encoding": "gzip"}),
        "/empty": Reply(body=b""),
    }
    with LocalServer(routes) as server:
        story_id = register(factory, SeedText("Ferry yard to close its dry dock", "\n".join(STORY)), [("start_url", server.url("/"))])
        result = run_crawl(url, story_id, settings={**DEMO_CRAWL_SETTINGS, "DOWNLOAD_MAXSIZE": str(5_000_000), "RETRY_TIMES": "0"})
    assert result.status == "finished", result.error
    with factory.begin() as session:
        found = {m.page.url: m.kind for m in session.scalars(select(Match))}
    assert found.get(server.url("/copy")) == "copy"
    assert server.url("/binary") not in found
    errors = result.counts["errors"]
    assert errors.get("http_404") == 1
    assert result.counts.get("skipped/no_text", 0) >= 1


def test_a_dead_source_finishes_with_the_error_recorded(db) -> None:
    url, factory = db
    story_id = register(factory, SeedText("Ferry yard", "\n".join(STORY)), [("start_url", "http://127.0.0.1:9/")])
    result = run_crawl(url, story_id, settings={**DEMO_CRAWL_SETTINGS, "RETRY_TIMES": "0"})
    assert result.status == "finished"
    assert sum(result.counts["errors"].values()) >= 1
    assert count(factory, Page) == 0


def test_search_discovery_feeds_result_pages_into_the_crawl(db, monkeypatch) -> None:
    """A story with a `search` source: its distinctive phrases are queried (a local
    server speaking SearXNG's JSON API), and the result pages are fetched and matched."""
    from crawler.search.fake_server import FakeSearchServer
    from storage.config_repositories import SourceAdmin

    url, factory = db
    copy_text = "\n".join(STORY)
    routes = {"/reprint": Reply(body=html_page("Ferry yard to close its dry dock", STORY)),
              "/other": Reply(body=html_page("Weather", ["Sunny spells and light winds are expected all week across the county."] * 3))}
    with LocalServer(routes) as site:
        documents = {site.url("/reprint"): copy_text, site.url("/other"): "Sunny spells and light winds are expected."}
        with FakeSearchServer(documents) as engine:
            monkeypatch.setenv("COPYHOUND_SEARCH_PROVIDER", "searxng")
            monkeypatch.setenv("COPYHOUND_SEARCH_URL", engine.base_url)
            story_id = register(factory, SeedText("Ferry yard to close its dry dock", copy_text), [])
            with factory.begin() as session:
                SourceAdmin(session).add_search(story_id, options={"max_results": 10})
            result = run_crawl(url, story_id, settings={**DEMO_CRAWL_SETTINGS, "ROBOTSTXT_OBEY": "False"})
            assert engine.requests, "the search provider was never asked"
    assert result.status == "finished", result.error
    with factory.begin() as session:
        found = {m.page.url: m.kind for m in session.scalars(select(Match))}
    assert found == {site.url("/reprint"): "copy"}
    assert "/other" not in site.requests  # only pages the search returned are fetched
