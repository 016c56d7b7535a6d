"""Evidence pack for one match: what a takedown notice or a licence offer rests on.

Written to a directory so each part can be attached on its own:

- `page-raw.html` (or `.bin`): the body exactly as fetched, from the newest snapshot;
- `page.warc.gz`: the same fetch as a WARC response record (warcio), with the
  response headers as received, replayable by any web-archive tool;
- `manifest.json`: URL, fetch time, HTTP status, headers, SHA-256 of the body, the
  verdict, every stored version of the page and the SHA-256 of each file written;
- `passages.txt`: the aligned passages side by side with their offsets;
- `summary.txt`: plain text to paste into a DMCA notice or a licence offer;
- `story.txt` / `page-text.txt`: the story and the page text as compared.

What the store no longer has (the page row, its text, any snapshot) is written as a
`missing` list in the manifest and said in the summary; what exists is still written.
Only the page's own response headers are included: never the request we sent, our
configuration or the database location.
"""

from __future__ import annotations

import hashlib
import json
import os
import textwrap
from dataclasses import dataclass, field
from datetime import datetime
from io import BytesIO
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from crawler.alerts.render import KIND_NAMES
from crawler.items import GONE_STATUSES, REDIRECT_STATUSES
from crawler.reporting.passages import AlignedPassage, aligned_passages, key_passages
from storage.engine import NotFoundError
from storage.models import Match, Page, PageSnapshot, Story, utcnow
from storage.repositories import Snapshots

GENERATOR = "copyhound evidence/1"
# Hop-by-hop and transfer headers that describe the bytes on the wire, not the body we
# kept (Scrapy and urllib hand over the decoded body): a WARC carrying them would make
# replay tools decode the body a second time. They stay, as received, in the manifest.
_WIRE_HEADERS = frozenset({"content-encoding", "transfer-encoding", "content-length", "connection", "keep-alive"})
_REASONS = {200: "OK", 203: "Non-Authoritative Information", 206: "Partial Content", 301: "Moved Permanently",
            302: "Found", 304: "Not Modified", 404: "Not Found", 410: "Gone"}
COLUMN = 46


@dataclass
class EvidencePack:
    directory: Path
    files: dict[str, str] = field(default_factory=dict)  # name -> sha256
    missing: list[str] = field(default_factory=list)


def write_evidence(factory: sessionmaker, match_id: int, directory: Path) -> EvidencePack:
    """Read the match in one transaction, then write the pack to `directory`."""
    with factory.begin() as session:
        facts = _load(session, match_id)
    return _write(facts, Path(directory))


@dataclass
class _Facts:
    match: dict[str, Any]
    story: dict[str, Any]
    story_text: str
    page: dict[str, Any] | None
    page_text: str | None
    snapshot: dict[str, Any] | None
    body: bytes | None
    versions: list[dict[str, Any]]
    passages: list[AlignedPassage]
    missing: list[str]


def _iso(value: datetime | None) -> str | None:
    return value.isoformat(timespec="seconds") if value else None


def _load(session: Session, match_id: int) -> _Facts:
    match = session.get(Match, match_id)
    if match is None:
        raise NotFoundError(f"no match with id {match_id} (see `copyhound matches`)")
    story = session.get(Story, match.story_id)
    page = session.get(Page, match.page_id)
    missing: list[str] = []
    snapshots: list[PageSnapshot] = []
    if page is None:
        missing.append(f"the page record (id {match.page_id}) is gone from the store: no URL, text or raw copy of it")
    else:
        snapshots = list(session.scalars(
            select(PageSnapshot).where(PageSnapshot.page_id == page.id).order_by(PageSnapshot.fetched_at, PageSnapshot.id)
        ))
        if not page.text:
            missing.append("the page's extracted text is no longer stored")
        if not snapshots:
            missing.append("no raw snapshot of the page is stored: the HTML as fetched, its headers and its hash are missing")
    body = None
    snapshot = None
    if snapshots:
        newest = snapshots[-1]
        try:
            body = Snapshots.body_of(newest)
        except Exception as err:  # zlib.error and friends: a damaged row must not stop the pack
            missing.append(f"the newest snapshot ({_iso(newest.fetched_at)}) could not be decompressed: {err}")
        snapshot = {
            "fetched_at": _iso(newest.fetched_at),
            "http_status": newest.http_status,
            "headers": dict(newest.headers or {}),
            "body_sha256_stored": newest.body_sha256,
        }
        if body is not None and hashlib.sha256(body).hexdigest() != newest.body_sha256:
            missing.append("the stored body does not hash to the SHA-256 recorded at fetch time: treat it as damaged")
    if page is not None and page.http_status in GONE_STATUSES:
        missing.append(f"the page answered HTTP {page.http_status} when last fetched ({_iso(page.fetched_at)}): "
                       "the copy has been taken down; the raw copy is the last one stored")
    elif page is not None and page.http_status in REDIRECT_STATUSES:
        missing.append(f"the page redirected (HTTP {page.http_status}) to {page.canonical_url or 'another page'} "
                       f"when last fetched ({_iso(page.fetched_at)}): the copy has been taken down; "
                       "the raw copy is the last one stored")
    page_text = page.text if page is not None else None
    passages, _notes = aligned_passages(match.evidence, story.text, page_text)
    lost = sum(1 for p in passages if page_text and p.page_text and p.page_span is None)
    if lost:
        missing.append(f"{lost} passage(s) are no longer in the stored page text (it changed after matching): "
                       "they are given as recorded at matching time")
    return _Facts(
        match={
            "id": match.id, "kind": match.kind, "status": match.status, "confidence": match.confidence,
            "story_coverage": match.story_coverage, "page_coverage": match.page_coverage,
            "first_seen": _iso(match.first_seen), "last_seen": _iso(match.last_seen),
        },
        story={
            "id": story.id, "title": story.title, "url": story.canonical_url,
            "published_at": _iso(story.published_at), "holder": story.holder.name if story.holder else None,
        },
        story_text=story.text,
        page=None if page is None else {
            "id": page.id, "url": page.url, "canonical_url": page.canonical_url, "site": page.site,
            "title": page.title, "http_status": page.http_status, "content_type": page.content_type,
            "last_fetched_at": _iso(page.fetched_at),
        },
        page_text=page.text if page is not None else None,
        snapshot=snapshot,
        body=body,
        versions=[{"fetched_at": _iso(s.fetched_at), "http_status": s.http_status, "body_sha256": s.body_sha256}
                  for s in snapshots],
        passages=passages,
        missing=missing,
    )


def _write(f: _Facts, directory: Path) -> EvidencePack:
    directory.mkdir(parents=True, exist_ok=True)
    pack = EvidencePack(directory, missing=list(f.missing))

    def put(name: str, data: bytes) -> None:
        path = directory / name
        tmp = directory / f".{name}.tmp"
        tmp.write_bytes(data)
        os.replace(tmp, path)
        pack.files[name] = hashlib.sha256(data).hexdigest()

    raw_name = None
    if f.body is not None and f.page is not None:
        content_type = _header(f.snapshot["headers"], "content-type") or f.page.get("content_type") or ""
        raw_name = "page-raw.html" if "html" in content_type.lower() or not content_type else "page-raw.bin"
        put(raw_name, f.body)
        put("page.warc.gz", _warc(f.page["url"], f.snapshot, f.body))
    put("story.txt", f.story_text.encode("utf-8"))
    if f.page_text:
        put("page-text.txt", f.page_text.encode("utf-8"))
    put("passages.txt", passages_text(f.passages).encode("utf-8"))
    body_sha = hashlib.sha256(f.body).hexdigest() if f.body is not None else None
    put("summary.txt", summary_text(f, body_sha, raw_name).encode("utf-8"))
    manifest = {
        "generator": GENERATOR,
        "generated_at": _iso(utcnow()),
        "match": f.match,
        "story": f.story,
        "page": f.page,
        "url": f.page["url"] if f.page else None,
        "fetched_at": f.snapshot["fetched_at"] if f.snapshot else None,
        "http_status": f.snapshot["http_status"] if f.snapshot else None,
        "headers": f.snapshot["headers"] if f.snapshot else None,
        "sha256": body_sha,
        "body_bytes": len(f.body) if f.body is not None else None,
        "versions": f.versions,
        "passages": [
            {"index": p.index, "similarity": p.similarity, "story_span": p.story_span, "page_span": p.page_span,
             "story_text": p.story_text, "page_text": p.page_text}
            for p in f.passages
        ],
        "missing": pack.missing,
        "files": dict(sorted(pack.files.items())),
    }
    put("manifest.json", (json.dumps(manifest, indent=2, ensure_ascii=False) + "\n").encode("utf-8"))
    return pack


def _header(headers: dict[str, Any], name: str) -> str | None:
    for key, value in headers.items():
        if key.lower() == name:
            return str(value)
    return None


def _warc(url: str, snapshot: dict[str, Any], body: bytes) -> bytes:
    """A gzipped WARC/1.1 file: warcinfo, then the response record of the fetch."""
    from warcio.statusandheaders import StatusAndHeaders
    from warcio.timeutils import datetime_to_iso_date
    from warcio.warcwriter import WARCWriter

    out = BytesIO()
    writer = WARCWriter(out, gzip=True, warc_version="1.1")
    writer.write_record(writer.create_warcinfo_record("page.warc.gz", {"software": GENERATOR, "format": "WARC File Format 1.1"}))
    status = snapshot.get("http_status") or 200
    headers = [(str(k), str(v)) for k, v in snapshot["headers"].items() if str(k).lower() not in _WIRE_HEADERS]
    headers.append(("Content-Length", str(len(body))))
    http_headers = StatusAndHeaders(f"{status} {_REASONS.get(status, 'Unknown')}", headers, protocol="HTTP/1.1")
    when = datetime.fromisoformat(snapshot["fetched_at"]) if snapshot.get("fetched_at") else utcnow()
    record = writer.create_warc_record(
        url, "response", payload=BytesIO(body), length=len(body), http_headers=http_headers,
        warc_headers_dict={"WARC-Date": datetime_to_iso_date(when.replace(tzinfo=None), use_micros=True)},
    )
    writer.write_record(record)
    return out.getvalue()


def _columns(left: str, right: str, width: int = COLUMN) -> list[str]:
    a = textwrap.wrap(left, width, break_on_hyphens=False) or [""]
    b = textwrap.wrap(right, width, break_on_hyphens=False) or [""]
    rows = max(len(a), len(b))
    a += [""] * (rows - len(a))
    b += [""] * (rows - len(b))
    return [f"{x:<{width}} | {y}".rstrip() for x, y in zip(a, b)]


def passages_text(passages: list[AlignedPassage]) -> str:
    """Every aligned passage, story on the left and page on the right (monospace)."""
    if not passages:
        return "No aligned passages were recorded for this match.\n"
    lines = [f"{'YOUR STORY':<{COLUMN}} | THE PAGE", "-" * (COLUMN * 2 + 3)]
    for p in passages:
        s = f"story chars {p.story_span[0]}-{p.story_span[1]}" if p.story_span else "story position unknown"
        g = f"page chars {p.page_span[0]}-{p.page_span[1]}" if p.page_span else "page position unknown"
        lines.append(f"[{p.index}] similarity {p.similarity:.2f}; {s}; {g}")
        lines += _columns(" ".join(p.story_text.split()), " ".join(p.page_text.split()))
        lines.append("")
    return "\n".join(lines) + "\n"


def summary_text(f: _Facts, body_sha: str | None, raw_name: str | None) -> str:
    """Notice-ready plain text: facts first, then the key passages as pairs."""
    m, s, page = f.match, f.story, f.page
    kind = KIND_NAMES.get(m["kind"], m["kind"])
    url = page["url"] if page else "(the page's URL is no longer stored)"
    lines = [
        f"Evidence of reuse of “{s['title']}”",
        "",
        "THE ORIGINAL WORK",
        f"  Title:         {s['title']}",
        f"  Published at:  {s['url'] or '(no URL registered)'}" + (f" on {s['published_at']}" if s["published_at"] else ""),
    ]
    if s["holder"]:
        lines.append(f"  Rights holder: {s['holder']}")
    lines += [
        "",
        "THE COPY",
        f"  URL:           {url}",
    ]
    if page:
        if page.get("title"):
            lines.append(f"  Page title:    {page['title']}")
        lines.append(f"  Site:          {page.get('site') or '-'}")
    if f.snapshot:
        lines.append(f"  Fetched:       {f.snapshot['fetched_at']} (HTTP {f.snapshot['http_status'] or '?'})")
    if body_sha:
        lines.append(f"  SHA-256 of the page as fetched: {body_sha}" + (f" (file {raw_name})" if raw_name else ""))
    lines += [
        f"  First seen:    {m['first_seen']}",
        f"  Last seen:     {m['last_seen']}",
        "",
        "WHAT WAS REUSED",
        f"  The page is a {kind} of the original: {m['story_coverage']:.0%} of the original's text is reused on it, "
        f"and {m['page_coverage']:.0%} of the page's text comes from the original (matcher confidence {m['confidence']:.2f}).",
        "",
        "STATEMENT (edit before sending)",
        *textwrap.wrap(
            f"The page at {url} reproduces {m['story_coverage']:.0%} of the article “{s['title']}”"
            + (f" ({s['url']})" if s["url"] else "")
            + (f", owned by {s['holder']}" if s["holder"] else "")
            + ", without authorisation. "
            + (f"A copy of the page was captured on {f.snapshot['fetched_at']}; its SHA-256 is {body_sha}. " if body_sha and f.snapshot else "")
            + "Passages of the original and the copy are set side by side below.",
            width=92, initial_indent="  ", subsequent_indent="  ", break_on_hyphens=False, break_long_words=False,
        ),
    ]
    keys = key_passages(f.passages)
    if keys:
        lines += ["", f"KEY PASSAGES ({len(keys)} of {len(f.passages)}; all of them are in passages.txt)"]
        for p in keys:
            lines += [
                "",
                f"  [{p.index}] Original: “{_clip(p.story_text)}”",
                f"  [{p.index}] Copy:     “{_clip(p.page_text)}”",
            ]
    if f.missing:
        lines += ["", "MISSING FROM THIS EVIDENCE"] + [f"  - {x}" for x in f.missing]
    lines += ["", f"Files: {', '.join(sorted(['manifest.json', 'passages.txt', 'summary.txt', 'story.txt'] + ([raw_name, 'page.warc.gz'] if raw_name else []) + (['page-text.txt'] if f.page_text else [])))}",
              "The SHA-256 of every file is in manifest.json."]
    return "\n".join(lines) + "\n"


def _clip(text: str, limit: int = 700) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"
