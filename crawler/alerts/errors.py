"""Delivery errors and secret redaction.

An error message is stored in `alerts.last_error`, logged and printed by
`copyhound alerts list`: `redact` runs over every message that may carry text
from a server or a library, so a secret echoed back never reaches any of them.
"""

from __future__ import annotations

import base64
from collections.abc import Iterable, Mapping


class ConfigError(ValueError):
    """A setting is missing or wrong; the message names it."""


def env_number(env: Mapping[str, str], name: str, default: float, *, minimum: float = 0.0) -> float:
    """A numeric COPYHOUND_* setting from `env`: `default` when unset, else a number
    of at least `minimum`, or a ConfigError naming the setting."""
    text = env.get(name, "").strip()
    if not text:
        return default
    try:
        value = float(text)
    except ValueError:
        raise ConfigError(f"{name} must be a number, not {text!r}") from None
    if value < minimum:
        raise ConfigError(f"{name} must be at least {minimum:g}, not {text}")
    return value


class DeliveryError(Exception):
    """One delivery attempt failed. `retry` says whether trying again can help."""

    def __init__(self, message: str, *, retry: bool = True, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry = retry
        self.retry_after = retry_after


def redact(text: str, secrets: Iterable[str | bytes | None]) -> str:
    """Replace each secret (and its base64 spelling, as AUTH PLAIN would echo it)."""
    for secret in secrets:
        if not secret:
            continue
        raw = secret.encode("utf-8") if isinstance(secret, str) else secret
        for form in {raw.decode("utf-8", "replace"), base64.b64encode(raw).decode("ascii")}:
            if len(form) >= 4:
                text = text.replace(form, "[redacted]")
    return text
