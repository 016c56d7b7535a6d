"""`copyhound demo`: the whole pipeline against the local demo web, end to end."""

from __future__ import annotations

from rich.table import Column, Table
from rich.text import Text
from sqlalchemy import func, select
from sqlalchemy.orm import sessionmaker

from crawler import console
from crawler.crawling import run_crawl
from crawler.demo.web import DemoWeb
from crawler.seeds import SeedText, register_story
from storage.models import Alert, Match
from storage.repositories import Matches

DEMO_HOLDER = "Harbour Wire (demo)"
DEMO_EMAIL = "rights@harbourwire.example"
# Crawling loopback: no need to be gentle, and the demo should take seconds.
DEMO_CRAWL_SETTINGS = {"AUTOTHROTTLE_ENABLED": "False", "DOWNLOAD_DELAY": "0", "CONCURRENT_REQUESTS_PER_DOMAIN": "8"}


def run_demo(db_url: str, factory: sessionmaker, *, port: int) -> int:
    with DemoWeb(port=port) as web:
        out = console.out
        out.print(f"demo web: {len(web.sites)} news sites on loopback: " + ", ".join(s.base_url for s in web.sites))
        sources = [("start_url", u) for u in web.start_urls()] + [("feed", u) for u in web.feed_urls()]
        sources += [("sitemap", u) for u in web.sitemap_urls()]
        with factory.begin() as session:
            story, _ = register_story(
                session,
                SeedText(web.story_title, web.story_text, web.story_url),
                holder=DEMO_HOLDER,
                sources=sources,
                max_depth=2,
                max_pages=500,
                emails=[DEMO_EMAIL],
            )
            story_id = story.id
            known = {m.page.url for m in Matches(session).list(story_id=story_id)}
        out.print(Text(f"story {story_id}: {web.story_title} (rights holder: {DEMO_HOLDER})"))

        result = console.run_with_progress(
            lambda progress: run_crawl(db_url, story_id, settings=DEMO_CRAWL_SETTINGS, on_progress=progress)
        )
        console.print_crawl_result(result)

        with factory.begin() as session:
            found = Matches(session).list(story_id=story_id)
            table = Table("", Column("url", overflow="fold"), "site", "kind", "story reused", "page from story", title="copies found")
            for m in found:
                table.add_row(
                    "new" if m.page.url not in known else "", Text(m.page.url), Text(m.page.site or ""), m.kind,
                    f"{m.story_coverage:.0%}", f"{m.page_coverage:.0%}",
                )
            out.print(table)
            pending = session.scalar(
                select(func.count()).select_from(Alert).join(Match).where(Match.story_id == story_id, Alert.status == "pending")
            )
            found_urls = {m.page.url: m.kind for m in found}

    expected = web.expected()
    missed = sorted(set(expected) - set(found_urls))
    unexpected = sorted(set(found_urls) - set(expected))
    wrong_kind = sorted(u for u in expected if u in found_urls and found_urls[u] != expected[u])
    new = len(set(found_urls) - known)
    out.print(
        f"{new} new copies this run; {len(found_urls)} in total for the story; "
        f"{pending} alerts waiting in the outbox (`copyhound --db {console.safe_url(db_url)} matches` to review)"
    )
    out.print(
        f"planted derivatives found: {len(expected) - len(missed)} of {len(expected)}; "
        f"false alarms: {len(unexpected)}; wrong kind: {len(wrong_kind)}"
    )
    for url in missed:
        console.err.print(Text(f"missed: {url} ({expected[url]})"))
    for url in unexpected:
        console.err.print(Text(f"false alarm: {url} ({found_urls[url]})"))
    ok = result.status == "finished" and not missed and not unexpected
    return 0 if ok else 1
