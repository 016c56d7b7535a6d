"""The CLI against a real SQLite file and real local HTTP servers."""

from __future__ import annotations

import json
import socket
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from crawler.cli import main
from tests.servers import LocalServer, Reply, html_page

STORY = [
    "The Lindqvist ferry yard in Port Aldous will close its dry dock in March, ending 112 years of shipbuilding on the estuary, according to a letter seen by this newspaper.",
    "The letter, signed by managing director Ines Farrow, tells the 340 remaining workers that the company could not find a buyer for the dock after the loss of a naval maintenance contract worth 48 million pounds.",
    "\"We have exhausted every option that would keep the cranes turning,\" Farrow wrote, adding that the repair berth would stay open until the end of the year.",
    "Union organiser Tomas Keel said members had been told nothing before the letter arrived and would ask the regional council for an emergency meeting.",
]


def run(db: Path, *args: str) -> int:
    return main(["--db", str(db), *args])


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "copyhound.db"


@pytest.fixture
def story_file(tmp_path: Path) -> Path:
    path = tmp_path / "story.txt"
    path.write_text("Ferry yard to close its dry dock\n" + "\n".join(STORY), encoding="utf-8")
    return path


def test_init_creates_a_sqlite_file_with_the_schema(db: Path, capsys) -> None:
    assert run(db, "init") == 0
    tables = {r[0] for r in sqlite3.connect(db).execute("select name from sqlite_master where type='table'")}
    assert {"stories", "pages", "matches", "alerts", "crawl_runs", "sources", "rights_holders"} <= tables
    assert run(db, "init") == 0  # upgrading an up-to-date database is a no-op


def test_seed_add_list_show_remove_from_a_text_file(db: Path, story_file: Path, capsys) -> None:
    assert run(db, "seed", "add", "--file", str(story_file), "--holder", "Estuary Post", "--start-url", "http://127.0.0.1:9/") == 0
    out = capsys.readouterr().out
    assert "registered story 1: Ferry yard to close its dry dock" in out
    # The same text for the same holder is the same story, not a second one.
    assert run(db, "seed", "add", "--file", str(story_file), "--holder", "Estuary Post") == 0
    assert "already registered as story 1" in capsys.readouterr().out

    assert run(db, "seed", "list") == 0
    listing = capsys.readouterr().out
    assert "Ferry yard" in listing and "Estuary Post" in listing

    assert run(db, "seed", "show", "1") == 0
    shown = capsys.readouterr().out
    assert "start_url http://127.0.0.1:9/" in shown and "Ines Farrow" in shown

    assert run(db, "seed", "remove", "1") == 0
    assert run(db, "seed", "show", "1") == 1
    assert "no story with id 1" in capsys.readouterr().err


def test_seed_add_from_a_noisy_html_file_keeps_the_story_only(db: Path, tmp_path: Path, capsys) -> None:
    page = tmp_path / "page.html"
    chrome = "".join(f"<li><a href='/s{i}'>Teaser headline number {i} about celebrity gossip</a></li>" for i in range(30))
    page.write_text(
        "<!doctype html><html><head><meta charset='utf-8'><title>Ferry yard to close | Estuary Post</title></head><body>"
        f"<nav><ul>{chrome}</ul></nav><div class='cookie'>We use cookies to improve your experience. Accept all</div>"
        "<article><h1>Ferry yard to close its dry dock</h1>" + "".join(f"<p>{p}</p>" for p in STORY) + "</article>"
        "<section class='comments'><h3>Comments</h3><p>Disgraceful, the council should step in now!!!</p></section>"
        f"<aside><ul>{chrome}</ul></aside></body></html>",
        encoding="utf-8",
    )
    assert run(db, "seed", "add", "--file", str(page)) == 0
    capsys.readouterr()
    assert run(db, "seed", "show", "1") == 0
    shown = capsys.readouterr().out
    assert "Ines Farrow" in shown and "Tomas Keel" in shown
    assert "celebrity gossip" not in shown and "cookies" not in shown


def test_seed_add_from_a_url_and_the_failures_of_urls(db: Path, capsys) -> None:
    routes = {
        "/story": Reply(body=html_page("Ferry yard to close its dry dock", STORY)),
        "/gone": Reply(404, b"<html><body>not here</body></html>"),
        "/report.pdf": Reply(200, b"%PDF-1.4 binary", {"Content-Type": "application/pdf"}),
    }
    with LocalServer(routes) as server:
        assert run(db, "seed", "add", "--url", server.url("/story")) == 0
        assert "Ferry yard to close its dry dock" in capsys.readouterr().out
        assert run(db, "seed", "add", "--url", server.url("/gone")) == 1
        assert "404" in capsys.readouterr().err
        assert run(db, "seed", "add", "--url", server.url("/report.pdf")) == 1
        assert "application/pdf" in capsys.readouterr().err
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        dead = s.getsockname()[1]
    assert run(db, "seed", "add", "--url", f"http://127.0.0.1:{dead}/story") == 1
    assert capsys.readouterr().err.startswith("copyhound: error:")
    # Nothing half-registered: only the good story is there.
    conn = sqlite3.connect(db)
    assert conn.execute("select count(*) from stories").fetchone()[0] == 1


@pytest.mark.parametrize(
    ("content", "message"),
    [(b"", "empty"), (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256)), "binary")],
)
def test_seed_add_rejects_empty_and_binary_files(db: Path, tmp_path: Path, capsys, content: bytes, message: str) -> None:
    path = tmp_path / "seed.txt"
    path.write_bytes(content)
    assert run(db, "seed", "add", "--file", str(path)) == 1
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def test_seed_add_reads_html_in_an_undeclared_legacy_encoding(db: Path, tmp_path: Path, capsys) -> None:
    text = "Der Bürgermeister von Großheide äußerte sich über die Fähre, die Schließung und die Änderungen am Hafen. " * 6
    path = tmp_path / "legacy.html"
    path.write_bytes(f"<html><head><title>Fähre</title></head><body><article><p>{text}</p></article></body></html>".encode("cp1252"))
    assert run(db, "seed", "add", "--file", str(path), "--title", "Fähre") == 0
    capsys.readouterr()
    assert run(db, "seed", "show", "1") == 0
    assert "Bürgermeister von Großheide" in capsys.readouterr().out


def test_a_database_in_a_missing_directory_is_a_clear_error(tmp_path: Path, capsys) -> None:
    assert run(tmp_path / "nowhere" / "copyhound.db", "init") == 1
    err = capsys.readouterr().err
    assert "does not exist" in err and "Traceback" not in err
    assert not (tmp_path / "nowhere").exists()


def test_an_unreadable_database_is_a_clear_error(tmp_path: Path, capsys) -> None:
    bogus = tmp_path / "bogus.db"
    bogus.write_bytes(b"this is not a database file at all" * 100)
    assert run(bogus, "seed", "list") == 1
    assert capsys.readouterr().err.startswith("copyhound: error:")


def test_unknown_ids_and_stories_without_sources(db: Path, story_file: Path, capsys) -> None:
    assert run(db, "crawl", "7") == 1
    assert "no story with id 7" in capsys.readouterr().err
    assert run(db, "seed", "remove", "7") == 1
    assert run(db, "seed", "add", "--file", str(story_file)) == 0
    assert run(db, "crawl", "1") == 1
    assert "has no sources" in capsys.readouterr().err


@pytest.mark.parametrize(
    "args",
    [["seed", "show", "abc"], ["seed", "show", "0"], ["crawl"], ["seed", "add"], ["seed", "add", "--url", "ftp://x"], ["frobnicate"],
     ["runs", "--limit", "0"]],
)
def test_bad_arguments_exit_2_with_a_usage_line(db: Path, capsys, args: list[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        run(db, *args)
    assert exc.value.code == 2
    assert "usage: copyhound" in capsys.readouterr().err


def test_every_command_has_help() -> None:
    commands = [[], ["init"], ["seed"], ["seed", "add"], ["seed", "list"], ["seed", "show"], ["seed", "remove"],
                ["crawl"], ["matches"], ["eval"], ["demo"]]
    for words in commands:
        result = subprocess.run([sys.executable, "-m", "crawler.cli", *words, "--help"], capture_output=True, text=True, timeout=60)
        assert result.returncode == 0, (words, result.stderr)
        assert "usage: copyhound" in result.stdout


def test_matches_export_formats_on_an_empty_store(db: Path, capsys) -> None:
    assert run(db, "matches", "--format", "json") == 0
    assert json.loads(capsys.readouterr().out) == []
    assert run(db, "matches") == 0
    assert "no matches" in capsys.readouterr().out


def test_runs_lists_crawl_runs_newest_first_with_how_they_ended(db: Path, story_file: Path, capsys) -> None:
    assert run(db, "runs") == 0
    assert "no crawl runs yet" in capsys.readouterr().out
    assert run(db, "seed", "add", "--file", str(story_file)) == 0
    assert run(db, "seed", "add", "--file", str(story_file), "--title", "Another copy of the text", "--holder", "Other") == 0
    capsys.readouterr()
    from storage.engine import make_engine, session_factory
    from storage.repositories import CrawlRuns

    engine = make_engine(f"sqlite:///{db}")
    with session_factory(engine).begin() as session:
        runs = CrawlRuns(session)
        first = runs.start(1)
        runs.finish(first.id, status="finished", counts={"pages": 79, "matches_new": 3, "matches_removed": 1})
        killed = runs.start(1)
        runs.interrupt(killed.id, "worker 4242 on host <b>x</b> is gone")
        runs.start(2)
    engine.dispose()

    assert run(db, "runs", "--format", "json") == 0
    rows = json.loads(capsys.readouterr().out)
    assert [(r["id"], r["story_id"], r["status"]) for r in rows] == [(3, 2, "running"), (2, 1, "interrupted"), (1, 1, "finished")]
    assert (rows[2]["pages"], rows[2]["new_matches"], rows[2]["removed"]) == (79, 3, 1)
    assert rows[1]["error"] == "worker 4242 on host <b>x</b> is gone" and rows[0]["finished"] is None
    assert run(db, "runs", "--story", "1", "--limit", "1", "--format", "json") == 0
    assert [r["id"] for r in json.loads(capsys.readouterr().out)] == [2]
    assert run(db, "runs", "--story", "1") == 0
    table = capsys.readouterr().out
    assert "interrupted" in table and "worker 4242 on host <b>x</b> is gone" in table and "79" in table
