"""Email alerts against a real SMTP server on 127.0.0.1 (aiosmtpd): the received
message, STARTTLS and SSL with a test certificate, rejected logins, a server that is
down, and missing settings."""

from __future__ import annotations

import logging
import ssl

import pytest
from aiosmtpd.controller import Controller
from sqlalchemy import select

from crawler.alerts.dispatcher import Dispatcher
from crawler.alerts.email import SmtpSettings
from crawler.alerts.errors import ConfigError
from storage.models import Alert, Page
from tests.test_alerts_support import (
    SMTP_PASSWORD,
    MailSink,
    add_copy,
    free_port,
    make_story,
    password_checker,
    self_signed_cert,
    smtp_env,
)

HOSTILE_TITLE = 'Fish <script>alert("x")</script> market'


@pytest.fixture
def smtp():
    sink = MailSink()
    controller = Controller(sink, hostname="127.0.0.1", port=free_port())
    controller.start()
    yield sink, controller.port
    controller.stop()


def _status(factory) -> list[tuple[str, int]]:
    with factory() as s:
        return [(a.status, a.attempts) for a in s.scalars(select(Alert).order_by(Alert.id))]


def test_alert_email_carries_the_evidence_in_text_and_html(session_factory, smtp) -> None:
    sink, port = smtp
    story = make_story(session_factory, emails=["desk@harbourwire.example"])
    match_id, _ = add_copy(session_factory, story, "https://copier.example/fish?a=1&b=2", title=HOSTILE_TITLE)
    report = Dispatcher(session_factory, env=smtp_env(port)).run_once()
    assert (report.sent, report.errors) == (1, [])
    assert len(sink.messages) == 1
    message = sink.messages[0]
    assert sink.envelopes[0] == ("alerts@copyhound.test", ["desk@harbourwire.example"])
    assert message["Subject"] == "New rewrite of “Fish market to close” on copier.example"
    assert message["To"] == "desk@harbourwire.example"
    with session_factory() as s:
        alert = s.scalars(select(Alert)).one()
        assert message["Message-ID"] == f"<{alert.delivery_id}@copyhound>"
        first_seen = s.get(Page, 1).matches[0].first_seen.strftime("%Y-%m-%d %H:%M")
    assert message.get_content_type() == "multipart/alternative"
    text = message.get_body(("plain",)).get_content()
    html = message.get_body(("html",)).get_content()
    for part in (text, html):
        assert "72%" in part  # share of the story reused
        assert "Fish market to close" in part
        assert f"{first_seen} UTC" in part
    assert "https://copier.example/fish?a=1&b=2" in text
    assert 'href="https://copier.example/fish?a=1&amp;b=2"' in html
    assert "The harbour authority confirmed on Tuesday" in text
    assert "<mark>" in html and "harbour authority confirmed on Tuesday that the old fish market at East Quay" in html
    # Scraped content is escaped in the HTML part.
    assert "<script>" not in html and "&lt;script&gt;" in html
    assert HOSTILE_TITLE in text
    assert f"copyhound matches mark {match_id} --false-positive" in text


@pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS:UserWarning")  # the test server
def test_starttls_and_ssl_with_login(session_factory, tmp_path) -> None:
    cert, key = self_signed_cert(tmp_path)
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_context.load_cert_chain(cert, key)
    story = make_story(session_factory, emails=["desk@harbourwire.example"])
    for mode in ("starttls", "ssl"):
        add_copy(session_factory, story, f"https://copier.example/{mode}", text=f"copy for {mode}")
        sink = MailSink()
        kwargs = {"tls_context": server_context, "require_starttls": True} if mode == "starttls" else {
            # aiosmtpd only counts STARTTLS as TLS for AUTH; this socket is TLS from the start.
            "ssl_context": server_context, "auth_require_tls": False}
        controller = Controller(sink, hostname="127.0.0.1", port=free_port(), authenticator=password_checker("alerts", SMTP_PASSWORD),
                                auth_required=True, **kwargs)
        controller.start()
        try:
            env = smtp_env(controller.port, COPYHOUND_SMTP_TLS=mode, COPYHOUND_SMTP_USER="alerts",
                           COPYHOUND_SMTP_PASSWORD=SMTP_PASSWORD, COPYHOUND_SMTP_CA_FILE=str(cert))
            report = Dispatcher(session_factory, env=env).run_once()
        finally:
            controller.stop()
        assert report.errors == [], mode
        assert len(sink.messages) == 1, mode
        assert sink.messages[0]["Subject"].endswith("on copier.example")
    assert [s for s, _ in _status(session_factory)] == ["sent", "sent"]


@pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS:UserWarning")  # the test server
def test_rejected_login_is_a_clear_error_without_the_password(session_factory, caplog, capsys) -> None:
    sink = MailSink()
    controller = Controller(sink, hostname="127.0.0.1", port=free_port(), authenticator=password_checker("alerts", "right"),
                            auth_required=True, auth_require_tls=False)
    controller.start()
    try:
        story = make_story(session_factory, emails=["desk@harbourwire.example"])
        add_copy(session_factory, story, "https://copier.example/fish")
        env = smtp_env(controller.port, COPYHOUND_SMTP_USER="alerts", COPYHOUND_SMTP_PASSWORD=SMTP_PASSWORD,
                       COPYHOUND_SMTP_ALLOW_PLAIN_AUTH="1")
        with caplog.at_level(logging.DEBUG):
            report = Dispatcher(session_factory, env=env).run_once()
    finally:
        controller.stop()
    assert sink.messages == []
    assert report.retrying == 1
    error = report.errors[0]
    assert "rejected the login of COPYHOUND_SMTP_USER='alerts'" in error and "COPYHOUND_SMTP_PASSWORD" in error
    with session_factory() as s:
        alert = s.scalars(select(Alert)).one()
        assert alert.status == "pending" and "rejected the login" in alert.last_error
        stored = alert.last_error
    seen = caplog.text + error + stored + capsys.readouterr().err
    assert SMTP_PASSWORD not in seen


def test_server_down_keeps_the_alert_and_a_later_run_delivers(session_factory) -> None:
    port = free_port()
    story = make_story(session_factory, emails=["desk@harbourwire.example"])
    add_copy(session_factory, story, "https://copier.example/fish")
    report = Dispatcher(session_factory, env=smtp_env(port)).run_once()
    assert report.retrying == 1 and f"cannot reach SMTP server 127.0.0.1:{port}" in report.errors[0]
    assert _status(session_factory) == [("pending", 1)]
    sink = MailSink()
    controller = Controller(sink, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        report = Dispatcher(session_factory, env=smtp_env(port)).run_once()
    finally:
        controller.stop()
    assert report.sent == 1 and len(sink.messages) == 1
    assert _status(session_factory) == [("sent", 2)]


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({}, "set COPYHOUND_SMTP_HOST"),
        ({"COPYHOUND_SMTP_HOST": "h"}, "set COPYHOUND_SMTP_FROM"),
        ({"COPYHOUND_SMTP_HOST": "h", "COPYHOUND_SMTP_FROM": "a@b", "COPYHOUND_SMTP_TLS": "tls"}, "COPYHOUND_SMTP_TLS must be one of"),
        ({"COPYHOUND_SMTP_HOST": "h", "COPYHOUND_SMTP_FROM": "a@b", "COPYHOUND_SMTP_PORT": "x"}, "COPYHOUND_SMTP_PORT must be"),
        ({"COPYHOUND_SMTP_HOST": "h", "COPYHOUND_SMTP_FROM": "a@b", "COPYHOUND_SMTP_USER": "u"},
         "COPYHOUND_SMTP_PASSWORD is not"),
        ({"COPYHOUND_SMTP_HOST": "h", "COPYHOUND_SMTP_FROM": "a@b", "COPYHOUND_SMTP_USER": "u",
          "COPYHOUND_SMTP_PASSWORD": SMTP_PASSWORD, "COPYHOUND_SMTP_TLS": "none"}, "refusing to send the SMTP password"),
    ],
)
def test_smtp_settings_errors_name_the_setting(env: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message) as err:
        SmtpSettings.from_env(env)
    assert SMTP_PASSWORD not in str(err.value)


def test_smtp_settings_defaults_and_repr_hides_the_password() -> None:
    settings = SmtpSettings.from_env({"COPYHOUND_SMTP_HOST": "mail.example", "COPYHOUND_SMTP_FROM": "a@b",
                                      "COPYHOUND_SMTP_USER": "u", "COPYHOUND_SMTP_PASSWORD": SMTP_PASSWORD})
    assert (settings.port, settings.tls) == (587, "starttls")
    assert SMTP_PASSWORD not in repr(settings)


def test_missing_smtp_settings_keep_the_alert_pending(session_factory) -> None:
    story = make_story(session_factory, emails=["desk@harbourwire.example"])
    add_copy(session_factory, story, "https://copier.example/fish")
    report = Dispatcher(session_factory, env={"COPYHOUND_ALERT_BACKOFF": "0"}).run_once()
    assert "set COPYHOUND_SMTP_HOST" in report.errors[0]
    assert _status(session_factory) == [("pending", 1)]
