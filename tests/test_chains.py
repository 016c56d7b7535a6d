"""Copy chains: a copy taken from another copy is linked to it, the first seen first."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import select

from crawler.chains import find_edges, record_edges
from storage.models import CopyEdge
from tests.test_report import add_copy, add_story, demo_texts

T0 = datetime(2025, 3, 1, 8, 0, tzinfo=UTC)
MISSION = ("aggregator_page", "001", "002", "003", "004")


def _mission(corpus_dir: Path) -> tuple[str, dict[str, str]]:
    d = corpus_dir / "mission"
    seed = (d / "seed" / "reuters_deepseek_r2.txt").read_text(encoding="utf-8")
    return seed, {name: (d / "candidates" / f"{name}.txt").read_text(encoding="utf-8") for name in MISSION}


def test_mission_004_is_linked_to_003_and_nothing_else(corpus_dir: Path) -> None:
    seed, texts = _mission(corpus_dir)
    ids = {name: i for i, name in enumerate(MISSION, start=1)}
    copies = [(ids[n], texts[n], T0 + timedelta(hours=i)) for i, n in enumerate(MISSION)]
    edges = find_edges(seed, copies)
    assert [(e.source_id, e.copy_id) for e in edges] == [(ids["003"], ids["004"])]
    assert edges[0].kind == "rewrite" and 0.25 <= edges[0].similarity <= 1.0


def test_mission_chain_direction_follows_first_seen(corpus_dir: Path) -> None:
    """Had 004 been seen first, 003 would be the copy of it."""
    seed, texts = _mission(corpus_dir)
    copies = [(3, texts["003"], T0 + timedelta(days=2)), (4, texts["004"], T0), (1, texts["001"], T0 + timedelta(days=1))]
    assert [(e.source_id, e.copy_id) for e in find_edges(seed, copies)] == [(4, 3)]


def _hand_made() -> tuple[str, dict[str, str]]:
    """The demo story; a rewrite of it; a scraper's copy of that rewrite (its own wording,
    lightly edited); a straight copy of the story; an independent report."""
    _, story, articles = demo_texts()
    rewrite = articles["eastquay-rewrite"]
    scraped = (
        "Port news roundup.\n\n"
        + rewrite.replace("harbour chiefs", "port bosses").replace("Tuesday evening", "Tuesday night")
        + "\n\nShare this story with your friends."
    )
    return story, {
        "rewrite": rewrite,
        "scraped": scraped,
        "copy": articles["eastquay-copy"],
        "independent": articles["eastquay-vote-night"],
    }


def test_a_copy_of_a_rewrite_is_linked_to_the_rewrite_only() -> None:
    story, t = _hand_made()
    copies = [
        (10, t["copy"], T0),
        (11, t["rewrite"], T0 + timedelta(hours=2)),
        (12, t["independent"], T0 + timedelta(hours=3)),
        (13, t["scraped"], T0 + timedelta(days=1)),
    ]
    edges = find_edges(story, copies)
    assert [(e.source_id, e.copy_id) for e in edges] == [(11, 13)]
    assert edges[0].kind == "copy", "the scraper's page is a near-verbatim copy of the rewrite"
    assert edges[0].similarity > 0.5


def test_independent_copies_of_the_story_are_not_chained() -> None:
    """Two pages that each took the story directly (a verbatim copy and a rewrite) share
    only the story's wording: no edge, whatever their order."""
    story, t = _hand_made()
    for order in ((t["copy"], t["rewrite"]), (t["rewrite"], t["copy"])):
        copies = [(1, order[0], T0), (2, order[1], T0 + timedelta(hours=1))]
        assert find_edges(story, copies) == []


def test_bad_input_gives_no_edges() -> None:
    story, t = _hand_made()
    assert find_edges(story, []) == []
    assert find_edges(story, [(1, "", T0), (2, "   ", T0), (3, t["rewrite"], T0)]) == []
    # Same first_seen: the lower page id counts as first.
    same = [(7, t["scraped"], T0), (5, t["rewrite"], T0)]
    assert [(e.source_id, e.copy_id) for e in find_edges(story, same)] == [(5, 7)]


def test_record_edges_stores_the_chain_idempotently(session_factory) -> None:
    title, _, _ = demo_texts()
    story_text, t = _hand_made()
    with session_factory.begin() as session:
        story = add_story(session, title, story_text)
        add_copy(session, story, "https://northgate.example/copy", t["copy"], first_seen=T0)
        rewrite = add_copy(session, story, "https://coast.example/rewrite", t["rewrite"], first_seen=T0 + timedelta(hours=2))
        scraped = add_copy(session, story, "https://scraper.example/p", t["scraped"], first_seen=T0 + timedelta(days=1))
        story_id, rewrite_page, scraped_page, scraped_match = story.id, rewrite.page_id, scraped.page_id, scraped.id

    for _ in range(2):  # re-running changes nothing
        with session_factory.begin() as session:
            edges = record_edges(session, story_id)
        assert [(e.source_id, e.copy_id) for e in edges] == [(rewrite_page, scraped_page)]
        with session_factory.begin() as session:
            rows = session.execute(select(CopyEdge.source_page_id, CopyEdge.copy_page_id, CopyEdge.kind)).all()
        assert [tuple(r) for r in rows] == [(rewrite_page, scraped_page, "copy")]

    # A person says the scraped page is not a copy: it is no longer part of a chain.
    from crawler.alerts.outbox import mark
    from storage.repositories import Matches, Pages

    with session_factory.begin() as session:
        mark(session, scraped_match, "false_positive")
    with session_factory.begin() as session:
        assert record_edges(session, story_id) == []
        assert session.scalar(select(CopyEdge.id)) is None

    # Back to active, the edge returns; then the page's text changes to a straight copy
    # of the story, and the edge goes again.
    with session_factory.begin() as session:
        Matches(session).set_status(scraped_match, "active")
        assert len(record_edges(session, story_id)) == 1
    with session_factory.begin() as session:
        Pages(session).get(scraped_page).text = t["copy"]
    with session_factory.begin() as session:
        assert record_edges(session, story_id) == []
        assert session.scalar(select(CopyEdge.id)) is None


def test_record_edges_on_an_unknown_or_empty_story(session_factory) -> None:
    with session_factory.begin() as session:
        assert record_edges(session, 999) == []
        story = add_story(session, "Lonely", "A story that nobody has copied anywhere yet.", holder=None)
        assert record_edges(session, story.id) == []


def test_many_copies_stay_bounded(monkeypatch) -> None:
    """Each copy is compared with at most a few earlier copies, whatever their number."""
    import crawler.chains as chains

    story, t = _hand_made()
    calls = []
    real = chains.compare
    monkeypatch.setattr(chains, "compare", lambda a, b, **kw: calls.append(1) or real(a, b, **kw))
    n = 24
    copies = [(i, t["rewrite"] + f"\n\nEdition {i} of a syndicated feed, with thanks to our partner number{i}.",
               T0 + timedelta(minutes=i)) for i in range(n)]
    edges = find_edges(story, copies)
    assert len(calls) <= n + 2 * chains.MAX_CANDIDATES * n
    assert all(e.source_id < e.copy_id for e in edges), "sources are always seen before their copies"
