"""Every occurrence of a later event is alerted once: a copy taken down, put back and
taken down again is two `copy.removed`, while the same taking-down recorded twice
(a re-run, a retry after a crash, a second worker) stays one. On a real database
(SQLite file and PostgreSQL), with real webhook deliveries and a real crawl."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import exc, inspect, select, text, update

from crawler.alerts.dispatcher import Dispatcher
from crawler.alerts.outbox import on_page_gone, on_page_seen
from crawler.crawling import run_crawl
from crawler.reporting.data import load_report
from storage.alert_repositories import Destinations, Licences
from storage.engine import SQLITE_IMMEDIATE, alembic_config, current_revision, make_engine, upgrade
from storage.engine import session_factory as make_factory
from storage.models import Alert, AlertDigest, Base, Match, Story
from tests.servers import LocalServer, Reply, html_page
from tests.test_alerts_support import Receiver, add_copy, make_story, match_status, webhook_env
from tests.test_cli import STORY
from tests.test_discovery import SETTINGS, register

URL = "https://copier.example/fish"


def _page_id(factory, match_id: int) -> int:
    with factory() as s:
        return s.get(Match, match_id).page_id


def gone(factory, match_id: int) -> int:
    """The copy's page answered 404: alerts queued."""
    with factory.begin() as s:
        return len(on_page_gone(s, _page_id(factory, match_id)))


def back(factory, match_id: int) -> int:
    """The copy's page answers again, text unchanged: alerts queued."""
    with factory.begin() as s:
        return len(on_page_seen(s, _page_id(factory, match_id)))


def alerts(factory) -> list[tuple[int | None, str, str]]:
    with factory() as s:
        return [(a.destination_id, a.event, a.occurrence) for a in s.scalars(select(Alert).order_by(Alert.id))]


def test_taken_down_put_back_twice_is_two_alerts_of_each_per_destination(session_factory) -> None:
    story = make_story(session_factory, emails=["desk@harbourwire.example"], webhooks=["http://127.0.0.1:9/h"])
    match_id, queued = add_copy(session_factory, story, URL)
    assert queued == 2
    assert [gone(session_factory, match_id), back(session_factory, match_id)] == [2, 2]
    assert [gone(session_factory, match_id), back(session_factory, match_id)] == [2, 2]
    rows = alerts(session_factory)
    per_destination = Counter((d, e) for d, e, _ in rows)
    destinations = sorted({d for d, _, _ in rows})
    assert len(destinations) == 2
    for d in destinations:
        assert (per_destination[d, "copy.new"], per_destination[d, "copy.removed"],
                per_destination[d, "copy.reappeared"]) == (1, 2, 2)
    # Each occurrence is named by the status period its change opened.
    assert sorted({(e, o) for _, e, o in rows}) == [
        ("copy.new", "1"), ("copy.reappeared", "3"), ("copy.reappeared", "5"),
        ("copy.removed", "2"), ("copy.removed", "4"),
    ]
    assert match_status(session_factory, match_id) == "active"


def test_the_same_taking_down_recorded_again_is_one_alert(session_factory) -> None:
    story = make_story(session_factory, webhooks=["http://127.0.0.1:9/h"])
    match_id, _ = add_copy(session_factory, story, URL)
    # A worker reads the copy while it is still up...
    late = session_factory()
    stale = late.get(Match, match_id)
    assert stale.status == "active"
    # ...a crash loses a first recording (rolled back), the retry records it...
    with pytest.raises(RuntimeError), session_factory.begin() as s:
        on_page_gone(s, stale.page_id)
        raise RuntimeError("worker killed")
    assert gone(session_factory, match_id) == 1
    # ...a crawl re-run finds it already removed...
    assert gone(session_factory, match_id) == 0
    # ...and the worker that read it before records the same change from its stale
    # view: it computes the same occurrence, so the unique key drops its row.
    try:
        assert on_page_gone(late, stale.page_id) == []
        assert (stale.status, stale.status_period) == ("removed", 2)
        late.commit()
    finally:
        late.close()
    assert [(e, o) for _, e, o in alerts(session_factory)] == [("copy.new", "1"), ("copy.removed", "2")]


def test_each_new_text_of_a_copy_is_one_copy_changed(session_factory) -> None:
    story = make_story(session_factory, webhooks=["http://127.0.0.1:9/h"])
    with session_factory.begin() as s:
        (destination,) = Destinations(s).list()
        Destinations(s).set_events(destination.id, ["copy.new", "copy.changed", "copy.removed", "copy.reappeared"])
    match_id, _ = add_copy(session_factory, story, URL)
    first = "The harbour authority said the fish market will close in March after ninety years."
    second = "Update: the harbour authority now says the fish market will close in April instead."
    assert add_copy(session_factory, story, URL, text=first) == (match_id, 1)
    assert add_copy(session_factory, story, URL, text=second) == (match_id, 1)
    assert add_copy(session_factory, story, URL, text=second) == (match_id, 0)  # the same text again
    # Taken down and put back, the copy is told about when it changes again.
    gone(session_factory, match_id)
    back(session_factory, match_id)
    assert add_copy(session_factory, story, URL, text=first) == (match_id, 1)
    events = Counter(e for _, e, _ in alerts(session_factory))
    assert events == {"copy.new": 1, "copy.changed": 3, "copy.removed": 1, "copy.reappeared": 1}


def test_credit_missing_again_after_the_copy_comes_back_or_changes(session_factory) -> None:
    story = make_story(session_factory, webhooks=["http://127.0.0.1:9/h"])
    with session_factory.begin() as s:
        Licences(s).add("partner.example", holder_id=s.get(Story, story).holder_id, credit_line="(Harbour Wire)")
    url = "https://partner.example/fish"
    match_id, queued = add_copy(session_factory, story, url, text="Story text, no credit")
    assert queued == 1
    assert add_copy(session_factory, story, url, text="Story text, no credit") == (match_id, 0)
    assert gone(session_factory, match_id) == 0  # a licensed copy's removal is no alert
    assert back(session_factory, match_id) == 1  # back up, still without the credit
    assert add_copy(session_factory, story, url, text="Story text, edited, no credit") == (match_id, 1)
    assert add_copy(session_factory, story, url, text="Story text (Harbour Wire)") == (match_id, 0)
    assert [e for _, e, _ in alerts(session_factory)] == ["credit.missing"] * 3


def test_each_occurrence_has_its_own_delivery_id_kept_across_retries(session_factory) -> None:
    with Receiver(script=[200, 500]) as receiver:
        story = make_story(session_factory, webhooks=[receiver.url])
        match_id, _ = add_copy(session_factory, story, URL)
        gone(session_factory, match_id)
        back(session_factory, match_id)
        gone(session_factory, match_id)
        dispatcher = Dispatcher(session_factory, env=webhook_env())
        for _ in range(5):
            dispatcher.run_once()
            with session_factory() as s:
                if all(a.status == "sent" for a in s.scalars(select(Alert))):
                    break
        ids = receiver.ids()
        accepted = receiver.accepted()
    with session_factory() as s:
        rows = list(s.scalars(select(Alert).order_by(Alert.id)))
    assert [(a.event, a.status) for a in rows] == [
        ("copy.new", "sent"), ("copy.removed", "sent"), ("copy.reappeared", "sent"), ("copy.removed", "sent")
    ]
    # The first removal failed once: its retry carried the same webhook-id.
    assert len({a.delivery_id for a in rows}) == 4
    assert Counter(ids) == {rows[0].delivery_id: 1, rows[1].delivery_id: 2, rows[2].delivery_id: 1,
                            rows[3].delivery_id: 1}
    assert [accepted[a.delivery_id]["type"] for a in rows] == [a.event for a in rows]


def test_a_digest_lists_each_occurrence(session_factory) -> None:
    t0 = datetime(2026, 11, 25, 10, 20, tzinfo=UTC)
    with Receiver() as receiver:
        story = make_story(session_factory, webhooks=[receiver.url], digest="hourly")
        match_id, _ = add_copy(session_factory, story, URL)
        gone(session_factory, match_id)
        back(session_factory, match_id)
        gone(session_factory, match_id)
        with session_factory.begin() as s:
            s.execute(update(Alert).values(created_at=t0))
        report = Dispatcher(session_factory, env=webhook_env(), clock=lambda: t0 + timedelta(hours=1)).run_once()
        assert (report.sent, report.digests_sent) == (4, 1)
        (delivery,) = receiver.deliveries
    assert delivery.verified
    assert [a["type"] for a in delivery.payload["alerts"]] == [
        "copy.new", "copy.removed", "copy.reappeared", "copy.removed"
    ]
    with session_factory() as s:
        assert s.scalars(select(AlertDigest.status)).one() == "sent"


def test_the_report_shows_each_occurrence(session_factory) -> None:
    story = make_story(session_factory, webhooks=["http://127.0.0.1:9/h"])
    match_id, _ = add_copy(session_factory, story, URL)
    for step in (gone, back, gone, back):
        step(session_factory, match_id)
    # The holder stops hearing of removals: the third one is shown all the same.
    with session_factory.begin() as s:
        (destination,) = Destinations(s).list()
        Destinations(s).set_events(destination.id, ["copy.new", "copy.reappeared"])
    assert gone(session_factory, match_id) == 0

    def labels() -> list[str]:
        with session_factory() as s:
            (copy,) = load_report(s, story).copies
            return [e.label for e in copy.events]

    shown = labels()
    assert [label for label in shown if label.startswith("alerted")] == [
        "alerted: new copy", "alerted: copy removed", "alerted: copy reappeared",
        "alerted: copy removed (2nd time)", "alerted: copy reappeared (2nd time)",
    ]
    assert "removed" in shown  # the third removal, which no alert announced
    # Once a removal is alerted, it is not listed a second time.
    with session_factory.begin() as s:
        Destinations(s).set_events(destination.id, None)
    back(session_factory, match_id)
    gone(session_factory, match_id)
    shown = labels()
    assert shown.count("alerted: copy removed (3rd time)") == 1 and "removed" not in shown


def test_a_copy_going_away_twice_in_real_crawls_is_alerted_twice(db_url, session_factory) -> None:
    copy = Reply(body=html_page("Ferry yard to close its dry dock", STORY))
    with LocalServer({"/": Reply(body=b"<html><body><a href='/copy'>copy</a></body></html>"), "/copy": copy}) as server:
        story_id = register(session_factory, [("start_url", server.url("/"))])
        answers = [copy, Reply(404, b"<html><body>gone</body></html>"), copy,
                   Reply(404, b"<html><body>gone</body></html>"), copy, copy]
        queued = []
        for answer in answers:
            server.routes["/copy"] = answer
            run = run_crawl(db_url, story_id, settings=SETTINGS)
            assert run.status == "finished", run.error
            queued.append(run.counts.get("alerts_queued", 0))
    assert queued == [1, 1, 1, 1, 1, 0]  # one destination; the last run changes nothing
    assert [e for _, e, _ in alerts(session_factory)] == [
        "copy.new", "copy.removed", "copy.reappeared", "copy.removed", "copy.reappeared"
    ]


# --- migration 0005 -------------------------------------------------------------------


def _downgrade(engine, revision: str) -> None:
    """As storage.engine.upgrade does it: one transaction on a connection we own."""
    config = alembic_config()
    with engine.connect().execution_options(**{SQLITE_IMMEDIATE: True}) as connection, connection.begin():
        config.attributes["connection"] = connection
        command.downgrade(config, revision)


def _schema_matches_models(engine) -> None:
    with engine.connect() as conn:
        assert compare_metadata(MigrationContext.configure(conn, opts={"compare_type": True}), Base.metadata) == []


def _seed_0004(engine) -> None:
    """A database written by copyhound at revision 0004: a copy alerted as new and as
    removed to two destinations, the email one through an hourly digest."""
    rows = [
        "INSERT INTO rights_holders (id, name, created_at) VALUES (1, 'Harbour Wire', '2026-01-01 00:00:00')",
        "INSERT INTO destinations (id, holder_id, channel, target, digest, enabled) VALUES "
        "(1, 1, 'email', 'desk@harbourwire.example', 'hourly', true), "
        "(2, 1, 'webhook', 'http://127.0.0.1:9/h', 'immediate', true)",
        "INSERT INTO stories (id, holder_id, title, text, text_hash, created_at, updated_at) "
        "VALUES (1, 1, 'Fish', 'Story text', 'h', '2026-01-01 00:00:00', '2026-01-01 00:00:00')",
        "INSERT INTO pages (id, url, fetched_at, content_hash, http_status, text) "
        f"VALUES (1, '{URL}', '2026-01-01 00:00:00', 'c0ffee', 404, 'Story text copied')",
        "INSERT INTO matches (id, story_id, page_id, kind, confidence, story_coverage, page_coverage, scores, "
        "evidence, first_seen, last_seen, status) VALUES (1, 1, 1, 'copy', 0.9, 0.9, 0.9, '{}', '[]', "
        "'2026-01-01 00:00:00', '2026-01-01 00:00:00', 'removed')",
        "INSERT INTO alerts (id, match_id, destination_id, event, channel, payload, status, attempts, created_at) "
        "VALUES (1, 1, 1, 'copy.new', 'email', '{}', 'pending', 0, '2026-01-01 00:00:00'), "
        "(2, 1, 2, 'copy.new', 'webhook', '{}', 'sent', 1, '2026-01-01 00:00:00'), "
        "(3, 1, 1, 'copy.removed', 'email', '{}', 'pending', 0, '2026-01-02 00:00:00'), "
        "(4, 1, 2, 'copy.removed', 'webhook', '{}', 'sent', 1, '2026-01-02 00:00:00')",
        "INSERT INTO alert_digests (id, destination_id, period, window_end, delivery_id, status, attempts, created_at) "
        "VALUES (1, 1, 'hourly', '2026-01-02 01:00:00', 'msg_digest', 'pending', 0, '2026-01-02 01:00:00')",
        "INSERT INTO alert_digest_items (alert_id, digest_id) VALUES (1, 1), (3, 1)",
    ]
    with engine.begin() as conn:
        for sql in rows:
            conn.execute(text(sql))
        if conn.dialect.name == "postgresql":  # explicit ids: move the sequences past them
            for table in ("rights_holders", "destinations", "stories", "pages", "matches", "alerts", "alert_digests"):
                conn.execute(text(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), 10)"))


def _digest_items(engine) -> list[tuple[int, int]]:
    with engine.connect() as conn:
        return [tuple(r) for r in conn.execute(text("SELECT alert_id, digest_id FROM alert_digest_items ORDER BY 1"))]


def test_migration_0005_keeps_old_alerts_and_goes_back_down(db_url: str) -> None:
    engine = make_engine(db_url)
    try:
        upgrade(engine, "0004")
        _seed_0004(engine)
        upgrade(engine)
        assert current_revision(engine) == "0005"
        _schema_matches_models(engine)
        factory = make_factory(engine)
        with factory() as s:
            assert [(a.id, a.occurrence) for a in s.scalars(select(Alert).order_by(Alert.id))] == [
                (1, "1"), (2, "1"), (3, "1"), (4, "1")
            ]
            assert s.get(Match, 1).status_period == 1
        assert _digest_items(engine) == [(1, 1), (3, 1)]  # the table rebuild kept them

        # The old removal does not swallow the next one.
        assert back(factory, 1) == 2
        assert gone(factory, 1) == 2
        assert Counter(e for _, e, _ in alerts(factory)) == {"copy.new": 2, "copy.removed": 4, "copy.reappeared": 2}

        # Down again: one alert per (match, destination, event), the first one kept.
        _downgrade(engine, "0004")
        assert current_revision(engine) == "0004"
        with engine.connect() as conn:
            kept = conn.execute(text("SELECT id, event FROM alerts ORDER BY id")).all()
            assert [e for _, e in kept] == ["copy.new"] * 2 + ["copy.removed"] * 2 + ["copy.reappeared"] * 2
            assert [i for i, _ in kept][:4] == [1, 2, 3, 4]
        assert "occurrence" not in {c["name"] for c in inspect(engine).get_columns("alerts")}
        assert "status_period" not in {c["name"] for c in inspect(engine).get_columns("matches")}
        assert _digest_items(engine) == [(1, 1), (3, 1)]
        with pytest.raises(exc.IntegrityError), engine.begin() as conn:  # the old key is back
            conn.execute(text(
                "INSERT INTO alerts (match_id, destination_id, event, channel, payload, status, attempts, created_at) "
                "VALUES (1, 1, 'copy.removed', 'email', '{}', 'pending', 0, '2026-01-03 00:00:00')"
            ))

        upgrade(engine)
        _schema_matches_models(engine)
        assert _digest_items(engine) == [(1, 1), (3, 1)]
    finally:
        engine.dispose()
