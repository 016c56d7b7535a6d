"""Real servers and data for the alert tests: an SMTP server (aiosmtpd), a webhook
receiver that verifies signatures with the `standardwebhooks` package, and a story
with a match to alert about. No tests here; the test_alerts_* modules import it."""

from __future__ import annotations

import base64
import datetime as dt
import json
import os
import socket
import threading
from dataclasses import dataclass, field
from email import message_from_bytes, policy as email_policy
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from crawler.alerts.outbox import on_match
from storage.models import Match
from storage.repositories import Holders, Matches, Pages, Stories

SECRET = "whsec_" + base64.b64encode(b"copyhound-test-secret-key-0123456789").decode()
SECRET_ENV = "COPYHOUND_TEST_WEBHOOK_SECRET"
SMTP_PASSWORD = "hunter2-very-secret-password"

STORY_TEXT = (
    "The harbour authority confirmed on Tuesday that the old fish market at East Quay will close "
    "in March after ninety years of trading. Stallholders said they had been given six weeks notice."
)
PAGE_TEXT = (
    "Breaking: The harbour authority confirmed on Tuesday that the old fish market at East Quay "
    "will shut in March after ninety years of trading. Traders said they got six weeks notice."
)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# --- data ------------------------------------------------------------------------------


def make_story(factory, *, holder: str = "Harbour Wire", emails=(), webhooks=(), digest: str = "immediate",
               title: str = "Fish market to close") -> int:
    with factory.begin() as s:
        owner = Holders(s).get_or_create(holder)
        for address in emails:
            Holders(s).add_destination(owner, "email", address, digest=digest)
        for url in webhooks:
            Holders(s).add_destination(owner, "webhook", url, secret_env=SECRET_ENV, digest=digest)
        story, _ = Stories(s).add(title=title, text=STORY_TEXT, holder=owner,
                                  canonical_url="https://harbourwire.example/fish-market")
        return story.id


def add_copy(factory, story_id: int, url: str, *, text: str = PAGE_TEXT, title: str | None = "Fish market shuts",
             canonical_url: str | None = None, content_hash: str | None = None, kind: str = "rewrite") -> tuple[int, int]:
    """Save a page and its match and apply the alert policy, as the PageProcessor does
    in one transaction. Returns (match id, alerts queued)."""
    from crawler.extraction import content_hash as hash_text
    from crawler.urls import site_of

    with factory.begin() as s:
        page, _ = Pages(s).upsert(url=url, canonical_url=canonical_url, site=site_of(url), title=title, text=text,
                                  content_hash=content_hash or hash_text(text), http_status=200)
        match, is_new = Matches(s).upsert(
            story_id=story_id, page_id=page.id, kind=kind, confidence=0.91, story_coverage=0.72, page_coverage=0.64,
            scores={"aligned": 0.72, "lexical": 0.31},
            evidence=[{
                "story_start": 0, "story_end": 120, "page_start": 10, "page_end": 130, "similarity": 0.83,
                "story_text": STORY_TEXT[:120], "page_text": text[10:130],
            }],
        )
        s.refresh(match)
        queued = on_match(s, match, is_new=is_new)
        return match.id, len(queued)


def match_status(factory, match_id: int) -> str:
    with factory() as s:
        return s.get(Match, match_id).status


# --- SMTP --------------------------------------------------------------------------------


class MailSink:
    """aiosmtpd handler keeping every received message."""

    def __init__(self) -> None:
        self.messages: list[EmailMessage] = []
        self.envelopes: list[tuple[str, list[str]]] = []
        self.received = threading.Condition()

    async def handle_DATA(self, server, session, envelope):  # noqa: N802 (aiosmtpd's name)
        message = message_from_bytes(envelope.original_content or envelope.content, policy=email_policy.default)
        with self.received:
            self.messages.append(message)
            self.envelopes.append((envelope.mail_from, list(envelope.rcpt_tos)))
            self.received.notify_all()
        return "250 OK"


def password_checker(user: str, password: str):
    from aiosmtpd.smtp import AuthResult

    def check(server, session, envelope, mechanism, auth_data):
        ok = auth_data.login.decode() == user and auth_data.password.decode() == password
        return AuthResult(success=ok, handled=False)

    return check


def self_signed_cert(directory: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 made with `cryptography`; also the client's CA file."""
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1)).not_valid_after(now + dt.timedelta(days=2))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = directory / "cert.pem", directory / "key.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_file, key_file


def smtp_env(port: int, **extra: str) -> dict[str, str]:
    env = {"COPYHOUND_SMTP_HOST": "127.0.0.1", "COPYHOUND_SMTP_PORT": str(port), "COPYHOUND_SMTP_TLS": "none",
           "COPYHOUND_SMTP_FROM": "alerts@copyhound.test", "COPYHOUND_ALERT_BACKOFF": "0"}
    env.update(extra)
    return env


# --- webhook receiver --------------------------------------------------------------------


@dataclass
class Delivery:
    headers: dict[str, str]
    body: bytes
    payload: Any | None
    verified: bool


@dataclass
class Receiver:
    """A webhook endpoint on 127.0.0.1 that verifies every request with standardwebhooks.

    `script` is a list of statuses to answer in turn (then 200); a status of 0 means
    "hold the request until `release` is set" (to kill the sender mid-delivery).
    """

    secret: str = SECRET
    script: list[int] = field(default_factory=list)
    headers_for: dict[int, dict[str, str]] = field(default_factory=dict)
    deliveries: list[Delivery] = field(default_factory=list)
    holding: threading.Event = field(default_factory=threading.Event)
    release: threading.Event = field(default_factory=threading.Event)

    def __post_init__(self) -> None:
        self.lock = threading.Lock()
        self.arrived = threading.Condition(self.lock)
        receiver = self
        verifier = Webhook(self.secret)

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                headers = {k.lower(): v for k, v in self.headers.items()}
                try:
                    payload, verified = verifier.verify(body, headers), True
                except WebhookVerificationError:
                    payload, verified = None, False
                with receiver.lock:
                    receiver.deliveries.append(Delivery(headers, body, payload, verified))
                    status = receiver.script.pop(0) if receiver.script else 200
                    receiver.arrived.notify_all()
                if status == 0:
                    receiver.holding.set()
                    receiver.release.wait(timeout=60)
                    status = 200
                extra = receiver.headers_for.get(status, {})
                self.send_response(status if verified else 401)
                for name, value in extra.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"{}")

            def log_message(self, *args) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/hooks/copyhound"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self) -> Receiver:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.release.set()
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(timeout=5)

    def ids(self) -> list[str]:
        with self.lock:
            return [d.headers["webhook-id"] for d in self.deliveries if d.verified]

    def accepted(self) -> dict[str, Any]:
        """Verified payloads by webhook-id: what a deduplicating receiver keeps."""
        with self.lock:
            return {d.headers["webhook-id"]: d.payload for d in self.deliveries if d.verified}


def webhook_env(**extra: str) -> dict[str, str]:
    env = {SECRET_ENV: SECRET, "COPYHOUND_ALERT_BACKOFF": "0", "COPYHOUND_WEBHOOK_TIMEOUT": "5"}
    env.update(extra)
    return env


def subprocess_env(extra: dict[str, str]) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("COPYHOUND_")}
    env.update(extra)
    return env


def dumps(value: Any) -> str:
    return json.dumps(value, sort_keys=True)
