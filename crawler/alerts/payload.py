"""The versioned alert payload: what a webhook receives and an email is rendered from.

Built once, when the alert is queued, so a later change to the match cannot alter
what the holder is told about the event that triggered it. The schema is documented
in `crawler/alerts/schema/alert-v1.json`; fields are only ever added within a
version, never renamed or removed.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from storage.models import Match, utcnow

SCHEMA_VERSION = "1"
SCHEMA = f"copyhound.alert/{SCHEMA_VERSION}"
DIGEST_SCHEMA = f"copyhound.digest/{SCHEMA_VERSION}"
MAX_PASSAGES = 8
PASSAGE_FIELDS = ("story_text", "page_text", "similarity", "story_start", "story_end", "page_start", "page_end")


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def build_payload(match: Match, *, event: str) -> dict[str, Any]:
    story, page = match.story, match.page
    return {
        "schema": SCHEMA,
        "type": event,
        "occurred_at": _iso(utcnow()),
        "story": {"id": story.id, "title": story.title, "url": story.canonical_url},
        "page": {
            "id": page.id,
            "url": page.url,
            "canonical_url": page.canonical_url,
            "site": page.site,
            "title": page.title,
            "fetched_at": _iso(page.fetched_at),
        },
        "match": {
            "id": match.id,
            "kind": match.kind,
            "status": match.status,
            "confidence": round(match.confidence, 4),
            "story_coverage": round(match.story_coverage, 4),
            "page_coverage": round(match.page_coverage, 4),
            "scores": {k: round(float(v), 4) for k, v in (match.scores or {}).items() if isinstance(v, int | float)},
            "first_seen": _iso(match.first_seen),
            "last_seen": _iso(match.last_seen),
        },
        "evidence": [
            {k: p[k] for k in PASSAGE_FIELDS if k in p}
            for p in (match.evidence or [])[:MAX_PASSAGES]
        ],
    }


def envelope(payload: dict[str, Any], *, delivery_id: str, created_at: datetime | None) -> dict[str, Any]:
    """The body sent for one alert: the stored payload plus its delivery id and time."""
    return {"id": delivery_id, "timestamp": _iso(created_at), **payload}


def digest_envelope(
    payloads: list[dict[str, Any]], *, delivery_id: str, period: str, window_end: datetime, created_at: datetime
) -> dict[str, Any]:
    """One hourly or daily digest: every alert of the window, each as its own payload."""
    return {
        "schema": DIGEST_SCHEMA,
        "type": "digest",
        "id": delivery_id,
        "timestamp": _iso(created_at),
        "period": period,
        "window_end": _iso(window_end),
        "alerts": payloads,
    }
