"""Hourly and daily digests: alerts of a finished window go out as one message."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from aiosmtpd.controller import Controller
from sqlalchemy import select, update

from crawler.alerts.dispatcher import Dispatcher, window_start
from storage.models import Alert, AlertDigest
from tests.test_alerts_support import PAGE_TEXT, MailSink, Receiver, add_copy, free_port, make_story, smtp_env, webhook_env

T0 = datetime(2026, 11, 25, 10, 20, tzinfo=UTC)


def _age_alerts(factory, when: datetime) -> None:
    with factory.begin() as s:
        s.execute(update(Alert).values(created_at=when))


def test_window_start() -> None:
    assert window_start("hourly", T0) == datetime(2026, 11, 25, 10, 0, tzinfo=UTC)
    assert window_start("daily", T0) == datetime(2026, 11, 25, 0, 0, tzinfo=UTC)


def test_hourly_webhook_digest_groups_the_window_into_one_signed_message(session_factory) -> None:
    with Receiver() as receiver:
        story = make_story(session_factory, webhooks=[receiver.url], digest="hourly")
        for n in range(3):
            add_copy(session_factory, story, f"https://copier{n}.example/fish", text=f"copy {n}")
        _age_alerts(session_factory, T0)
        # Still inside the window: nothing goes out.
        early = Dispatcher(session_factory, env=webhook_env(), clock=lambda: T0 + timedelta(minutes=30)).run_once()
        assert early.sent == 0 and receiver.deliveries == []
        late = Dispatcher(session_factory, env=webhook_env(), clock=lambda: T0 + timedelta(minutes=45)).run_once()
        assert (late.sent, late.digests_sent) == (3, 1)
        # Cutting again is a no-op; nothing is sent twice.
        again = Dispatcher(session_factory, env=webhook_env(), clock=lambda: T0 + timedelta(hours=3)).run_once()
        assert again.sent == 0
        assert len(receiver.deliveries) == 1
        delivery = receiver.deliveries[0]
    assert delivery.verified
    body = delivery.payload
    assert body["type"] == "digest" and body["period"] == "hourly" and body["schema"] == "copyhound.digest/1"
    assert body["id"] == delivery.headers["webhook-id"]
    assert sorted(a["page"]["url"] for a in body["alerts"]) == [f"https://copier{n}.example/fish" for n in range(3)]
    with session_factory() as s:
        assert [a.status for a in s.scalars(select(Alert))] == ["sent"] * 3
        digest = s.scalars(select(AlertDigest)).one()
        assert (digest.status, digest.window_end) == ("sent", datetime(2026, 11, 25, 11, 0, tzinfo=UTC))


def test_daily_email_digest_and_immediate_destinations_side_by_side(session_factory) -> None:
    sink = MailSink()
    controller = Controller(sink, hostname="127.0.0.1", port=free_port())
    controller.start()
    try:
        story = make_story(session_factory, emails=["daily@harbourwire.example"], digest="daily")
        other = make_story(session_factory, holder="Other Paper", emails=["now@other.example"], title="Other story")
        add_copy(session_factory, story, "https://a.example/x", text=PAGE_TEXT + " a")
        add_copy(session_factory, story, "https://b.example/y", text=PAGE_TEXT + " b")
        _age_alerts(session_factory, T0)
        add_copy(session_factory, other, "https://c.example/z", text=PAGE_TEXT + " c")
        env = smtp_env(controller.port)
        report = Dispatcher(session_factory, env=env, clock=lambda: T0 + timedelta(days=1)).run_once()
    finally:
        controller.stop()
    assert (report.sent, report.digests_sent, report.errors) == (3, 1, [])
    assert len(sink.messages) == 2
    immediate, message = sink.messages
    assert immediate["To"] == "now@other.example" and immediate["Subject"].startswith("New rewrite of “Other story”")
    assert message["To"] == "daily@harbourwire.example"
    assert message["Subject"] == "copyhound daily digest: 2 alerts on “Fish market to close”"
    text = message.get_body(("plain",)).get_content()
    assert "https://a.example/x" in text and "https://b.example/y" in text and "==== 2/2 ====" in text
    assert "<mark>" in message.get_body(("html",)).get_content()


def test_a_failing_digest_is_retried_with_the_same_id(session_factory) -> None:
    with Receiver(script=[500]) as receiver:
        story = make_story(session_factory, webhooks=[receiver.url], digest="hourly")
        add_copy(session_factory, story, "https://copier.example/fish")
        _age_alerts(session_factory, T0)
        clock = [T0 + timedelta(hours=1)]
        dispatcher = Dispatcher(session_factory, env=webhook_env(), clock=lambda: clock[0])
        first = dispatcher.run_once()
        assert first.retrying == 1
        clock[0] += timedelta(minutes=5)
        second = dispatcher.run_once()
        assert second.sent == 1
        ids = receiver.ids()
    assert len(ids) == 2 and len(set(ids)) == 1
