"""Email delivery over SMTP (stdlib smtplib + EmailMessage).

Settings come from the environment so the password never enters the database or
a command line. Every failure becomes a `DeliveryError` whose message names the
setting to fix and never contains the password.
"""

from __future__ import annotations

import os
import smtplib
import socket
import ssl
from collections.abc import Mapping
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.utils import formatdate

from crawler.alerts.errors import ConfigError, DeliveryError, redact

TLS_MODES = ("starttls", "ssl", "none")
DEFAULT_PORTS = {"starttls": 587, "ssl": 465, "none": 25}


@dataclass(frozen=True)
class SmtpSettings:
    host: str
    port: int
    sender: str
    tls: str = "starttls"
    user: str | None = None
    password: str | None = field(default=None, repr=False)
    timeout: float = 30.0
    ca_file: str | None = None

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> SmtpSettings:
        env = os.environ if env is None else env
        host = env.get("COPYHOUND_SMTP_HOST", "").strip()
        if not host:
            raise ConfigError("email alerts need an SMTP server: set COPYHOUND_SMTP_HOST (and COPYHOUND_SMTP_FROM)")
        tls = env.get("COPYHOUND_SMTP_TLS", "starttls").strip().lower() or "starttls"
        if tls not in TLS_MODES:
            raise ConfigError(f"COPYHOUND_SMTP_TLS must be one of {', '.join(TLS_MODES)}, not {tls!r}")
        port_text = env.get("COPYHOUND_SMTP_PORT", "").strip()
        try:
            port = int(port_text) if port_text else DEFAULT_PORTS[tls]
        except ValueError:
            raise ConfigError(f"COPYHOUND_SMTP_PORT must be a port number, not {port_text!r}") from None
        if not 0 < port < 65536:
            raise ConfigError(f"COPYHOUND_SMTP_PORT must be between 1 and 65535, not {port}")
        sender = env.get("COPYHOUND_SMTP_FROM", "").strip()
        if not sender or "@" not in sender:
            raise ConfigError("set COPYHOUND_SMTP_FROM to the sender address of alert emails, e.g. alerts@example.com")
        user = env.get("COPYHOUND_SMTP_USER", "").strip() or None
        password = env.get("COPYHOUND_SMTP_PASSWORD") or None
        if user and not password:
            raise ConfigError("COPYHOUND_SMTP_USER is set but COPYHOUND_SMTP_PASSWORD is not")
        if password and not user:
            raise ConfigError("COPYHOUND_SMTP_PASSWORD is set but COPYHOUND_SMTP_USER is not")
        if user and tls == "none" and env.get("COPYHOUND_SMTP_ALLOW_PLAIN_AUTH", "") != "1":
            raise ConfigError(
                "refusing to send the SMTP password unencrypted: set COPYHOUND_SMTP_TLS=starttls or ssl "
                "(or COPYHOUND_SMTP_ALLOW_PLAIN_AUTH=1 for a server on this machine)"
            )
        timeout_text = env.get("COPYHOUND_SMTP_TIMEOUT", "30").strip()
        try:
            timeout = float(timeout_text)
        except ValueError:
            raise ConfigError(f"COPYHOUND_SMTP_TIMEOUT must be seconds, not {timeout_text!r}") from None
        ca_file = env.get("COPYHOUND_SMTP_CA_FILE", "").strip() or None
        return cls(host=host, port=port, sender=sender, tls=tls, user=user, password=password, timeout=timeout, ca_file=ca_file)

    def secrets(self) -> tuple[str, ...]:
        return (self.password,) if self.password else ()


def build_message(
    *, sender: str, to: str, subject: str, text: str, html: str, message_id: str, alert_ref: str
) -> EmailMessage:
    """Multipart/alternative text + HTML; Message-ID is the stable delivery id."""
    message = EmailMessage()
    message["From"] = sender
    message["To"] = to
    message["Subject"] = subject
    message["Date"] = formatdate(localtime=False, usegmt=True)
    message["Message-ID"] = f"<{message_id}@copyhound>"
    message["X-Copyhound-Delivery"] = alert_ref
    message.set_content(text)
    message.add_alternative(html, subtype="html")
    return message


def _context(settings: SmtpSettings) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=settings.ca_file)


def send_email(settings: SmtpSettings, message: EmailMessage) -> None:
    """Deliver one message; raise DeliveryError (retryable or not) on any failure."""
    where = f"SMTP server {settings.host}:{settings.port} (COPYHOUND_SMTP_HOST/COPYHOUND_SMTP_PORT)"
    secrets = settings.secrets()
    try:
        if settings.tls == "ssl":
            client: smtplib.SMTP = smtplib.SMTP_SSL(
                settings.host, settings.port, timeout=settings.timeout, context=_context(settings)
            )
        else:
            client = smtplib.SMTP(settings.host, settings.port, timeout=settings.timeout)
        with client:
            if settings.tls == "starttls":
                client.ehlo()
                if not client.has_extn("starttls"):
                    raise DeliveryError(
                        f"{where} does not offer STARTTLS: use COPYHOUND_SMTP_TLS=ssl, or none for a local relay",
                        retry=False,
                    )
                client.starttls(context=_context(settings))
                client.ehlo()
            if settings.user:
                client.login(settings.user, settings.password or "")
            refused = client.send_message(message)
            if refused:
                raise DeliveryError(f"{where} refused recipient(s) {', '.join(sorted(refused))}", retry=False)
    except DeliveryError:
        raise
    except smtplib.SMTPAuthenticationError as err:
        raise DeliveryError(
            f"{where} rejected the login of COPYHOUND_SMTP_USER={settings.user!r}: check COPYHOUND_SMTP_USER and "
            f"COPYHOUND_SMTP_PASSWORD ({err.smtp_code} {redact(_reply(err), secrets)})",
            retry=True,
        ) from None
    except smtplib.SMTPNotSupportedError as err:
        raise DeliveryError(f"{where}: {redact(str(err), secrets)} (check COPYHOUND_SMTP_TLS)", retry=True) from None
    except smtplib.SMTPRecipientsRefused as err:
        codes = {code for code, _ in err.recipients.values()}
        raise DeliveryError(
            f"{where} refused recipient(s) {', '.join(sorted(err.recipients))}", retry=any(400 <= c < 500 for c in codes)
        ) from None
    except smtplib.SMTPResponseException as err:
        # 4xx is temporary by definition (greylisting, full queue); 5xx is a refusal
        # that may still clear when the operator fixes something, so it is retried too.
        raise DeliveryError(f"{where} answered {err.smtp_code} {redact(_reply(err), secrets)}", retry=True) from None
    except ssl.SSLError as err:
        raise DeliveryError(
            f"TLS with {where} failed: {redact(str(err), secrets)} (check COPYHOUND_SMTP_TLS and COPYHOUND_SMTP_CA_FILE)",
            retry=True,
        ) from None
    except (smtplib.SMTPException, OSError, socket.timeout) as err:
        raise DeliveryError(f"cannot reach {where}: {redact(str(err) or type(err).__name__, secrets)}", retry=True) from None


def _reply(err: smtplib.SMTPResponseException) -> str:
    text = err.smtp_error.decode("utf-8", "replace") if isinstance(err.smtp_error, bytes) else str(err.smtp_error)
    return " ".join(text.split())[:300]
