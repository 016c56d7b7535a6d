"""Which alerts a match deserves: pure rules, no database and no network.

Kept apart from delivery (changedetection.io's lesson: detecting is not notifying)
so the crawler can apply them in the match's own transaction and tests can check
them with plain values. The database side lives in `crawler.alerts.outbox`.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from crawler.urls import canonical

# Alert types. "copy.new" is the first sighting of a copy; the others are later
# events on a known copy, each switchable per destination.
COPY_NEW = "copy.new"
COPY_CHANGED = "copy.changed"
COPY_REMOVED = "copy.removed"
COPY_REAPPEARED = "copy.reappeared"
CREDIT_MISSING = "credit.missing"
EVENTS = (COPY_NEW, COPY_CHANGED, COPY_REMOVED, COPY_REAPPEARED, CREDIT_MISSING)
# A changed copy is usually an edit of the page chrome; opt in to hear about it.
DEFAULT_EVENTS = frozenset({COPY_NEW, COPY_REMOVED, COPY_REAPPEARED, CREDIT_MISSING})

# Statuses a person set: the copy is settled and gets no more alerts about itself.
SILENCED_STATUSES = frozenset({"false_positive", "ignored"})

# Variants of one article: AMP, print and mobile renderings of the same page.
_VARIANT_HOST_PREFIXES = ("amp.", "m.", "mobile.", "print.")
_VARIANT_PATH_SUFFIXES = ("/amp", "/print", "/amp.html", "/print.html", ".amp", ".amp.html")
_VARIANT_PATH_PREFIXES = ("/amp/", "/print/")
_VARIANT_QUERY = {"amp", "print", "outputtype", "output", "view", "mobile", "_amp", "amp_js_v", "usqp"}
_WS = re.compile(r"\s+")


@dataclass(frozen=True, slots=True)
class LicenceRule:
    """A licensed partner domain; `credit_line` is the credit its copies must carry."""

    domain: str
    credit_line: str | None = None


@dataclass(frozen=True, slots=True)
class Decision:
    """What to record for a match: its status and the alert events to queue."""

    status: str
    events: tuple[str, ...] = ()
    reason: str = ""


def variant_free_url(url: str) -> str:
    """The URL with AMP/print/mobile markers removed: one spelling per article."""
    parts = urlsplit(canonical(url))
    host = (parts.hostname or "").lower()
    host = host.removeprefix("www.")
    for prefix in _VARIANT_HOST_PREFIXES:
        if host.startswith(prefix) and host.count(".") >= 2:
            host = host[len(prefix):]
            break
    netloc = f"{host}:{parts.port}" if parts.port else host
    path = parts.path or "/"
    for prefix in _VARIANT_PATH_PREFIXES:
        if path.startswith(prefix):
            path = path[len(prefix) - 1:]
            break
    for suffix in _VARIANT_PATH_SUFFIXES:
        if path.endswith(suffix) and len(path) > len(suffix):
            path = path[: -len(suffix)] + (".html" if suffix.endswith(".html") else "")
            break
    path = path.rstrip("/") or "/"
    query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k.lower() not in _VARIANT_QUERY]
    return urlunsplit(("", netloc, path, urlencode(query), ""))


def copy_keys(page_url: str, canonical_url: str | None, content_hash: str | None) -> tuple[str, ...]:
    """The identities of one copy: its variant-free URL(s) and its text hash.

    Two pages are the same copy when they share any key: an AMP page names the
    article as its canonical URL, and a mirror or print page serves the same text.
    Keys are fixed-length hashes so any URL fits the column.
    """
    urls = {variant_free_url(page_url)}
    if canonical_url:
        urls.add(variant_free_url(canonical_url))
    keys = ["u:" + hashlib.sha256(u.encode("utf-8")).hexdigest() for u in sorted(urls)]
    if content_hash:
        keys.append("t:" + content_hash[:64])
    return tuple(keys)


def host_of(url_or_site: str) -> str:
    """Lower-case host without "www." (a bare domain or site is accepted too)."""
    value = url_or_site.strip()
    if "://" not in value:
        value = "http://" + value
    host = (urlsplit(value).hostname or "").lower().rstrip(".")
    return host.removeprefix("www.")


def normalise_domain(domain: str) -> str:
    """A licence or suppression domain as stored; raises ValueError when it is not one."""
    host = host_of(domain)
    if not host or " " in host or "/" in host:
        raise ValueError(f"not a domain name: {domain!r} (expected e.g. reuters.com)")
    return host


def domain_covers(domain: str, url: str) -> bool:
    """A licence for `reuters.com` covers `www.reuters.com` and `uk.reuters.com`."""
    host, domain = host_of(url), normalise_domain(domain)
    return host == domain or host.endswith("." + domain)


def _folded(text: str) -> str:
    return _WS.sub(" ", unicodedata.normalize("NFKC", text)).strip().casefold()


def carries_credit(credit_line: str, *texts: str | None) -> bool:
    """Whether the page carries the credit, ignoring case, spacing and Unicode forms."""
    wanted = _folded(credit_line)
    return any(wanted in _folded(t) for t in texts if t)


def licence_for(url: str, licences: Iterable[LicenceRule]) -> LicenceRule | None:
    """The licence covering `url`; one that demands no credit wins over one that does."""
    covering = [rule for rule in licences if domain_covers(rule.domain, url)]
    if not covering:
        return None
    return min(covering, key=lambda rule: (rule.credit_line is not None, -len(rule.domain)))


def suppressed_site(url: str, suppressions: Iterable[str]) -> bool:
    return any(domain_covers(site, url) for site in suppressions)


def decide(
    *,
    page_url: str,
    page_texts: Sequence[str | None],
    status: str,
    is_new: bool,
    page_changed: bool,
    licences: Iterable[LicenceRule] = (),
    suppressions: Iterable[str] = (),
) -> Decision:
    """Status and alert events for a match just saved by the crawler.

    `status` is the match's current status ("active" for a new one), `page_texts`
    the page's title and text for the credit check. A person's decision (false
    positive, ignored) silences the copy; a licensed domain makes the match
    `licensed` and alerts only when its required credit is missing; a copy seen
    again after being removed reappears.
    """
    if status in SILENCED_STATUSES:
        return Decision(status, (), f"marked {status}")
    if suppressed_site(page_url, suppressions):
        return Decision("ignored" if is_new else status, (), "site ignored")

    rule = licence_for(page_url, licences)
    if rule is not None and status in ("active", "licensed", "removed"):
        if rule.credit_line and not carries_credit(rule.credit_line, *page_texts):
            return Decision("licensed", (CREDIT_MISSING,), f"licensed, credit {rule.credit_line!r} missing")
        return Decision("licensed", (), "licensed partner")
    if status == "licensed":  # a person's decision; the licence rule may be gone
        return Decision(status, (), "marked licensed")

    if is_new:
        return Decision("active", (COPY_NEW,), "new copy")
    if status == "removed":
        return Decision("active", (COPY_REAPPEARED,), "copy reappeared")
    if page_changed:
        return Decision(status, (COPY_CHANGED,), "copy changed")
    return Decision(status, (), "seen again")


def decide_removed(status: str) -> Decision:
    """A known copy's page is gone (404/410): one `copy.removed`, unless silenced."""
    if status in SILENCED_STATUSES or status == "removed":
        return Decision(status, (), "already settled")
    if status == "licensed":
        return Decision("removed", (), "licensed copy removed")
    return Decision("removed", (COPY_REMOVED,), "copy removed")


def validate_events(events: Iterable[str]) -> list[str]:
    chosen = sorted(set(events))
    unknown = [e for e in chosen if e not in EVENTS]
    if unknown:
        raise ValueError(f"unknown alert type(s) {', '.join(unknown)}: choose from {', '.join(EVENTS)}")
    return chosen


__all__ = [
    "COPY_CHANGED",
    "COPY_NEW",
    "COPY_REAPPEARED",
    "COPY_REMOVED",
    "CREDIT_MISSING",
    "DEFAULT_EVENTS",
    "EVENTS",
    "Decision",
    "LicenceRule",
    "carries_credit",
    "copy_keys",
    "decide",
    "decide_removed",
    "domain_covers",
    "licence_for",
    "normalise_domain",
    "validate_events",
    "variant_free_url",
]
