"""`copyhound evidence`: the page as fetched, a WARC record read back with warcio, the
hashes, the passages and a notice-ready summary; and what is said when parts are gone."""

from __future__ import annotations

import gzip
import hashlib
import json
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from warcio.archiveiterator import ArchiveIterator

from crawler.cli import main
from storage.repositories import Holders
from tests.test_report import add_copy, add_story, demo_texts, open_store, page_html

FETCHED = datetime(2025, 3, 13, 7, 45, 12, tzinfo=UTC)
SECRET = "whsec_c2VjcmV0LXRoYXQtbXVzdC1uZXZlci1sZWFr"


@pytest.fixture
def store(tmp_path: Path, monkeypatch):
    """A story with three copies: fully fetched, without snapshot, and deleted."""
    title, text, articles = demo_texts()
    monkeypatch.setenv("COPYHOUND_HOOK_SECRET", SECRET)
    db = tmp_path / "copyhound.db"
    engine, factory = open_store(db)
    rewrite = articles["eastquay-rewrite"]
    body = page_html("Eastquay fish market to shut — Coastline Post", rewrite).replace(b"<body>", "<body><nav>Menü ☰</nav>".encode())
    headers = {"Content-Type": "text/html; charset=utf-8", "Content-Encoding": "gzip", "Content-Length": "1234",
               "Server": "nginx", "Last-Modified": "Wed, 12 Mar 2025 17:45:00 GMT"}
    with factory.begin() as session:
        story = add_story(session, title, text)
        holder = Holders(session).get_or_create("Harbour Wire")
        Holders(session).add_destination(holder, "webhook", "https://hooks.harbourwire.example/copyhound", secret_env="COPYHOUND_HOOK_SECRET")
        Holders(session).add_destination(holder, "email", "rights@harbourwire.example")
        full = add_copy(session, story, "https://coast.example/eastquay?ref=feed&x=<b>", rewrite, first_seen=FETCHED,
                        title="Eastquay fish market to shut", body=body, headers=headers)
        bare = add_copy(session, story, "https://bare.example/a", articles["eastquay-copy"],
                        first_seen=FETCHED + timedelta(hours=1), title="No snapshot")
        gone = add_copy(session, story, "https://gone.example/a", articles["eastquay-copy"] + "\n\nMore.",
                        first_seen=FETCHED + timedelta(hours=2), body=b"<html>gone</html>")
        ids = {"full": full.id, "bare": bare.id, "gone": gone.id, "gone_page": gone.page_id}
    engine.dispose()
    return db, ids, body, rewrite, text


def evidence(db: Path, match_id: int, out: Path) -> int:
    return main(["--db", str(db), "evidence", str(match_id), "-o", str(out)])


def test_evidence_pack_holds_the_page_as_fetched(store, tmp_path: Path, capsys) -> None:
    db, ids, body, rewrite, story_text = store
    out = tmp_path / "pack"
    assert evidence(db, ids["full"], out) == 0
    assert "written to" in capsys.readouterr().out
    names = sorted(p.name for p in out.iterdir())
    assert names == ["manifest.json", "page-raw.html", "page-text.txt", "page.warc.gz", "passages.txt", "story.txt", "summary.txt"]
    assert (out / "page-raw.html").read_bytes() == body
    sha = hashlib.sha256(body).hexdigest()

    manifest = json.loads((out / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["sha256"] == sha and manifest["body_bytes"] == len(body)
    assert manifest["url"] == "https://coast.example/eastquay?ref=feed&x=<b>"
    assert manifest["fetched_at"] == "2025-03-13T07:45:12+00:00" and manifest["http_status"] == 200
    assert manifest["headers"]["Content-Encoding"] == "gzip"  # as received
    assert manifest["missing"] == []
    for name, digest in manifest["files"].items():
        assert hashlib.sha256((out / name).read_bytes()).hexdigest() == digest
    assert manifest["versions"] == [{"fetched_at": "2025-03-13T07:45:12+00:00", "http_status": 200, "body_sha256": sha}]

    with (out / "page.warc.gz").open("rb") as f:
        records = [(r.rec_type, r.rec_headers, r.http_headers, r.content_stream().read()) for r in ArchiveIterator(f)]
    assert [r[0] for r in records] == ["warcinfo", "response"]
    _, warc_headers, http_headers, payload = records[1]
    assert payload == body
    assert warc_headers.get_header("WARC-Target-URI") == manifest["url"]
    assert warc_headers.get_header("WARC-Date").startswith("2025-03-13T07:45:12")
    assert http_headers.get_statuscode() == "200"
    assert http_headers.get_header("Server") == "nginx"
    # The body is stored decoded: the WARC must not tell replay tools to gunzip it.
    assert http_headers.get_header("Content-Encoding") is None
    assert http_headers.get_header("Content-Length") == str(len(body))

    summary = (out / "summary.txt").read_text(encoding="utf-8")
    assert manifest["url"] in summary and sha in summary and "2025-03-13T07:45:12+00:00" in summary
    assert "Harbour Wire" in summary and "https://harbourwire.example/eastquay" in summary
    match = manifest["match"]
    assert f"{match['story_coverage']:.0%} of the original's text is reused" in summary
    first = manifest["passages"][0]
    assert " ".join(first["page_text"].split())[:200] in " ".join(summary.split())
    passages = (out / "passages.txt").read_text(encoding="utf-8")
    assert passages.count("similarity") == len(manifest["passages"]) >= 3
    assert (out / "story.txt").read_text(encoding="utf-8") == story_text
    assert (out / "page-text.txt").read_text(encoding="utf-8") == rewrite

    # Our own configuration never leaks into the pack.
    everything = b"".join((out / n).read_bytes() for n in names if n != "page.warc.gz")
    everything += gzip.decompress((out / "page.warc.gz").read_bytes())
    for private in (SECRET, "COPYHOUND_HOOK_SECRET", "hooks.harbourwire.example", "rights@harbourwire.example", str(db)):
        assert private.encode() not in everything, private


def test_evidence_rerun_rewrites_the_same_pack(store, tmp_path: Path) -> None:
    db, ids, body, _, _ = store
    out = tmp_path / "pack"
    assert evidence(db, ids["full"], out) == 0
    first = {p.name: p.read_bytes() for p in out.iterdir()}
    assert evidence(db, ids["full"], out) == 0
    second = {p.name: p.read_bytes() for p in out.iterdir()}
    assert set(first) == set(second)
    for name in ("page-raw.html", "passages.txt", "summary.txt", "story.txt"):
        assert first[name] == second[name]


def test_evidence_without_snapshot_says_so(store, tmp_path: Path) -> None:
    db, ids, *_ = store
    out = tmp_path / "bare"
    assert evidence(db, ids["bare"], out) == 0
    assert not (out / "page-raw.html").exists() and not (out / "page.warc.gz").exists()
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["sha256"] is None and manifest["headers"] is None
    assert any("no raw snapshot" in m for m in manifest["missing"])
    summary = (out / "summary.txt").read_text()
    assert "MISSING FROM THIS EVIDENCE" in summary and "no raw snapshot" in summary
    assert "https://bare.example/a" in summary and (out / "passages.txt").stat().st_size > 0


def test_evidence_for_a_deleted_page_writes_what_exists(store, tmp_path: Path) -> None:
    db, ids, *_ = store
    conn = sqlite3.connect(db)  # deleted behind the store's back: the match is left dangling
    conn.execute("PRAGMA foreign_keys = OFF")
    conn.execute("DELETE FROM pages WHERE id = ?", (ids["gone_page"],))
    conn.commit()
    conn.close()
    out = tmp_path / "gone"
    assert evidence(db, ids["gone"], out) == 0
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["page"] is None and manifest["url"] is None
    assert any("page record" in m for m in manifest["missing"])
    summary = (out / "summary.txt").read_text()
    assert "no longer stored" in summary and "page record" in summary
    assert "KEY PASSAGES" in summary  # the passages recorded at matching time remain
    assert sorted(p.name for p in out.iterdir()) == ["manifest.json", "passages.txt", "story.txt", "summary.txt"]


def test_evidence_for_an_unknown_match_is_a_clear_error(store, tmp_path: Path, capsys) -> None:
    db, *_ = store
    assert evidence(db, 999, tmp_path / "x") == 1
    assert "no match with id 999" in capsys.readouterr().err
    assert not (tmp_path / "x").exists()
