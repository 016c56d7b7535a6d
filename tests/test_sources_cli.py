"""`copyhound sources add|list|remove` against a real SQLite file."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from crawler.cli import main


@pytest.fixture
def db(tmp_path: Path, capsys) -> Path:
    """A database with story 1 registered from a text file."""
    path = tmp_path / "copyhound.db"
    story = tmp_path / "story.txt"
    story.write_text("Bridge tolls to rise\nTolls on the Harbour Bridge will rise to 4.80 pounds from June.\n",
                     encoding="utf-8")
    assert main(["--db", str(path), "seed", "add", "--file", str(story)]) == 0
    capsys.readouterr()
    return path


def run(db: Path, *args: str) -> int:
    return main(["--db", str(db), *args])


def rows(db: Path) -> list[tuple]:
    con = sqlite3.connect(db)
    try:
        return con.execute("select id, story_id, kind, url, max_depth, max_pages, options from sources order by id").fetchall()
    finally:
        con.close()


def test_add_list_and_remove_sources(db: Path, capsys, monkeypatch) -> None:
    monkeypatch.delenv("COPYHOUND_SEARCH_PROVIDER", raising=False)
    assert run(db, "sources", "add", "1", "--start-url", "https://a.example/", "--feed", "https://a.example/feed.xml",
               "--sitemap", "https://a.example/sitemap.xml", "--max-depth", "0", "--max-pages", "50") == 0
    assert run(db, "sources", "add", "1", "--search", "--max-results", "20") == 0
    captured = capsys.readouterr()
    assert "source 4: story 1 search search:phrases (max_phrases=5, max_results=20)" in captured.out
    assert "COPYHOUND_SEARCH_PROVIDER is not set" in captured.err  # a warning, not a failure
    stored = rows(db)
    assert [(r[2], r[3], r[4], r[5]) for r in stored] == [
        ("start_url", "https://a.example/", 0, 50),
        ("feed", "https://a.example/feed.xml", 0, 50),
        ("sitemap", "https://a.example/sitemap.xml", 0, 50),
        ("search", "search:phrases", 0, 200),
    ]
    assert json.loads(stored[3][6]) == {"max_results": 20, "max_phrases": 5}

    # Adding the same again changes settings, never adds rows.
    assert run(db, "sources", "add", "1", "--search", "--max-results", "40") == 0
    assert run(db, "sources", "add", "1", "--start-url", "https://a.example/") == 0
    assert len(rows(db)) == 4
    assert json.loads(rows(db)[3][6])["max_results"] == 40

    capsys.readouterr()
    assert run(db, "sources", "list", "1", "--format", "json") == 0
    listed = json.loads(capsys.readouterr().out)
    assert [r["kind"] for r in listed] == ["start_url", "feed", "sitemap", "search"]
    assert listed[0]["story"] == "Bridge tolls to rise"
    assert run(db, "sources", "list") == 0
    table = capsys.readouterr().out
    assert "https://a.example/feed.xml" in table and "max_results=40" in table

    assert run(db, "sources", "remove", "2") == 0
    assert [r[0] for r in rows(db)] == [1, 3, 4]
    assert run(db, "sources", "remove", "2") == 1
    assert "no source with id 2" in capsys.readouterr().err


def test_unknown_story_is_a_user_error(db: Path, capsys) -> None:
    assert run(db, "sources", "add", "7", "--feed", "https://a.example/feed.xml") == 1
    assert "no story with id 7" in capsys.readouterr().err
    assert run(db, "sources", "list", "7") == 1
    assert rows(db) == []


@pytest.mark.parametrize(
    "args",
    [
        ["sources", "add", "1"],  # nothing to add
        ["sources", "add", "1", "--feed", "ftp://a.example/feed"],
        ["sources", "add", "1", "--start-url", "https://"],
        ["sources", "add", "x", "--feed", "https://a.example/f"],
        ["sources", "add", "0", "--feed", "https://a.example/f"],
        ["sources", "add", "1", "--feed", "https://a.example/f", "--max-depth", "-1"],
        ["sources", "add", "1", "--feed", "https://a.example/f", "--max-pages", "0"],
        ["sources", "add", "1", "--feed", "https://a.example/f", "--max-results", "5"],  # without --search
        ["sources", "add", "1", "--search", "--max-results", "100000"],
        ["sources", "remove"],
        ["sources", "remove", "abc"],
        ["sources", "list", "--format", "xml"],
        ["sources"],
        ["monitor"],
        ["monitor", "apply"],
    ],
)
def test_bad_arguments_exit_2_and_change_nothing(db: Path, args: list[str], capsys) -> None:
    with pytest.raises(SystemExit) as caught:
        run(db, *args)
    assert caught.value.code == 2
    assert "usage:" in capsys.readouterr().err
    assert rows(db) == []


def test_empty_listing_says_how_to_add(db: Path, capsys) -> None:
    assert run(db, "sources", "list") == 0
    assert "no sources" in capsys.readouterr().out
