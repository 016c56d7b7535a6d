"""Register stories (seeds) from a URL or a file, reduced to the story's own text."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy.orm import Session

from crawler.extraction import ExtractionError, decode_html, extract
from crawler.fetching import fetch
from crawler.matching.sketch import SKETCH_PARAMS, sketch_story
from storage.models import Story
from storage.repositories import Holders, Sources, Stories

HTML_SUFFIXES = {".html", ".htm", ".xhtml"}
MAX_FILE_BYTES = 20_000_000


@dataclass(frozen=True)
class SeedText:
    title: str | None
    text: str
    canonical_url: str | None = None


def text_from_url(url: str) -> SeedText:
    fetched = fetch(url)
    extracted = extract(fetched.body, url=fetched.final_url)
    return SeedText(extracted.title, extracted.text, extracted.canonical_url or fetched.final_url)


def text_from_file(path: Path) -> SeedText:
    """A seed file is an HTML page (by suffix or content) or plain text."""
    if not path.is_file():
        raise ValueError(f"{path}: no such file")
    size = path.stat().st_size
    if size == 0:
        raise ValueError(f"{path}: the file is empty")
    if size > MAX_FILE_BYTES:
        raise ValueError(f"{path}: {size} bytes is larger than the {MAX_FILE_BYTES}-byte limit for a seed")
    raw = path.read_bytes()
    if b"\x00" in raw[:8192]:
        raise ValueError(f"{path}: looks like a binary file, not text or HTML")
    head = raw[:2048].lstrip().lower()
    if path.suffix.lower() in HTML_SUFFIXES or head.startswith((b"<!doctype html", b"<html")):
        try:
            extracted = extract(raw)
        except ExtractionError as exc:
            raise ValueError(f"{path}: {exc}") from exc
        return SeedText(extracted.title, extracted.text, extracted.canonical_url)
    text = decode_html(raw).strip()
    if not text:
        raise ValueError(f"{path}: the file has no text")
    first_line = text.splitlines()[0].strip()
    return SeedText(first_line[:300] or None, text)


def register_story(
    session: Session,
    seed: SeedText,
    *,
    title: str | None = None,
    holder: str | None = None,
    canonical_url: str | None = None,
    sources: Sequence[tuple[str, str]] = (),
    max_depth: int = 2,
    max_pages: int = 200,
    emails: Sequence[str] = (),
    webhooks: Sequence[tuple[str, str | None]] = (),
) -> tuple[Story, bool]:
    """Store the story with its fingerprint, holder, alert destinations and sources."""
    holders = Holders(session)
    owner = holders.get_or_create(holder) if holder else None
    if owner is not None:
        for address in emails:
            holders.add_destination(owner, "email", address)
        for url, secret_env in webhooks:
            holders.add_destination(owner, "webhook", url, secret_env=secret_env)
    story, created = Stories(session).add(
        title=title or seed.title or "(untitled story)",
        text=seed.text,
        holder=owner,
        canonical_url=canonical_url or seed.canonical_url,
        fingerprint=sketch_story(seed.text),
        fingerprint_params=dict(SKETCH_PARAMS),
    )
    repo = Sources(session)
    for kind, url in sources:
        repo.add(story.id, kind, url, max_depth=max_depth, max_pages=max_pages)
    return story, created
