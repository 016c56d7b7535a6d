"""`copyhound matches`: filters by story, kind, status, site and time, sorted by first
seen, as a table, CSV or JSON, on a real SQLite store."""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from crawler.cli import main
from storage.repositories import Matches
from tests.test_report import add_copy, add_story, demo_texts, open_store

NOW = datetime.now(UTC)


@pytest.fixture
def db(tmp_path: Path) -> tuple[Path, dict[str, int]]:
    """Two stories; copies on three sites, stored out of time order."""
    title, text, articles = demo_texts()
    path = tmp_path / "copyhound.db"
    engine, factory = open_store(path)
    with factory.begin() as session:
        story = add_story(session, title, text)
        other = add_story(session, "Other story", articles["eastquay-vote-night"], url="https://other.example/s")
        ids = {
            "recent": add_copy(session, story, "https://a.example/2", articles["eastquay-rewrite"],
                               first_seen=NOW - timedelta(days=1), site="a.example").id,
            "old": add_copy(session, story, "https://a.example/1", articles["eastquay-copy"],
                            first_seen=NOW - timedelta(days=30), site="a.example").id,
            "middle": add_copy(session, story, "https://b.example/x", articles["cruise-column-excerpt"],
                               first_seen=NOW - timedelta(days=10), site="b.example", kind="excerpt").id,
            "other": add_copy(session, other, "https://c.example/y", articles["eastquay-vote-night"] + "\n\nEnd.",
                              first_seen=NOW - timedelta(days=5), site="c.example", kind="copy").id,
        }
        Matches(session).set_status(ids["middle"], "licensed")
    engine.dispose()
    return path, ids


def run_json(db: Path, *args: str, capsys) -> list[dict]:
    assert main(["--db", str(db), "matches", *args, "--format", "json"]) == 0
    return json.loads(capsys.readouterr().out)


def test_matches_are_sorted_by_first_seen_and_filtered(db, capsys) -> None:
    path, ids = db
    rows = run_json(path, capsys=capsys)
    assert [r["id"] for r in rows] == [ids["old"], ids["middle"], ids["other"], ids["recent"]]
    assert [r["first_seen"] for r in rows] == sorted(r["first_seen"] for r in rows)

    assert [r["id"] for r in run_json(path, "--story", "1", capsys=capsys)] == [ids["old"], ids["middle"], ids["recent"]]
    assert [r["id"] for r in run_json(path, "--site", "a.example", capsys=capsys)] == [ids["old"], ids["recent"]]
    assert [r["id"] for r in run_json(path, "--status", "licensed", capsys=capsys)] == [ids["middle"]]
    assert [r["id"] for r in run_json(path, "--kind", "excerpt", capsys=capsys)] == [ids["middle"]]
    assert [r["id"] for r in run_json(path, "--since", "7d", capsys=capsys)] == [ids["other"], ids["recent"]]
    since = (NOW - timedelta(days=12)).strftime("%Y-%m-%d")
    assert [r["id"] for r in run_json(path, "--since", since, capsys=capsys)] == [ids["middle"], ids["other"], ids["recent"]]
    assert [r["id"] for r in run_json(path, "--site", "a.example", "--since", "48h", capsys=capsys)] == [ids["recent"]]
    assert run_json(path, "--site", "nowhere.example", capsys=capsys) == []


def test_matches_as_csv_for_spreadsheets(db, capsys) -> None:
    path, ids = db
    assert main(["--db", str(path), "matches", "--site", "a.example", "--format", "csv"]) == 0
    rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert [int(r["id"]) for r in rows] == [ids["old"], ids["recent"]]
    assert {"id", "story_id", "kind", "status", "site", "url", "first_seen", "last_seen", "story_reused"} <= set(rows[0])
    assert rows[0]["url"] == "https://a.example/1" and rows[0]["site"] == "a.example"


def test_matches_as_a_table_on_a_terminal(db, capsys) -> None:
    path, ids = db
    assert main(["--db", str(path), "matches", "--since", "7d"]) == 0
    table = capsys.readouterr().out
    assert "https://a.example/2" in table and "https://c.example/y" in table
    assert "https://a.example/1" not in table
    assert table.index("https://c.example/y") < table.index("https://a.example/2")
    assert main(["--db", str(path), "matches", "--site", "nowhere.example"]) == 0
    assert "no matches" in capsys.readouterr().out


@pytest.mark.parametrize("bad", ["yesterday", "7 days", "2025-13-01", "-3d"])
def test_matches_since_rejects_what_it_cannot_read(db, bad: str, capsys) -> None:
    path, _ = db
    with pytest.raises(SystemExit) as exit_info:
        main(["--db", str(path), "matches", "--since", bad])
    assert exit_info.value.code == 2
    assert "--since" in capsys.readouterr().err


def test_since_takes_dates_times_and_ages() -> None:
    from crawler.review_commands import since_value

    assert since_value("2025-03-01") == datetime(2025, 3, 1, tzinfo=UTC)
    assert since_value("2025-03-01T14:30+02:00") == datetime(2025, 3, 1, 12, 30, tzinfo=UTC)
    before = datetime.now(UTC)
    value = since_value("24h")
    after = datetime.now(UTC)
    assert before - timedelta(hours=24) <= value <= after - timedelta(hours=24)
