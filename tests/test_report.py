"""`copyhound report`: built from a real SQLite store, rendered by a real headless
Chromium, and checked on what the browser shows: the aligned passages and their shared
wording highlighted, hostile page content shown as text and never run, and bad input
(huge, broken, right-to-left, missing) still making a report that says what it lacks.

Chromium is Debian's package (`apt-get install -y chromium`); without it these tests
skip, except under CI=true where they fail.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import socket
import sqlite3
import struct
import subprocess
import sys
import tempfile
import zlib
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from lxml import html as lxml_html

from crawler.alerts.outbox import mark, on_match
from crawler.cli import main
from crawler.demo import demo_story
from crawler.demo.content import load_articles
from crawler.matching.compare import compare
from storage.engine import make_engine, session_factory as make_factory, upgrade
from storage.models import Match, Story
from storage.repositories import Holders, Matches, Pages, Snapshots, Stories, text_hash
from tests.conftest import skip_or_fail

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_FLAGS = (
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--hide-scrollbars",
)
SCRIPT_PAYLOAD = "<script>document.title='pwned'</script>"
IMG_PAYLOAD = "<img src=x onerror=\"document.body.setAttribute('data-pwned',1)\">"
T0 = datetime(2025, 3, 12, 9, 0, tzinfo=UTC)


# --- store helpers (also used by test_evidence and test_matches_cli) -----------------


def open_store(path: Path):
    engine = make_engine(f"sqlite:///{path}")
    upgrade(engine)
    return engine, make_factory(engine)


def demo_texts() -> tuple[str, str, dict[str, str]]:
    """The demo story (title, text) and the demo web's article texts by file name."""
    title, text = demo_story()
    articles = {a.name: a.text for arts in load_articles().values() for a in arts}
    return title, text, articles


def add_story(session, title: str, text: str, *, url: str | None = "https://harbourwire.example/eastquay", holder: str | None = "Harbour Wire") -> Story:
    owner = Holders(session).get_or_create(holder) if holder else None
    story, _ = Stories(session).add(title=title, text=text, holder=owner, canonical_url=url, published_at=T0)
    return story


def add_copy(
    session,
    story: Story,
    url: str,
    text: str,
    *,
    first_seen: datetime,
    site: str | None = None,
    title: str | None = None,
    body: bytes | None = None,
    headers: dict[str, str] | None = None,
    http_status: int = 200,
    kind: str | None = None,
) -> Match:
    """Store a fetched page (and its raw snapshot) and the matcher's real verdict on it."""
    page, _ = Pages(session).upsert(
        url=url, site=site or url.split("/")[2], text=text, title=title, http_status=http_status,
        content_type="text/html; charset=utf-8", content_hash=text_hash(text), fetched_at=first_seen,
    )
    if body is not None:
        Snapshots(session).add(page.id, body=body, headers=headers or {}, http_status=http_status,
                               content_hash=page.content_hash, fetched_at=first_seen)
    verdict = compare(story.text, text)
    match, _ = Matches(session).upsert(
        story_id=story.id, page_id=page.id, kind=kind or (verdict.kind if verdict.derived else "copy"),
        confidence=verdict.confidence, story_coverage=verdict.story_coverage, page_coverage=verdict.page_coverage,
        scores=verdict.scores, evidence=verdict.evidence(), seen_at=first_seen,
    )
    return match


def page_html(title: str, text: str) -> bytes:
    paras = "".join(f"<p>{p}</p>" for p in text.split("\n\n"))
    return f"<!doctype html><html><head><meta charset='utf-8'><title>{title}</title></head><body><article>{paras}</article></body></html>".encode()


# --- the browser ------------------------------------------------------------------------


@pytest.fixture(scope="session")
def chromium() -> str:
    if not os.access(CHROMIUM, os.X_OK):
        skip_or_fail(f"{CHROMIUM} not installed (apt-get install -y chromium)")
    return CHROMIUM


def browse(chromium: str, page: Path, *extra: str) -> subprocess.CompletedProcess:
    """Run headless Chromium on a file with its own throwaway profile."""
    with tempfile.TemporaryDirectory(prefix="copyhound-chromium-") as profile:
        result = subprocess.run(
            [chromium, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", *extra, page.resolve().as_uri()],
            capture_output=True, timeout=120, env={**os.environ, "HOME": profile},
        )
    assert result.returncode == 0, result.stderr.decode(errors="replace")[-2000:]
    return result


def dom_of(chromium: str, page: Path):
    """The DOM as the browser holds it after loading (and running any script that could run)."""
    out = browse(chromium, page, "--dump-dom").stdout.decode("utf-8")
    assert "<html" in out, "chromium printed no DOM"
    return out, lxml_html.fromstring(out)


def png_size_and_colours(path: Path) -> tuple[int, int, int]:
    """(width, height, distinct byte values in the image data) of a PNG, by the spec."""
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, idat, width, height = 8, b"", 0, 0
    while pos < len(data):
        length, kind = struct.unpack(">I4s", data[pos:pos + 8])
        chunk = data[pos + 8:pos + 8 + length]
        if kind == b"IHDR":
            width, height = struct.unpack(">II", chunk[:8])
        elif kind == b"IDAT":
            idat += chunk
        pos += 12 + length
    return width, height, len(set(zlib.decompress(idat)))


def render(db: Path, story_id: int, out: Path) -> Path:
    assert main(["--db", str(db), "report", str(story_id), "-o", str(out)]) == 0
    return out


def text_of(node) -> str:
    return node.text_content()


# --- tests --------------------------------------------------------------------------------


def test_the_harness_sees_a_script_that_runs_and_the_csp_blocks_it(chromium: str, tmp_path: Path) -> None:
    """Control: proves the DOM check below would catch an executed payload, and that the
    report's Content-Security-Policy alone would stop one."""
    bare = tmp_path / "bare.html"
    bare.write_text(f"<!doctype html><html><head><title>t</title></head><body>{SCRIPT_PAYLOAD}{IMG_PAYLOAD}</body></html>")
    _, dom = dom_of(chromium, bare)
    assert dom.findtext(".//title") == "pwned"
    assert dom.find(".//body").get("data-pwned") == "1"

    from crawler.reporting.render import environment

    source, _, _ = environment().loader.get_source(environment(), "report.html")
    head = re.search(r'<meta http-equiv="Content-Security-Policy"[^>]*>', source).group(0)
    guarded = tmp_path / "guarded.html"
    guarded.write_text(f"<!doctype html><html><head>{head}<title>t</title></head><body>{SCRIPT_PAYLOAD}{IMG_PAYLOAD}</body></html>")
    _, dom = dom_of(chromium, guarded)
    assert dom.findtext(".//title") == "t"
    assert dom.find(".//body").get("data-pwned") is None


@pytest.fixture
def hostile_store(tmp_path: Path):
    """A story and copies whose scraped title, text, site and URL carry script payloads."""
    title, text, articles = demo_texts()
    db = tmp_path / "copyhound.db"
    engine, factory = open_store(db)
    paragraphs = text.split("\n\n")
    hostile_text = "\n\n".join(paragraphs[:3]) + f" {SCRIPT_PAYLOAD} {IMG_PAYLOAD}\n\n" + "\n\n".join(paragraphs[3:])
    with factory.begin() as session:
        story = add_story(session, title, text)
        bad = add_copy(
            session, story, "https://evil.example/copy", hostile_text, first_seen=T0 + timedelta(hours=3),
            site=f"evil.example{IMG_PAYLOAD}", title=f"Stolen {SCRIPT_PAYLOAD}",
            body=page_html("x", hostile_text), headers={"Content-Type": "text/html"},
        )
        js = add_copy(session, story, "javascript:document.title='pwned'//", articles["eastquay-rewrite"],
                      first_seen=T0 + timedelta(hours=5), title="A rewrite")
        ids = (story.id, bad.id, js.id)
    engine.dispose()
    return db, ids


def test_report_shows_script_payloads_as_text_and_runs_none(chromium: str, hostile_store, tmp_path: Path) -> None:
    db, (story_id, bad_id, js_id) = hostile_store
    report = render(db, story_id, tmp_path / "report.html")
    raw, dom = dom_of(chromium, report)

    assert dom.findtext(".//title") != "pwned" and "pwned" not in (dom.findtext(".//title") or "").split()
    assert dom.find(".//body").get("data-pwned") is None
    assert not dom.xpath("//script") and not dom.xpath("//*[@onerror]") and not dom.xpath("//img")
    assert not dom.xpath("//a[starts-with(normalize-space(@href), 'javascript')]")
    heading = dom.xpath(f"//article[@id='copy-{bad_id}']/h3")[0]
    assert SCRIPT_PAYLOAD in text_of(heading)
    page_cells = dom.xpath(f"//article[@id='copy-{bad_id}']//td[@data-side='page']")
    assert any(IMG_PAYLOAD in text_of(td) for td in page_cells), "the payload inside a passage is shown as text"
    assert any(IMG_PAYLOAD in text_of(td) for td in dom.xpath("//table[@id='by-site']//td"))
    # The javascript: URL is shown, not linked.
    js_article = dom.xpath(f"//article[@id='copy-{js_id}']")[0]
    assert "javascript:document.title" in text_of(js_article.xpath("./p[@class='url']")[0])
    assert not js_article.xpath("./p[@class='url']//a")
    # Nothing in the file would load from the web.
    html_text = report.read_text(encoding="utf-8")
    assert "http-equiv=\"Content-Security-Policy\"" in html_text and "default-src 'none'" in html_text
    assert "<link" not in html_text and "src=\"http" not in html_text and "@import" not in html_text


def test_report_highlights_the_aligned_passages_side_by_side(chromium: str, tmp_path: Path) -> None:
    title, text, articles = demo_texts()
    db = tmp_path / "copyhound.db"
    engine, factory = open_store(db)
    with factory.begin() as session:
        story = add_story(session, title, text)
        Holders(session).add_destination(story.holder, "email", "rights@harbourwire.example")
        page_text = articles["eastquay-rewrite"]
        rewrite = add_copy(session, story, "https://coast.example/eastquay", page_text,
                           first_seen=T0 + timedelta(days=1), title="Eastquay fish market to shut",
                           body=page_html("v1", page_text))
        on_match(session, rewrite, is_new=True)  # queues the copy.new alert
        Snapshots(session).add(rewrite.page_id, body=page_html("v2", page_text), headers={}, http_status=200,
                               content_hash=None, fetched_at=T0 + timedelta(days=2))
        match_id, evidence = rewrite.id, list(rewrite.evidence)
    with factory.begin() as session:
        mark(session, match_id, "licensed")
    engine.dispose()
    assert len(evidence) >= 3, "the demo rewrite should align several passages"

    report = render(db, 1, tmp_path / "report.html")
    _, dom = dom_of(chromium, report)
    article = dom.xpath(f"//article[@id='copy-{match_id}']")[0]
    rows = article.xpath(".//table[@class='passages']/tbody/tr")
    assert [int(r.get("data-passage")) for r in rows] == list(range(1, len(evidence) + 1))
    for row, passage in zip(rows, evidence, strict=True):
        story_cell = row.xpath("./td[@data-side='story']")[0]
        page_cell = row.xpath("./td[@data-side='page']")[0]
        assert text_of(story_cell) == passage["story_text"]
        assert text_of(page_cell) == passage["page_text"]
        marks = [text_of(m) for m in page_cell.xpath(".//mark")]
        assert marks, f"passage {passage} has no shared wording marked"
        story_words = set(re.findall(r"\w+", text_of(story_cell).casefold()))
        for run in marks:  # every highlighted run on the page side is wording of the story
            assert set(re.findall(r"\w+", run.casefold())) <= story_words, run
        assert len("".join(marks)) < len(passage["page_text"]), "a rewrite is not marked as wholly shared"
    # The full page text marks each passage at its offsets.
    full = article.xpath(".//div[@class='fulltext'][@data-side='page']")[0]
    assert text_of(full) == page_text
    for i, passage in enumerate(evidence, start=1):
        spans = full.xpath(f".//span[@data-passage='{i}']")
        assert "".join(text_of(s) for s in spans) == page_text[passage["page_start"]:passage["page_end"]]
    # Scores, times and history are there.
    facts = text_of(article.xpath(".//dl[@class='facts']")[0])
    assert "2025-03-13 09:00 UTC" in facts and "story reused" in facts
    history = [" ".join(text_of(li).split()) for li in article.xpath(".//ol[@class='timeline']/li")]
    assert history[0].startswith("2025-03-13 09:00 UTC first seen")
    assert any("alerted: new copy email" in h for h in history)
    assert any(h.startswith("2025-03-14 09:00 UTC page changed") for h in history)
    assert any("marked licensed was active" in h for h in history)
    assert "status now: licensed" in " ".join(history)
    assert "rights@harbourwire.example" not in text_of(dom), "destinations are our configuration, not report content"


def test_report_reads_on_a_laptop_screen(chromium: str, hostile_store, tmp_path: Path) -> None:
    db, (story_id, _, _) = hostile_store
    report = render(db, story_id, tmp_path / "report.html")
    shot = tmp_path / "report.png"
    browse(chromium, report, "--window-size=1366,768", f"--screenshot={shot}")
    width, height, colours = png_size_and_colours(shot)
    assert (width, height) == (1366, 768)
    assert colours > 20, "the screenshot is blank"


def test_report_on_bad_input_renders_and_says_what_is_missing(chromium: str, tmp_path: Path) -> None:
    title, text, articles = demo_texts()
    db = tmp_path / "copyhound.db"
    engine, factory = open_store(db)
    paragraphs = text.split("\n\n")
    filler = "Unrelated site furniture and reader comments fill this page. " * 40_000  # ~2.4 MB
    huge = filler[: len(filler) // 2] + "\n\n" + "\n\n".join(paragraphs) + "\n\n" + filler[len(filler) // 2:]
    broken = "<div><p>Unclosed <table><tr><td>cell</div></body></html><!-- " + "\n\n".join(paragraphs[:6])
    arabic = "صوّت مجلس الميناء على إغلاق سوق السمك في إيستكواي رغم تقرير هندسي.\n\n" + "\n\n".join(paragraphs[:5])
    chinese = "港务局投票关闭伊斯特码头鱼市。\n\n" + "\n\n".join(paragraphs[:5])
    with factory.begin() as session:
        story = add_story(session, title, text)
        m_huge = add_copy(session, story, "https://huge.example/a", huge, first_seen=T0 + timedelta(hours=1),
                          title="Huge page", kind="copy")
        m_broken = add_copy(session, story, "https://broken.example/a", broken, first_seen=T0 + timedelta(hours=2),
                            title="<div><b>Broken <i>markup", body=b"<html><body><div><p>" + broken.encode() + b"\xff\xfe")
        m_rtl = add_copy(session, story, "https://arabic.example/a", arabic, first_seen=T0 + timedelta(days=2),
                         title="سوق السمك في إيستكواي")
        m_cjk = add_copy(session, story, "https://chinese.example/a", chinese, first_seen=T0 + timedelta(days=3),
                         title="伊斯特码头鱼市关闭")
        m_gone = add_copy(session, story, "https://gone.example/a", "\n\n".join(paragraphs[:6]),
                          first_seen=T0 + timedelta(days=4), title="Taken down")
        m_dangling = add_copy(session, story, "https://deleted.example/a", "\n\n".join(paragraphs[2:8]),
                              first_seen=T0 + timedelta(days=5), title="Deleted")
        m_moved = add_copy(session, story, "https://moved.example/a", "\n\n".join(paragraphs[1:7]),
                           first_seen=T0 + timedelta(days=6), title="Redirected away")
        ids = {k: m.id for k, m in dict(huge=m_huge, broken=m_broken, rtl=m_rtl, cjk=m_cjk, gone=m_gone,
                                        dangling=m_dangling, moved=m_moved).items()}
        # Taken down by a redirect to the homepage; the target is the site's to choose.
        moved = Pages(session).get(m_moved.page_id)
        moved.http_status, moved.canonical_url = 301, "https://moved.example/?q=<script>alert(1)</script>"
        page_gone, page_dangling = m_gone.page_id, m_dangling.page_id
        # The taken-down page: answered 410, its text dropped.
        Pages(session).get(page_gone).http_status = 410
        Pages(session).get(page_gone).text = None
        # An empty story: registered, nothing found.
        empty = add_story(session, "A story nobody copied", "Nothing here was copied by anyone at all.", holder=None)
        empty_id = empty.id
    engine.dispose()
    # A page row deleted behind the store's back (foreign keys off, as an old tool or a
    # manual clean-up would): its match remains, pointing at nothing.
    conn = sqlite3.connect(db)
    conn.execute("PRAGMA foreign_keys = OFF")
    conn.execute("DELETE FROM pages WHERE id = ?", (page_dangling,))
    conn.commit()
    conn.close()

    report = render(db, 1, tmp_path / "report.html")
    assert report.stat().st_size < 1_500_000, "a 2.4 MB page must not be copied whole into the report"
    raw, dom = dom_of(chromium, report)
    articles_shown = {int(a.get("data-match-id")) for a in dom.xpath("//article[@data-match-id]")}
    assert articles_shown == set(ids.values())

    def article(key: str):
        return dom.xpath(f"//article[@id='copy-{ids[key]}']")[0]

    huge_full = article("huge").xpath(".//div[@class='fulltext'][@data-side='page']")[0]
    assert "characters not shown" in text_of(huge_full)
    assert paragraphs[0] in text_of(huge_full)
    assert "<div><b>Broken <i>markup" in text_of(article("broken").xpath("./h3")[0])
    assert "<table><tr><td>cell</div></body></html><!--" in text_of(article("broken"))
    rtl_cells = article("rtl").xpath(".//div[@class='fulltext'][@data-side='page']")
    assert rtl_cells[0].get("dir") == "auto" and "صوّت مجلس الميناء" in text_of(rtl_cells[0])
    assert "سوق السمك في إيستكواي" in text_of(article("rtl").xpath("./h3")[0])
    assert "港务局投票关闭伊斯特码头鱼市" in text_of(article("cjk"))
    gone = text_of(article("gone").xpath(".//div[contains(@class, 'missing')]")[0])
    assert "HTTP 410" in gone and "text is no longer stored" in gone and "no raw snapshot" in gone
    moved = text_of(article("moved").xpath(".//div[contains(@class, 'missing')]")[0])
    assert "redirected (HTTP 301) to https://moved.example/?q=<script>alert(1)</script>" in moved
    assert "taken down" in moved
    dangling = text_of(article("dangling").xpath(".//div[contains(@class, 'missing')]")[0])
    assert "page record is gone" in dangling
    # The dangling copy still shows what the matcher recorded.
    assert article("dangling").xpath(".//td[@data-side='page']//mark")
    summary_missing = text_of(dom.xpath("//div[@id='missing']")[0])
    assert f"Match {ids['dangling']}" in summary_missing and f"Match {ids['gone']}" in summary_missing

    empty_report = render(db, empty_id, tmp_path / "empty.html")
    _, empty_dom = dom_of(chromium, empty_report)
    assert "No copies of this story have been found yet" in text_of(empty_dom.xpath("//p[@id='summary-line']")[0])
    assert not empty_dom.xpath("//article")


def test_report_of_an_unknown_story_or_an_empty_store_is_a_clear_error(tmp_path: Path, capsys) -> None:
    db = tmp_path / "empty.db"
    assert main(["--db", str(db), "report", "1", "-o", str(tmp_path / "r.html")]) == 1
    assert "no story with id 1" in capsys.readouterr().err
    assert not (tmp_path / "r.html").exists()
    assert main(["--db", str(db), "report", "1", "-o", str(tmp_path / "no-such-dir" / "r.html")]) == 1


def test_report_shows_the_copy_chain_with_first_seen_times(chromium: str, tmp_path: Path) -> None:
    from crawler.chains import record_edges

    title, text, articles = demo_texts()
    rewrite = articles["eastquay-rewrite"]
    # A copy of the rewrite, not of the story: the rewrite's own wording, lightly edited.
    copy_of_copy = rewrite.replace("Eastquay", "East Quay").replace("harbour chiefs", "port bosses") + \
        "\n\nThis article was compiled by our newsdesk."
    db = tmp_path / "copyhound.db"
    engine, factory = open_store(db)
    with factory.begin() as session:
        story = add_story(session, title, text)
        first = add_copy(session, story, "https://coast.example/eastquay", rewrite, first_seen=T0 + timedelta(hours=4))
        second = add_copy(session, story, "https://scraper.example/east-quay", copy_of_copy,
                          first_seen=T0 + timedelta(days=2, hours=1))
        record_edges(session, story.id)
        first_id, second_id = first.id, second.id
    engine.dispose()
    _, dom = dom_of(chromium, render(db, 1, tmp_path / "report.html"))
    chain = dom.xpath("//section[@id='chains']//ul[@class='chain']")[0]
    source = chain.xpath(".//li[a[@href='#copy-%d']]" % first_id)[0]
    assert "first seen 2025-03-12 13:00 UTC" in text_of(source)
    child = source.xpath("./ul/li")[0]
    assert child.xpath("./a")[0].get("href") == f"#copy-{second_id}"
    assert "first seen 2025-03-14 10:00 UTC" in text_of(child)
    ref = text_of(dom.xpath(f"//article[@id='copy-{second_id}']//p[@class='chainref']")[0])
    assert ref.startswith(f"Copied from #{first_id}") and "2025-03-12 13:00 UTC" in ref


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_report_and_evidence_on_demo_data(chromium: str, tmp_path: Path) -> None:
    """`copyhound demo`, then the report and an evidence pack, as a user would run them."""
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(Path(__file__).resolve().parent.parent), "HOME": str(tmp_path)}

    def copyhound(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "crawler.cli", *args], cwd=tmp_path, capture_output=True,
                              text=True, timeout=600, env=env)

    demo = copyhound("demo", "--port", str(_free_port()))
    assert demo.returncode == 0, demo.stdout + demo.stderr
    done = copyhound("report", "1", "-o", "report.html")
    assert done.returncode == 0, done.stderr
    assert "3 copies on 3 sites" in done.stdout
    raw, dom = dom_of(chromium, tmp_path / "report.html")
    articles = dom.xpath("//article[@data-match-id]")
    assert len(articles) == 3
    for article in articles:
        assert article.xpath(".//td[@data-side='page']//mark"), "every demo copy shows highlighted wording"
    kinds = sorted(text_of(td) for td in dom.xpath("//table[@id='by-kind']//td[1]"))
    assert kinds == ["copy", "excerpt", "rewrite"]
    assert len(dom.xpath("//svg//circle[@class='dot']")) == 3
    shot = tmp_path / "demo-report.png"
    browse(chromium, tmp_path / "report.html", "--window-size=1366,768", f"--screenshot={shot}")
    assert png_size_and_colours(shot)[:2] == (1366, 768)
    if os.environ.get("COPYHOUND_KEEP_SCREENSHOT"):
        shutil.copy(shot, os.environ["COPYHOUND_KEEP_SCREENSHOT"])

    listing = copyhound("matches", "--kind", "copy", "--format", "json")
    import json

    (copy_match,) = json.loads(listing.stdout)
    ev = copyhound("evidence", str(copy_match["id"]), "-o", "evidence")
    assert ev.returncode == 0, ev.stderr
    files = sorted(p.name for p in (tmp_path / "evidence").iterdir())
    assert files == ["manifest.json", "page-raw.html", "page-text.txt", "page.warc.gz", "passages.txt", "story.txt", "summary.txt"]
    manifest = json.loads((tmp_path / "evidence" / "manifest.json").read_text())
    assert manifest["sha256"] == hashlib.sha256((tmp_path / "evidence" / "page-raw.html").read_bytes()).hexdigest()
    assert manifest["url"] == copy_match["url"] and manifest["missing"] == []
