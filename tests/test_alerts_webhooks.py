"""Signed webhooks against a real receiver on 127.0.0.1 that verifies every request
with the `standardwebhooks` package: retries, faults, failure, `alerts retry`, and a
dispatcher killed mid-delivery."""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from sqlalchemy import select

from crawler.cli import main as cli
from crawler.alerts import webhooks
from crawler.alerts.dispatcher import Dispatcher, DispatchSettings, backoff_delay
from crawler.alerts.errors import ConfigError
from storage.models import Alert
from tests.test_alerts_support import (
    SECRET,
    SECRET_ENV,
    Receiver,
    add_copy,
    make_story,
    subprocess_env,
    webhook_env,
)

ROOT = Path(__file__).resolve().parent.parent
SCHEMA_FILE = ROOT / "crawler" / "alerts" / "alert-schema-v1.json"


def _dispatcher(factory, **env: str) -> Dispatcher:
    return Dispatcher(factory, env=webhook_env(**env))


def _statuses(factory) -> list[tuple[str, int]]:
    with factory() as s:
        return [(a.status, a.attempts) for a in s.scalars(select(Alert).order_by(Alert.id))]


def _check_against_schema(payload: dict, schema: dict) -> None:
    """The documented required fields and types (a tiny subset of JSON Schema)."""
    types = {"string": str, "integer": int, "number": (int, float), "object": dict, "array": list}
    for name in schema.get("required", []):
        assert name in payload, f"missing {name}"
    for name, spec in schema.get("properties", {}).items():
        if name not in payload or payload[name] is None:
            continue
        wanted = spec.get("type")
        if isinstance(wanted, str):
            assert isinstance(payload[name], types[wanted]), f"{name} is not {wanted}"
        if spec.get("type") == "object":
            _check_against_schema(payload[name], spec)
        if spec.get("type") == "array" and "items" in spec:
            for item in payload[name]:
                _check_against_schema(item, spec["items"])


def test_signed_delivery_verifies_and_follows_the_documented_schema(session_factory) -> None:
    with Receiver() as receiver:
        story = make_story(session_factory, webhooks=[receiver.url])
        match_id, _ = add_copy(session_factory, story, "https://copier.example/fish")
        report = _dispatcher(session_factory).run_once()
        assert (report.sent, report.failed, report.errors) == (1, 0, [])
        assert len(receiver.deliveries) == 1
        delivery = receiver.deliveries[0]
    assert delivery.verified
    assert delivery.headers["webhook-signature"].startswith("v1,")
    assert delivery.headers["content-type"] == "application/json"
    payload = delivery.payload
    with session_factory() as s:
        alert = s.scalars(select(Alert)).one()
        assert (alert.status, alert.delivery_id) == ("sent", delivery.headers["webhook-id"])
    assert payload["id"] == delivery.headers["webhook-id"]
    assert payload["type"] == "copy.new" and payload["schema"] == "copyhound.alert/1"
    assert payload["match"]["id"] == match_id and payload["match"]["kind"] == "rewrite"
    assert payload["match"]["scores"] == {"aligned": 0.72, "lexical": 0.31}
    assert payload["page"]["url"] == "https://copier.example/fish"
    assert payload["evidence"][0]["similarity"] == 0.83
    _check_against_schema(payload, json.loads(SCHEMA_FILE.read_text()))
    # A second run sends nothing: sent is sent.
    assert _dispatcher(session_factory).run_once().sent == 0


def test_a_wrong_secret_fails_verification_at_the_receiver(session_factory) -> None:
    other = webhooks.new_secret()
    with Receiver() as receiver:
        story = make_story(session_factory, webhooks=[receiver.url])
        add_copy(session_factory, story, "https://copier.example/fish")
        report = Dispatcher(session_factory, env={SECRET_ENV: other, "COPYHOUND_ALERT_BACKOFF": "0"}).run_once()
        assert not receiver.deliveries[0].verified
    assert report.retrying == 1 and "answered 401" in report.errors[0]
    assert other not in report.errors[0]


def test_receiver_failing_for_a_while_then_recovering(session_factory) -> None:
    with Receiver(script=[500, 503, 429]) as receiver:
        receiver.headers_for[429] = {"Retry-After": "0"}
        story = make_story(session_factory, webhooks=[receiver.url])
        add_copy(session_factory, story, "https://copier.example/fish")
        dispatcher = _dispatcher(session_factory)
        for _ in range(10):
            dispatcher.run_once()
            if _statuses(session_factory)[0][0] == "sent":
                break
        ids = receiver.ids()
    assert _statuses(session_factory) == [("sent", 4)]
    assert len(ids) == 4 and len(set(ids)) == 1  # the same webhook-id on every retry


def test_after_max_attempts_the_alert_fails_and_retry_resends_it(session_factory, db_url, capsys) -> None:
    env = webhook_env(COPYHOUND_ALERT_MAX_ATTEMPTS="3")
    with Receiver(script=[500] * 3) as receiver:
        story = make_story(session_factory, webhooks=[receiver.url])
        add_copy(session_factory, story, "https://copier.example/fish")
        dispatcher = Dispatcher(session_factory, env=env)
        for _ in range(10):
            dispatcher.run_once()
        assert _statuses(session_factory) == [("failed", 3)]
        assert len(receiver.deliveries) == 3

        old = {k: os.environ.get(k) for k in env}
        os.environ.update(env)
        try:
            assert cli(["--db", db_url, "alerts", "list", "--failed", "--format", "json"]) == 0
            listed = json.loads(capsys.readouterr().out)
            assert [(r["status"], r["attempts"]) for r in listed] == [("failed", 3)]
            assert "answered 500" in listed[0]["last_error"]
            assert cli(["--db", db_url, "alerts", "retry"]) == 0
            output = capsys.readouterr()
        finally:
            for k, v in old.items():
                os.environ.pop(k) if v is None else os.environ.__setitem__(k, v)
        assert "1 failed alert(s) queued again" in output.out and "1 alerts sent" in output.out
        ids = receiver.ids()
    assert _statuses(session_factory) == [("sent", 1)]
    assert len(ids) == 4 and len(set(ids)) == 1


@pytest.mark.parametrize("fault", ["down", "timeout", "redirect", "bad_url", "no_secret", "bad_secret"])
def test_faults_are_clear_errors_and_the_alert_is_kept(session_factory, fault: str, caplog) -> None:
    env = webhook_env(COPYHOUND_WEBHOOK_TIMEOUT="0.5")
    release = threading.Event()

    class Slow(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802
            if fault == "timeout":
                release.wait(timeout=30)
            self.send_response(301 if fault == "redirect" else 200)
            self.send_header("Location", "http://127.0.0.1:1/elsewhere")
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Slow)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{server.server_address[1]}/hook"
    if fault == "down":
        server.shutdown()
        server.server_close()
    if fault == "bad_url":
        url = "http://:80/hook"
    if fault == "no_secret":
        env.pop(SECRET_ENV)
    if fault == "bad_secret":
        env[SECRET_ENV] = "not-a-whsec-secret-value"
    try:
        story = make_story(session_factory, webhooks=[url])
        add_copy(session_factory, story, "https://copier.example/fish")
        with caplog.at_level(logging.DEBUG):
            report = Dispatcher(session_factory, env=env).run_once()
    finally:
        release.set()
        if fault != "down":
            server.shutdown()
            server.server_close()
    expected = {
        "down": "cannot reach webhook http://127.0.0.1:",
        "timeout": "timed out after 0.5 s (COPYHOUND_WEBHOOK_TIMEOUT)",
        "redirect": "redirected (301) to http://127.0.0.1:1/elsewhere: redirects are not followed",
        "bad_url": "is not an http(s) URL with a host",
        "no_secret": f"set the environment variable {SECRET_ENV}",
        "bad_secret": f"{SECRET_ENV} must hold a Standard Webhooks secret",
    }[fault]
    assert report.sent == 0 and report.retrying == 1
    assert expected in report.errors[0]
    with session_factory() as s:
        alert = s.scalars(select(Alert)).one()
        assert alert.status == "pending" and alert.next_attempt_at is not None and expected in alert.last_error
    logged = caplog.text + "".join(report.errors)
    assert SECRET not in logged and SECRET.removeprefix("whsec_") not in logged
    assert "not-a-whsec-secret-value" not in logged


def test_backoff_grows_with_jitter_and_respects_the_cap() -> None:
    import random

    settings = DispatchSettings(backoff=10, backoff_max=100)
    rng = random.Random(7)
    for attempt, ceiling in ((1, 10), (2, 20), (3, 40), (4, 80), (5, 100), (9, 100)):
        delays = {backoff_delay(attempt, settings, rng) for _ in range(20)}
        assert all(ceiling / 2 <= d <= ceiling for d in delays)
        assert len(delays) > 1  # jittered
    assert backoff_delay(1, settings, rng, retry_after=60) == 60
    assert backoff_delay(1, settings, rng, retry_after=1000) == 100


def test_signature_matches_the_standard_webhooks_reference() -> None:
    from standardwebhooks.webhooks import Webhook

    key = webhooks.parse_secret(SECRET, SECRET_ENV)
    body = b'{"a":1}'
    assert webhooks.sign(key, "msg_1", 1700000000, body) == Webhook(SECRET).sign("msg_1", _dt(1700000000), body.decode())
    with pytest.raises(ConfigError, match="too short"):
        webhooks.parse_secret("whsec_YWJj", "X")


def _dt(ts: int):
    from datetime import UTC, datetime

    return datetime.fromtimestamp(ts, tz=UTC)


def test_sigkill_mid_delivery_loses_nothing_and_receivers_dedupe(session_factory, db_url, tmp_path) -> None:
    """Kill the dispatcher while the receiver holds the third request; on restart every
    alert arrives, and the only repeat is the in-flight one, under the same webhook-id."""
    with Receiver(script=[200, 200, 0]) as receiver:
        story = make_story(session_factory, webhooks=[receiver.url])
        for n in range(6):
            add_copy(session_factory, story, f"https://copier{n}.example/fish", text=f"page {n} " + "x" * n)
        env = subprocess_env(webhook_env(COPYHOUND_ALERT_LEASE="0"))
        cmd = [sys.executable, "-m", "crawler.cli", "--db", db_url, "alerts", "send"]
        first = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        try:
            assert receiver.holding.wait(timeout=60), "the dispatcher never reached the third alert"
            first.send_signal(signal.SIGKILL)
            first.wait(timeout=30)
        finally:
            if first.poll() is None:
                first.kill()
        assert first.returncode == -signal.SIGKILL
        receiver.release.set()
        assert sorted(s for s, _ in _statuses(session_factory)).count("sent") == 2

        second = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
        assert second.returncode == 0, second.stderr
        ids = receiver.ids()
        accepted = receiver.accepted()
    with session_factory() as s:
        delivery_ids = {a.delivery_id for a in s.scalars(select(Alert))}
    assert [st for st, _ in _statuses(session_factory)] == ["sent"] * 6
    assert set(accepted) == delivery_ids and len(accepted) == 6  # every alert arrived
    repeats = {i for i in ids if ids.count(i) > 1}
    assert len(ids) == 7 and len(repeats) == 1  # only the in-flight alert came twice
    assert {p["page"]["url"] for p in accepted.values()} == {f"https://copier{n}.example/fish" for n in range(6)}


def test_cli_output_and_logs_never_show_secrets(session_factory, db_url, capsys, caplog, monkeypatch) -> None:
    bad = "whsec_" + "A" * 8  # decodes, but too short: the error must not quote it
    with Receiver() as receiver:
        story = make_story(session_factory, webhooks=[receiver.url])
        add_copy(session_factory, story, "https://copier.example/fish")
        monkeypatch.setenv(SECRET_ENV, bad)
        monkeypatch.setenv("COPYHOUND_SMTP_PASSWORD", "smtp-secret-value")
        with caplog.at_level(logging.DEBUG):
            assert cli(["--db", db_url, "alerts", "send"]) == 1
            assert cli(["--db", db_url, "alerts", "list", "--format", "json"]) == 0
            assert cli(["--db", db_url, "alerts", "destinations"]) == 0
        captured = capsys.readouterr()
        assert receiver.deliveries == []
    seen = captured.out + captured.err + caplog.text
    assert f"{SECRET_ENV}: the secret is too short" in seen
    assert bad not in seen and "A" * 8 not in seen and "smtp-secret-value" not in seen
