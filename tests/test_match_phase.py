"""The crawl's match phase: pages judged in batches, each recorded in its own transaction."""

from __future__ import annotations

from sqlalchemy import func, select

import crawler.monitoring as monitoring
from crawler.extraction import content_hash
from crawler.monitoring import MatchPhase, store_page
from storage.models import Match, Page
from storage.repositories import Pages, Stories

STORY = (
    "Harbour officials in Westmoor voted on Tuesday to demolish the Kettleby grain silo, "
    "a listed 1911 landmark, after engineers found corrosion in 46 of its 52 steel hoops.\n\n"
    "The board's chair, Annelise Dorrington, said the repair estimate of 8.3 million pounds "
    "could not be justified while the port's dredging budget had been cut twice since 2019.\n\n"
    "Heritage campaigners said they would seek a judicial review, arguing that the survey "
    "commissioned by the port had ignored a cheaper scheme drawn up by Brackwell Partners.\n\n"
    "Demolition is due to begin in the spring and take eleven weeks, the board said, with the "
    "cleared quay leased to a ferry operator that has not yet been named."
)
UNRELATED = [
    "The county library service will extend its opening hours in three towns from next month, "
    "after volunteers offered to staff reading rooms on weekday evenings and Saturday mornings. "
    f"Branch {n} will also host a weekly repair cafe for small electrical appliances."
    for n in range(5)
]


def _add_story(factory) -> int:
    with factory.begin() as session:
        story, _ = Stories(session).add(title="Kettleby silo to be demolished", text=STORY)
        return story.id


def _store(factory, url: str, text: str) -> None:
    store_page(factory, url=url, text=text, content_hash=content_hash(text), http_status=200)


def _match_count(factory) -> int:
    with factory.begin() as session:
        return session.scalar(select(func.count()).select_from(Match))


def test_pages_are_judged_in_batches_and_recorded_once(session_factory, monkeypatch):
    monkeypatch.setattr(monitoring, "MATCH_BATCH", 2)  # 7 pages: batches of 2, 2, 2, 1
    _add_story(session_factory)
    copies = [f"Home | News | Sport\n\n{STORY}\n\nSubscribe for {n} pounds a month." for n in (3, 5)]
    for i, text in enumerate(UNRELATED + copies):
        _store(session_factory, f"http://127.0.0.1:9/p{i}", text)

    counts = MatchPhase.load(session_factory).run()

    assert counts.pages_matched == 7
    assert counts.matches_new == 2
    with session_factory.begin() as session:
        matched = session.scalars(select(Page.url).join(Match, Match.page_id == Page.id)).all()
    assert sorted(matched) == ["http://127.0.0.1:9/p5", "http://127.0.0.1:9/p6"]
    with session_factory.begin() as session:
        assert Pages(session).pending_match_ids() == []
    again = MatchPhase.load(session_factory).run()
    assert again.pages_matched == 0 and _match_count(session_factory) == 2


def test_a_page_changed_after_judgement_is_not_recorded_with_the_old_verdict(session_factory):
    _add_story(session_factory)
    url = "http://127.0.0.1:9/copy"
    _store(session_factory, url, f"Menu\n\n{STORY}")
    with session_factory.begin() as session:
        page = session.scalar(select(Page).where(Page.url == url))
        page_id, judged_hash, judged_text = page.id, page.content_hash, page.text
    phase = MatchPhase.load(session_factory)
    [verdicts] = phase.matcher.match_many([judged_text])
    assert any(v.derived for _, v in verdicts)

    _store(session_factory, url, UNRELATED[0])  # the copy was edited away meanwhile
    counts = phase.record_page(page_id, judged_hash, verdicts)

    assert counts.pages_matched == 0 and _match_count(session_factory) == 0
    with session_factory.begin() as session:
        assert Pages(session).pending_match_ids() == [page_id]  # judged again next run
