"""Signed webhook delivery following the Standard Webhooks convention.

Headers: `webhook-id` (the alert's delivery id, the same on every retry so receivers
can deduplicate), `webhook-timestamp` (Unix seconds of this attempt) and
`webhook-signature` = "v1," + base64(HMAC-SHA256(key, "{id}.{timestamp}.{body}"))
where the key is the base64 part of the destination's secret "whsec_<base64>".
The secret is read from the environment variable the destination names.

Plain http.client: one POST, no redirects followed (a redirected POST would be
re-sent elsewhere without the receiver's consent), a timeout on connect and read.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import http.client
import json
import os
import socket
import ssl
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from crawler.alerts.errors import ConfigError, DeliveryError, redact

SECRET_PREFIX = "whsec_"
USER_AGENT = "copyhound-webhooks/1"
MAX_RESPONSE_BYTES = 64 * 1024


@dataclass(frozen=True)
class WebhookTarget:
    url: str
    secret: bytes
    secret_env: str

    def __repr__(self) -> str:  # never show the key, even in a traceback
        return f"WebhookTarget(url={self.url!r}, secret_env={self.secret_env!r})"


def parse_secret(value: str, env_name: str) -> bytes:
    """The HMAC key from "whsec_<base64>"; errors name the variable, never the value."""
    value = value.strip()
    if not value.startswith(SECRET_PREFIX):
        raise ConfigError(f"{env_name} must hold a Standard Webhooks secret of the form whsec_<base64>")
    try:
        key = base64.b64decode(value[len(SECRET_PREFIX):], validate=True)
    except (binascii.Error, ValueError):
        raise ConfigError(f"{env_name}: the part after whsec_ is not valid base64") from None
    if len(key) < 16:
        raise ConfigError(f"{env_name}: the secret is too short (need at least 16 bytes, e.g. `copyhound alerts new-secret`)")
    return key


def new_secret() -> str:
    return SECRET_PREFIX + base64.b64encode(os.urandom(32)).decode("ascii")


def validate_url(url: str) -> str:
    parts = urlsplit(url.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(f"webhook URL {url!r} is not an http(s) URL with a host: fix the destination")
    try:
        parts.port
    except ValueError:
        raise ConfigError(f"webhook URL {url!r} has an invalid port: fix the destination") from None
    return url.strip()


def target_for(url: str, secret_env: str | None, env: Mapping[str, str] | None = None) -> WebhookTarget:
    env = os.environ if env is None else env
    url = validate_url(url)
    if not secret_env:
        raise ConfigError(
            f"webhook {url} has no signing secret: re-add it with --webhook-secret-env NAME and set NAME=whsec_..."
        )
    value = env.get(secret_env)
    if not value:
        raise ConfigError(f"the webhook signing secret is missing: set the environment variable {secret_env} (whsec_<base64>)")
    return WebhookTarget(url=url, secret=parse_secret(value, secret_env), secret_env=secret_env)


def sign(key: bytes, msg_id: str, timestamp: int, body: bytes) -> str:
    to_sign = f"{msg_id}.{timestamp}.".encode() + body
    return "v1," + base64.b64encode(hmac.new(key, to_sign, hashlib.sha256).digest()).decode("ascii")


def encode_body(payload: dict[str, Any]) -> bytes:
    return json.dumps(payload, ensure_ascii=False, separators=(",", ":"), sort_keys=True).encode("utf-8")


def post(target: WebhookTarget, msg_id: str, body: bytes, *, timeout: float, now: float | None = None) -> int:
    """One signed POST; returns the 2xx status or raises DeliveryError."""
    timestamp = int(now if now is not None else time.time())
    headers = {
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
        "webhook-id": msg_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": sign(target.secret, msg_id, timestamp, body),
    }
    parts = urlsplit(target.url)
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    # Host and path only: user info or a token in the query string stays out of messages.
    where = f"webhook {parts.scheme}://{parts.hostname}{f':{parts.port}' if parts.port else ''}{parts.path or '/'}"
    conn_cls = http.client.HTTPSConnection if parts.scheme == "https" else http.client.HTTPConnection
    conn = conn_cls(parts.hostname, parts.port, timeout=timeout)
    secrets = (target.secret, base64.b64encode(target.secret))
    try:
        conn.request("POST", path, body=body, headers=headers)
        response = conn.getresponse()
        response.read(MAX_RESPONSE_BYTES)
        status = response.status
        if 200 <= status < 300:
            return status
        if 300 <= status < 400:
            location = response.getheader("Location") or "?"
            raise DeliveryError(
                f"{where} redirected ({status}) to {redact(location, secrets)}: redirects are not followed, "
                "update the destination URL",
                retry=True,
            )
        retry_after = _retry_after(response.getheader("Retry-After")) if status in (429, 503) else None
        reason = redact(response.reason or "", secrets)
        raise DeliveryError(f"{where} answered {status} {reason}".rstrip(), retry=True, retry_after=retry_after)
    except DeliveryError:
        raise
    except TimeoutError:
        raise DeliveryError(f"{where} timed out after {timeout:g} s (COPYHOUND_WEBHOOK_TIMEOUT)", retry=True) from None
    except ssl.SSLError as err:
        raise DeliveryError(f"TLS with {where} failed: {redact(str(err), secrets)}", retry=True) from None
    except (OSError, http.client.HTTPException, socket.gaierror) as err:
        detail = redact(str(err) or type(err).__name__, secrets)
        raise DeliveryError(f"cannot reach {where}: {detail}", retry=True) from None
    finally:
        conn.close()


def _retry_after(value: str | None) -> float | None:
    if not value:
        return None
    try:
        return max(0.0, float(value.strip()))
    except ValueError:
        return None  # an HTTP date: fall back to our own backoff
