"""The monitor file: validation with file:line:key errors, and idempotent apply to a real
SQLite database (stories served by a real local HTTP server)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from crawler.cli import main
from crawler.monitor_file import MonitorFileError, _KeyLines, load_monitor_file
from tests.servers import LocalServer, Reply, html_page

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "examples" / "monitor.toml"
EXAMPLE_URL = "https://estuarypost.example/news/harbour-bridge-tolls"
BRIDGE = [
    "Tolls on the Harbour Bridge will rise to 4.80 pounds for cars from June, the Harbour Authority's draft budget shows.",
    "The document, obtained by the Estuary Post, says the increase would raise 2.1 million pounds a year for repairs to the 1962 span.",
    "Commuters from Lower Aldous, who cross twice a day, would pay almost 2,000 pounds a year under the plan.",
]


def problems(tmp_path: Path, text: str, name: str = "monitor.toml") -> list[str]:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    with pytest.raises(MonitorFileError) as caught:
        load_monitor_file(path)
    return caught.value.problems


def table_counts(db: Path) -> dict[str, int]:
    con = sqlite3.connect(db)
    try:
        return {t: con.execute(f"select count(*) from {t}").fetchone()[0]
                for t in ("stories", "sources", "rights_holders", "destinations", "licences",
                          "copyhound_scheduler_jobs")}
    finally:
        con.close()


# --- the shipped example ---------------------------------------------------------------


def test_the_shipped_example_validates(capsys) -> None:
    config = load_monitor_file(EXAMPLE)
    assert [h.name for h in config.holders] == ["Estuary Post"]
    [email, webhook] = config.holders[0].alerts
    assert (email.channel, email.digest) == ("email", "daily")
    assert (webhook.channel, webhook.secret_env, webhook.events) == ("webhook", "ESTUARY_WEBHOOK_SECRET",
                                                                     ["copy.new", "copy.removed"])
    first, second = config.stories
    assert first.file == (EXAMPLE.parent / "stories" / "ferry-yard.txt").resolve()
    assert ("feed", "https://regional-news.example/feed.xml") in first.sources
    assert (first.max_depth, first.max_pages) == (1, 200)  # own depth, default pages
    assert first.search.enabled and first.search.max_results == 30
    assert first.schedule == {"cron": "0 */4 * * *"}
    assert second.schedule == {"every": "6h"}  # from [defaults]
    assert second.search.enabled and second.search.max_results == 50
    assert main(["monitor", "check", str(EXAMPLE)]) == 0
    assert "ok: 1 holder(s), 2 story(ies)" in capsys.readouterr().out


def test_applying_the_example_twice_creates_everything_once(tmp_path: Path, capsys) -> None:
    db = tmp_path / "copyhound.db"
    with LocalServer({"/bridge": Reply(body=html_page("Harbour Bridge tolls to rise", BRIDGE))}) as server:
        monitor = tmp_path / "monitor.toml"
        monitor.write_text(EXAMPLE.read_text(encoding="utf-8").replace(EXAMPLE_URL, server.url("/bridge")),
                           encoding="utf-8")
        (tmp_path / "stories").mkdir()
        (tmp_path / "stories" / "ferry-yard.txt").write_bytes((EXAMPLE.parent / "stories" / "ferry-yard.txt").read_bytes())

        assert main(["--db", str(db), "monitor", "apply", str(monitor)]) == 0
        out = capsys.readouterr().out
        assert "story 1 (registered)" in out and "story 2 (registered)" in out
        first = table_counts(db)
        assert first == {"stories": 2, "sources": 6, "rights_holders": 1, "destinations": 2, "licences": 2,
                         "copyhound_scheduler_jobs": 2}
        con = sqlite3.connect(db)
        next_runs = con.execute("select id, next_run_time from copyhound_scheduler_jobs order by id").fetchall()
        search = con.execute("select story_id, url, max_depth, options from sources where kind='search' order by story_id").fetchall()
        events = con.execute("select events from destinations where channel='webhook'").fetchone()[0]
        con.close()
        assert [(s, u, d) for s, u, d, _ in search] == [(1, "search:phrases", 0), (2, "search:phrases", 0)]
        assert '"max_results": 30' in search[0][3]
        assert "copy.removed" in events

        assert main(["--db", str(db), "monitor", "apply", str(monitor)]) == 0
        out = capsys.readouterr().out
        assert "story 1 (unchanged)" in out and "schedule unchanged" in out
        assert table_counts(db) == first
        con = sqlite3.connect(db)
        assert con.execute("select id, next_run_time from copyhound_scheduler_jobs order by id").fetchall() == next_runs
        con.close()


def test_apply_updates_titles_schedules_and_prunes_sources(tmp_path: Path, capsys) -> None:
    db = tmp_path / "copyhound.db"
    story = tmp_path / "story.txt"
    story.write_text("\n".join(["Bridge tolls", *BRIDGE]), encoding="utf-8")
    base = """
[[stories]]
file = "story.txt"
title = "{title}"
[stories.sources]
start_urls = [{starts}]
search = {search}
[stories.schedule]
every = "{every}"
"""
    monitor = tmp_path / "monitor.toml"
    monitor.write_text(base.format(title="Tolls", starts='"https://a.example/", "https://b.example/"', search="true",
                                   every="2h"), encoding="utf-8")
    assert main(["--db", str(db), "monitor", "apply", str(monitor)]) == 0
    monitor.write_text(base.format(title="Tolls to rise", starts='"https://a.example/"', search="false", every="3h"),
                       encoding="utf-8")
    assert main(["--db", str(db), "monitor", "apply", str(monitor)]) == 0
    assert "story 1 (updated)" in capsys.readouterr().out
    con = sqlite3.connect(db)
    assert con.execute("select title from stories").fetchall() == [("Tolls to rise",)]
    # search = false switched search off; without --prune the dropped start URL stays
    assert sorted(con.execute("select kind, url from sources")) == [("start_url", "https://a.example/"),
                                                                    ("start_url", "https://b.example/")]
    con.close()
    assert main(["--db", str(db), "monitor", "apply", "--prune", str(monitor)]) == 0
    assert "1 removed" in capsys.readouterr().out
    assert main(["--db", str(db), "schedule", "list", "--format", "json"]) == 0
    assert "3:00:00" in capsys.readouterr().out
    assert table_counts(db)["sources"] == 1


def test_a_story_that_cannot_be_fetched_names_its_position_and_keeps_earlier_work(tmp_path: Path, capsys) -> None:
    db = tmp_path / "copyhound.db"
    (tmp_path / "one.txt").write_text("\n".join(["Bridge tolls", *BRIDGE]), encoding="utf-8")
    with LocalServer({}) as server:
        monitor = tmp_path / "monitor.toml"
        monitor.write_text(f'[[stories]]\nfile = "one.txt"\n\n[[stories]]\nurl = "{server.url("/gone")}"\n',
                           encoding="utf-8")
        assert main(["--db", str(db), "monitor", "apply", str(monitor)]) == 1
    assert "monitor.toml:4: stories[1]: cannot read the story" in capsys.readouterr().err
    con = sqlite3.connect(db)
    assert con.execute("select count(*) from stories").fetchone()[0] == 1
    con.close()


# --- errors name the file, the line and the key ---------------------------------------

CASES = [
    # (file text, line, path, message fragment)
    ('[[stories]]\nfile = "s.txt"\n\n[[stories]]\nfile = "s.txt"\nholder = "B"\n\n[stories.schedule]\nevery = "soon"\n',
     9, "stories[1].schedule.every", 'expected a duration like "1h" or "30m", got "soon"'),
    ('[[stories]]\nfile = "s.txt"\n[stories.sources]\nfeed = ["https://x.example/f"]\n',
     4, "stories[0].sources.feed", 'unknown key \'feed\': did you mean "feeds"?'),
    ('[[stories]]\nfile = "s.txt"\nfeeds = ["https://x.example/f"]\n',
     3, "stories[0].feeds", "belongs in the story's [stories.sources] table"),
    ('[[stories]]\nfile = "s.txt"\n[stories.sources]\nmax_pages = "10"\n',
     4, "stories[0].sources.max_pages", 'expected a whole number, got "10"'),
    ('[[stories]]\nfile = "s.txt"\n[stories.sources]\nmax_depth = true\n',
     4, "stories[0].sources.max_depth", "expected a whole number, got true (a boolean)"),
    ('[[stories]]\nfile = "s.txt"\n[stories.sources]\nstart_urls = ["https://ok.example/", "ftp://x"]\n',
     4, "stories[0].sources.start_urls[1]", 'expected an http(s) URL, got "ftp://x"'),
    ('[[stories]]\ntitle = "no source of text"\n',
     1, "stories[0]", 'give exactly one of "url"'),
    ('[[stories]]\nfile = "missing.txt"\n',
     2, "stories[0].file", 'no such file: "missing.txt"'),
    ('[[holders]]\nalerts = []\n',
     1, "holders[0]", "missing required key 'name'"),
    ('[[holders]]\nname = "A"\n[[holders.alerts]]\nwebhook = "https://h.example/"\ndigest = "weekly"\n',
     5, "holders[0].alerts[0].digest", 'expected one of immediate, hourly, daily, got "weekly"'),
    ('[[holders]]\nname = "A"\n[[holders.alerts]]\nemail = "a@b.example"\nwebhook = "https://h.example/"\n',
     3, "holders[0].alerts[0]", 'give exactly one of "email"'),
    ('[[holders]]\nname = "A"\n\n[[holders]]\nname = "B"\n[[holders.alerts]]\nemail = "x@y.example"\nevents = ["copy.new", "copy.gone"]\n',
     8, "holders[1].alerts[0].events", "unknown alert type(s) copy.gone"),
    ('[[holders]]\nname = "A"\n[[holders.licences]]\ndomain = "not a domain"\n',
     4, "holders[0].licences[0].domain", "not a domain name"),
    ('[[stories]]\nfile = "s.txt"\nschedule = { cron = "0 */6 * *" }\n',
     3, "stories[0].schedule.cron", "needs 5 fields"),
    ('[[stories]]\nfile = "s.txt"\nschedule = { every = "10s" }\n',
     3, "stories[0].schedule.every", "too short"),
    ('[[stories]]\nfile = "s.txt"\n[stories.schedule]\nevery = "1h"\ncron = "0 * * * *"\n',
     3, "stories[0].schedule", 'give exactly one of "every"'),
    ('[defaults]\nmax_pagse = 10\n', 2, "defaults.max_pagse", 'did you mean "max_pages"?'),
    ('[[storys]]\nfile = "s.txt"\n', 1, "storys", 'did you mean "stories"?'),
    ('stories = "x"\n', 1, "stories", 'expected an array of tables ([[stories]]), got "x"'),
    ('[[stories]]\nfile = "s.txt"\n[stories.sources]\nsearch = { enabled = "yes", max_results = 5000 }\n',
     4, "stories[0].sources.search.enabled", 'expected true or false, got "yes"'),
]


@pytest.mark.parametrize(("text", "line", "path", "message"), CASES, ids=[c[2] for c in CASES])
def test_each_error_names_file_line_and_key(tmp_path: Path, text: str, line: int, path: str, message: str) -> None:
    (tmp_path / "s.txt").write_text("Story\nSome story text for the test.\n", encoding="utf-8")
    found = problems(tmp_path, text)
    prefix = f"monitor.toml:{line}: {path}: "
    assert any(p.startswith(prefix) and message in p for p in found), found


def test_all_problems_are_reported_at_once_in_file_order(tmp_path: Path) -> None:
    text = '[[stories]]\nurl = "nope"\n[stories.sources]\nmax_pages = 0\n[stories.schedule]\nevery = "later"\n'
    found = problems(tmp_path, text)
    assert [p.split(":")[1] for p in found] == ["2", "4", "6"]


def test_toml_syntax_errors_give_the_line(tmp_path: Path) -> None:
    [problem] = problems(tmp_path, '[[stories]]\nfile = "s.txt"\ntitle = "unclosed\n')
    assert problem.startswith("monitor.toml:3: not valid TOML")
    [problem] = problems(tmp_path, 'a = 1\nb = [\n')
    assert problem.startswith("monitor.toml:2: not valid TOML")


def test_unreadable_and_non_utf8_files(tmp_path: Path) -> None:
    with pytest.raises(MonitorFileError, match="cannot read the monitor file"):
        load_monitor_file(tmp_path / "absent.toml")
    path = tmp_path / "latin.toml"
    path.write_bytes(b'# ok\ntitle = "caf\xe9"\n')
    with pytest.raises(MonitorFileError, match=r"latin.toml:2: not UTF-8"):
        load_monitor_file(path)


def test_the_check_command_prints_each_problem_and_exits_1(tmp_path: Path, capsys) -> None:
    path = tmp_path / "monitor.toml"
    path.write_text('[[stories]]\nurl = "https://a.example/x"\n[stories.schedule]\nevery = "soon"\n', encoding="utf-8")
    assert main(["monitor", "check", str(path)]) == 1
    err = capsys.readouterr().err
    assert 'copyhound: error: monitor.toml:4: stories[0].schedule.every: expected a duration like "1h"' in err


def test_key_lines_follow_arrays_of_tables_dotted_keys_and_multiline_strings() -> None:
    source = (
        '[[holders]]\nname = "A"\n[[holders.alerts]]\nemail = "a@x"\n[[holders.alerts]]\nemail = "b@x"\n'
        '[[holders]]\nname = "B"\nnote = """\nname = "not a key"\n"""\n[[holders.alerts]]\nemail = "c@x"\n'
        "[[stories]]\nsources.feeds = []\n"
    )
    lines = _KeyLines(source)
    assert lines.line_of(("holders", 0, "alerts", 1, "email")) == 6
    assert lines.line_of(("holders", 1, "name")) == 8
    assert lines.line_of(("holders", 1, "alerts", 0, "email")) == 13
    assert lines.line_of(("stories", 0, "sources", "feeds", 3)) == 15
