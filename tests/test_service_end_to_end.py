"""`copyhound run` against the demo web: a scheduled crawl finds the planted copies and
each reaches the holder once by email (real SMTP on loopback) and once by signed
webhook (verified with the `standardwebhooks` package)."""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
from pathlib import Path

from aiosmtpd.controller import Controller

from crawler.demo.web import DemoWeb
from crawler.seeds import SeedText, register_story
from storage.engine import make_engine, session_factory, upgrade
from tests.test_alerts_support import SECRET_ENV, MailSink, Receiver, free_port, smtp_env, subprocess_env, webhook_env

ROOT = Path(__file__).resolve().parent.parent
WAIT = 240  # seconds: an upper bound for a crawl of the demo web and delivery, never an assertion


def wait_until(condition, cv: threading.Condition, timeout: float) -> bool:
    with cv:
        return cv.wait_for(condition, timeout=timeout)


def test_scheduled_crawl_delivers_each_new_copy_once_by_email_and_webhook(tmp_path: Path) -> None:
    db_url = f"sqlite:///{tmp_path / 'service.db'}"
    engine = make_engine(db_url)
    upgrade(engine)
    factory = session_factory(engine)
    sink = MailSink()
    smtp = Controller(sink, hostname="127.0.0.1", port=free_port())
    smtp.start()
    try:
        with DemoWeb() as web, Receiver() as receiver:
            with factory.begin() as session:
                story, _ = register_story(
                    session,
                    SeedText(web.story_title, web.story_text, web.story_url),
                    holder="Harbour Wire",
                    sources=[("start_url", u) for u in web.start_urls()] + [("feed", u) for u in web.feed_urls()],
                    max_pages=500,
                    emails=["rights@harbourwire.test"],
                    webhooks=[(receiver.url, SECRET_ENV)],
                )
                story_id = story.id
            env = subprocess_env({**smtp_env(smtp.port), **webhook_env(), "COPYHOUND_DISPATCH_INTERVAL": "1"})
            cli = [sys.executable, "-m", "crawler.cli", "--db", db_url]
            scheduled = subprocess.run([*cli, "schedule", "set", str(story_id), "--every", "1h", "--start", "now", "--jitter", "0"],
                                       cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
            assert scheduled.returncode == 0, scheduled.stderr

            service = subprocess.Popen([*cli, "run"], cwd=ROOT, env=env, stdin=subprocess.DEVNULL,
                                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            try:
                expected = len(web.expected())
                # The predicates run under each condition's own lock: read the lists directly.
                got_hooks = wait_until(
                    lambda: len({d.headers["webhook-id"] for d in receiver.deliveries if d.verified}) >= expected,
                    receiver.arrived, WAIT,
                )
                got_mail = wait_until(lambda: len(sink.messages) >= expected, sink.received, WAIT)
            finally:
                service.send_signal(signal.SIGTERM)
                code = service.wait(timeout=120)
            assert got_hooks and got_mail, (receiver.ids(), [m["Subject"] for m in sink.messages])
            assert code == 0

            # Exactly one webhook and one email per planted copy, all verified.
            payloads = receiver.accepted()
            assert len(payloads) == expected == len(receiver.ids())
            assert all(d.verified for d in receiver.deliveries)
            assert {p["page"]["url"]: p["match"]["kind"] for p in payloads.values()} == web.expected()
            assert all(p["type"] == "copy.new" and p["evidence"] for p in payloads.values())
            assert len(sink.messages) == expected
            for message in sink.messages:
                assert web.story_title[:30] in message["Subject"]
                assert message.get_body(("plain",)) is not None and message.get_body(("html",)) is not None

            # A second service run later finds nothing new and sends nothing more.
            rerun = subprocess.run([*cli, "alerts", "send"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
            assert rerun.returncode == 0, rerun.stderr
            assert len(receiver.deliveries) == expected and len(sink.messages) == expected
    finally:
        smtp.stop()
        engine.dispose()
