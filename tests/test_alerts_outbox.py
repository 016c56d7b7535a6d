"""New means new: one alert per copy, licences, decisions and alert-type switches,
on a real database (SQLite file, and PostgreSQL when reachable)."""

from __future__ import annotations

from sqlalchemy import select

from crawler.alerts import policy
from crawler.alerts.outbox import mark, on_match, on_page_gone, on_page_seen
from crawler.console import match_rows
from storage.alert_repositories import Destinations, Licences, Outbox
from storage.models import Alert, Match, MatchDecision, Story
from storage.repositories import Matches
from tests.test_alerts_support import add_copy, make_story, match_status


def _alerts(factory) -> list[tuple[int, str, str]]:
    with factory() as s:
        return [(a.match_id, a.event, a.status) for a in s.scalars(select(Alert).order_by(Alert.id))]


def test_a_new_copy_queues_one_alert_per_destination_in_its_transaction(session_factory) -> None:
    story = make_story(session_factory, emails=["desk@harbourwire.example"], webhooks=["http://127.0.0.1:9/h"])
    match_id, queued = add_copy(session_factory, story, "https://copier.example/fish")
    assert queued == 2
    assert _alerts(session_factory) == [(match_id, "copy.new", "pending")] * 2
    with session_factory() as s:
        payload = s.scalars(select(Alert.payload)).first()
    assert payload["type"] == "copy.new" and payload["match"]["kind"] == "rewrite"
    assert payload["story"]["title"] == "Fish market to close" and payload["evidence"][0]["similarity"] == 0.83
    # Seen again unchanged: nothing new.
    _, again = add_copy(session_factory, story, "https://copier.example/fish")
    assert again == 0


def test_amp_print_and_mirror_variants_are_the_same_copy(session_factory) -> None:
    story = make_story(session_factory, webhooks=["http://127.0.0.1:9/h"])
    first, queued = add_copy(session_factory, story, "https://copier.example/news/fish")
    assert queued == 1
    for url in ("https://copier.example/news/fish/amp", "https://amp.copier.example/news/fish",
                "https://copier.example/news/fish?print=1"):
        _, queued = add_copy(session_factory, story, url, text="other chrome " * 3)
        assert queued == 0, url
    # A mirror on another site with the very same text.
    _, queued = add_copy(session_factory, story, "https://mirror.example.net/copy-of-fish")
    assert queued == 0
    # A different article on the same site is a different copy.
    _, queued = add_copy(session_factory, story, "https://copier.example/news/fish-again", text="other words entirely")
    assert queued == 1
    assert [m for m, e, _ in _alerts(session_factory)].count(first) == 1


def test_licensed_partner_is_recorded_licensed_and_alerts_only_missing_credit(session_factory) -> None:
    story = make_story(session_factory, webhooks=["http://127.0.0.1:9/h"])
    with session_factory.begin() as s:
        holder_id = s.get(Story, story).holder_id
        Licences(s).add("partner.example", holder_id=holder_id, credit_line="(Harbour Wire)")
        Licences(s).add("free.example", story_id=story)
    credited, q1 = add_copy(session_factory, story, "https://www.partner.example/a", text="Story text (Harbour Wire)")
    uncredited, q2 = add_copy(session_factory, story, "https://news.partner.example/b", text="Story text, no credit")
    free, q3 = add_copy(session_factory, story, "https://free.example/c", text="Story text c")
    assert (q1, q2, q3) == (0, 1, 0)
    assert {match_status(session_factory, m) for m in (credited, uncredited, free)} == {"licensed"}
    assert _alerts(session_factory) == [(uncredited, "credit.missing", "pending")]
    # The licence is idempotent: adding it again updates the credit line.
    with session_factory.begin() as s:
        lic = Licences(s).add("partner.example", holder_id=holder_id, credit_line="(HW)")
        assert lic.credit_line == "(HW)" and len(Licences(s).for_story(story)) == 2


def test_later_events_follow_the_destination_switches(session_factory) -> None:
    story = make_story(session_factory, webhooks=["http://127.0.0.1:9/a", "http://127.0.0.1:9/b"])
    with session_factory.begin() as s:
        first, second = (d.id for d in Destinations(s).list())
        Destinations(s).set_events(second, ["copy.new", "copy.changed"])
    match_id, queued = add_copy(session_factory, story, "https://copier.example/x")
    assert queued == 2
    # The page changes: only the destination that switched copy.changed on hears of it.
    with session_factory.begin() as s:
        match = s.get(Match, match_id)
        changed = on_match(s, match, is_new=False, page_changed=True)
        assert [(a.destination_id, a.event) for a in changed] == [(second, "copy.changed")]
    # The page is gone, then back: removed and reappeared go to the defaults (first).
    with session_factory.begin() as s:
        removed = on_page_gone(s, s.get(Match, match_id).page_id)
        assert [(a.destination_id, a.event) for a in removed] == [(first, "copy.removed")]
    assert match_status(session_factory, match_id) == "removed"
    with session_factory.begin() as s:
        back = on_page_seen(s, s.get(Match, match_id).page_id)
        assert [(a.destination_id, a.event) for a in back] == [(first, "copy.reappeared")]
        assert on_page_seen(s, s.get(Match, match_id).page_id) == []
    assert match_status(session_factory, match_id) == "active"


def test_marking_a_false_positive_withdraws_its_alerts_and_shows_in_matches(session_factory) -> None:
    story = make_story(session_factory, webhooks=["http://127.0.0.1:9/h"])
    match_id, _ = add_copy(session_factory, story, "https://copier.example/x")
    with session_factory.begin() as s:
        match, previous, withdrawn = mark(s, match_id, "false_positive")
        assert (previous, withdrawn) == ("active", 1)
    assert _alerts(session_factory) == [(match_id, "copy.new", "suppressed")]
    with session_factory() as s:
        assert [d.decision for d in s.scalars(select(MatchDecision))] == ["false_positive"]
        rows = match_rows(Matches(s).list(story_id=story))
    assert rows[0]["status"] == "false_positive"
    # Later events about the copy stay silent; its AMP variant inherits the decision.
    with session_factory.begin() as s:
        assert on_match(s, s.get(Match, match_id), is_new=False, page_changed=True) == []
    amp_id, queued = add_copy(session_factory, story, "https://copier.example/x/amp", text="different chrome")
    assert queued == 0 and match_status(session_factory, amp_id) == "false_positive"


def test_ignoring_a_site_silences_its_other_copies(session_factory) -> None:
    story = make_story(session_factory, webhooks=["http://127.0.0.1:9/h"])
    first, _ = add_copy(session_factory, story, "https://spam.example/one")
    with session_factory.begin() as s:
        mark(s, first, "ignore_site")
    later, queued = add_copy(session_factory, story, "https://www.spam.example/two", text="another page")
    assert queued == 0 and match_status(session_factory, later) == "ignored"
    assert match_status(session_factory, first) == "ignored"
    other, queued = add_copy(session_factory, story, "https://fine.example/three", text="third page")
    assert queued == 1


def test_marking_licensed_keeps_credit_alerts(session_factory) -> None:
    story = make_story(session_factory, webhooks=["http://127.0.0.1:9/h"])
    match_id, _ = add_copy(session_factory, story, "https://copier.example/x")
    with session_factory.begin() as s:
        Outbox(s).enqueue(s.get(Match, match_id), event=policy.CREDIT_MISSING, payload={"type": "credit.missing"},
                          default_events=policy.DEFAULT_EVENTS)
        _, _, withdrawn = mark(s, match_id, "licensed")
    assert withdrawn == 1
    assert sorted((e, st) for _, e, st in _alerts(session_factory)) == [
        ("copy.new", "suppressed"), ("credit.missing", "pending")
    ]
