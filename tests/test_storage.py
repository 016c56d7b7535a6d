"""Storage against a real SQLite file and a real PostgreSQL database (see conftest)."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import func, inspect, select, text

from storage import (
    DEFAULT_DB_ENV,
    Alert,
    Alerts,
    CrawlRun,
    CrawlRuns,
    Destination,
    Holders,
    Match,
    Matches,
    NotFoundError,
    Page,
    Pages,
    RightsHolder,
    Source,
    Sources,
    Stories,
    StorageError,
    Story,
    current_revision,
    default_db_url,
    make_engine,
    normalise_db_url,
    text_hash,
    unit_of_work,
    upgrade,
)
from storage.engine import alembic_config
from storage.models import Base

TABLES = {
    "page_snapshots",
    "copy_edges",
    "licences",
    "site_suppressions",
    "match_decisions",
    "copy_keys",
    "alert_digests",
    "alert_digest_items",
    "rights_holders",
    "destinations",
    "stories",
    "sources",
    "pages",
    "matches",
    "alerts",
    "crawl_runs",
}
T0 = datetime(2026, 1, 5, 12, 0, tzinfo=UTC)


def count(session, model) -> int:
    return session.scalar(select(func.count()).select_from(model))


def add_page(session, url: str = "https://copy.example/a", **kw) -> Page:
    values = {"site": "copy.example", "http_status": 200, "content_hash": "h1", "text": "body"}
    values.update(kw)
    page, _ = Pages(session).upsert(url=url, **values)
    return page


def add_match(session, story: Story, page: Page, **kw) -> tuple[Match, bool]:
    values = dict(
        kind="rewrite",
        confidence=0.8,
        story_coverage=0.6,
        page_coverage=0.5,
        scores={"jaccard": 0.1},
        evidence=[{"story": "a", "page": "b"}],
    )
    values.update(kw)
    return Matches(session).upsert(story_id=story.id, page_id=page.id, **values)


@pytest.fixture
def story_with_holder(session_factory):
    """A holder with two enabled destinations and one disabled, and one of its stories."""
    with session_factory.begin() as s:
        holders = Holders(s)
        holder = holders.get_or_create("Reuters")
        holders.add_destination(holder, "email", "legal@example.com")
        holders.add_destination(holder, "webhook", "https://hooks.example/x", secret_env="COPYHOUND_HOOK_SECRET")
        off = holders.add_destination(holder, "email", "old@example.com")
        off.enabled = False
        story, _ = Stories(s).add(title="Chips", text="The original story text.", holder=holder)
    return story


# --- schema and engine -----------------------------------------------------------


def test_upgrade_creates_every_table_and_is_idempotent(db_url: str) -> None:
    engine = make_engine(db_url)
    try:
        assert current_revision(engine) is None
        upgrade(engine)
        upgrade(engine)  # second run: nothing to do, no error
        assert current_revision(engine) == ScriptDirectory.from_config(alembic_config()).get_current_head()
        assert set(inspect(engine).get_table_names()) == TABLES | {"alembic_version"}
        with engine.connect() as conn:
            assert conn.scalar(text("SELECT count(*) FROM alembic_version")) == 1
            # The hand-written migration and the models describe the same schema.
            diff = compare_metadata(MigrationContext.configure(conn, opts={"compare_type": True}), Base.metadata)
        assert diff == []
    finally:
        engine.dispose()


def test_upgrade_accepts_a_url_and_keeps_data(db_url: str, session_factory) -> None:
    with session_factory.begin() as s:
        Holders(s).get_or_create("AP")
    upgrade(db_url)  # a URL string: builds and disposes its own engine
    with session_factory() as s:
        assert Holders(s).by_name("AP") is not None


def test_database_from_a_newer_version_is_a_storage_error(db_url: str, db_engine) -> None:
    with db_engine.begin() as conn:
        conn.execute(text("UPDATE alembic_version SET version_num = '9999'"))
    with pytest.raises(StorageError, match="newer copyhound"):
        upgrade(db_engine)


def test_sqlite_pragmas_are_on_for_every_connection(tmp_path: Path) -> None:
    engine = make_engine(str(tmp_path / "p.db"))
    try:
        upgrade(engine)
        conns = [engine.connect() for _ in range(2)]  # two distinct pooled connections
        try:
            for conn in conns:
                assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
                assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
                assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() >= 10_000
        finally:
            for conn in conns:
                conn.close()
    finally:
        engine.dispose()


def test_missing_sqlite_directory_names_the_setting(tmp_path: Path) -> None:
    missing = tmp_path / "nope" / "deeper"
    with pytest.raises(StorageError) as err:
        make_engine(str(missing / "copyhound.db"))
    assert str(missing) in str(err.value)
    assert DEFAULT_DB_ENV in str(err.value)
    with pytest.raises(StorageError, match=DEFAULT_DB_ENV):
        upgrade(f"sqlite:///{missing / 'copyhound.db'}")
    assert not missing.exists()


def test_garbage_file_is_a_clear_error_and_is_not_touched(tmp_path: Path) -> None:
    junk = tmp_path / "junk.db"
    payload = bytes(range(256)) * 64
    junk.write_bytes(payload)
    with pytest.raises(StorageError, match="not a SQLite database"):
        upgrade(str(junk))
    assert junk.read_bytes() == payload


def test_corrupt_file_with_sqlite_header_is_a_storage_error(tmp_path: Path) -> None:
    # SQLite itself must reject it and upgrade() must turn the driver error into a StorageError rather than a traceback.
    bad = tmp_path / "bad.db"
    bad.write_bytes(b"SQLite format 3\x00" + b"\xff" * 4096)
    with pytest.raises(StorageError, match=DEFAULT_DB_ENV):
        upgrade(str(bad))


def test_unreachable_postgres_is_a_storage_error() -> None:
    # Port 9 on loopback: nothing listens there, so the connection is refused at once.
    with pytest.raises(StorageError, match=DEFAULT_DB_ENV) as err:
        upgrade("postgresql://copy:s3cret@127.0.0.1:9/none")
    assert "s3cret" not in str(err.value)


def test_normalise_db_url(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert normalise_db_url("data/x.db") == f"sqlite:///{tmp_path / 'data' / 'x.db'}"
    assert normalise_db_url("postgresql://u@h/db") == "postgresql+psycopg://u@h/db"
    assert normalise_db_url("postgres://u@h/db") == "postgresql+psycopg://u@h/db"
    assert normalise_db_url("postgresql+psycopg://u@h/db") == "postgresql+psycopg://u@h/db"
    assert normalise_db_url("sqlite:////abs/x.db") == "sqlite:////abs/x.db"
    with pytest.raises(StorageError):
        normalise_db_url("  ")


def test_default_db_url(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv(DEFAULT_DB_ENV, raising=False)
    assert default_db_url() == f"sqlite:///{tmp_path / 'copyhound.db'}"
    monkeypatch.setenv(DEFAULT_DB_ENV, "other.db")
    assert default_db_url() == f"sqlite:///{tmp_path / 'other.db'}"
    monkeypatch.setenv(DEFAULT_DB_ENV, "postgresql://u@h/db")
    assert default_db_url() == "postgresql+psycopg://u@h/db"


# --- transactions ------------------------------------------------------------------


def test_a_failed_unit_of_work_leaves_nothing_behind(session_factory) -> None:
    with pytest.raises(RuntimeError, match="boom"):
        with unit_of_work(session_factory) as s:
            holder = Holders(s).get_or_create("Reuters")
            story, _ = Stories(s).add(title="t", text="x", holder=holder)
            page = add_page(s)
            add_match(s, story, page)
            raise RuntimeError("boom")
    with session_factory() as s:
        for model in (RightsHolder, Story, Page, Match):
            assert count(s, model) == 0


def test_an_open_reading_session_does_not_block_a_writer(session_factory) -> None:
    # E.g. the dispatcher holding a session while it sends mail, beside a crawl. With
    # SQLite write locks taken at BEGIN this would wait out the busy timeout and fail.
    with session_factory() as reader:
        assert Stories(reader).list() == []
        with session_factory.begin() as writer:
            Stories(writer).add(title="t", text="written while a reader is open")
        reader.rollback()
        assert len(Stories(reader).list()) == 1


def test_times_come_back_aware_utc(session_factory) -> None:
    local = datetime(2026, 3, 1, 9, 30, tzinfo=timezone(timedelta(hours=2)))
    with session_factory.begin() as s:
        story, _ = Stories(s).add(title="t", text="x", published_at=local)
        story_id = story.id
    with session_factory() as s:
        published = Stories(s).get(story_id).published_at
    assert published == local
    assert published.utcoffset() == timedelta(0)


# --- holders, stories, sources ---------------------------------------------------------


def test_holders_and_destinations(session_factory) -> None:
    with session_factory.begin() as s:
        holders = Holders(s)
        first = holders.get_or_create("Reuters")
        assert holders.get_or_create("Reuters").id == first.id
        assert holders.by_name("Nobody") is None
        d1 = holders.add_destination(first, "webhook", "https://hooks.example/x", secret_env="HOOK")
        d2 = holders.add_destination(first, "webhook", "https://hooks.example/x", secret_env="HOOK")
        assert d1.id == d2.id
        again = holders.add_destination(first, "webhook", "https://hooks.example/x", secret_env="HOOK2", digest="daily")
        assert (again.id, again.secret_env, again.digest) == (d1.id, "HOOK2", "daily")
        with pytest.raises(ValueError, match="channel"):
            holders.add_destination(first, "sms", "+4912345")
    with session_factory() as s:
        assert count(s, RightsHolder) == 1
        assert count(s, Destination) == 1
        assert Holders(s).by_name("Reuters").destinations[0].secret_env == "HOOK2"


def test_stories_add_get_list(session_factory) -> None:
    with session_factory.begin() as s:
        holder = Holders(s).get_or_create("Reuters")
        other = Holders(s).get_or_create("AFP")
        stories = Stories(s)
        story, created = stories.add(
            title="Chips",
            text="Original text.",
            holder=holder,
            canonical_url="https://reuters.example/chips",
            fingerprint=b"\x01\x02",
            fingerprint_params={"scheme": "affine32", "num_perm": 128, "seed": 1},
        )
        assert created
        assert story.text_hash == text_hash("Original text.")
        same, created_again = stories.add(title="Chips again", text="Original text.", holder=holder)
        assert (same.id, created_again) == (story.id, False)
        theirs, created_other = stories.add(title="Chips", text="Original text.", holder=other)
        assert created_other and theirs.id != story.id
        story_id = story.id
    with session_factory() as s:
        got = Stories(s).get(story_id)
        assert got.fingerprint == b"\x01\x02"
        assert got.fingerprint_params["num_perm"] == 128
        assert [x.id for x in Stories(s).list()] == sorted([story_id, theirs.id])
        assert Stories(s).get(999_999) is None


def test_sources_are_idempotent_and_validated(session_factory) -> None:
    with session_factory.begin() as s:
        story, _ = Stories(s).add(title="t", text="x")
        sources = Sources(s)
        a = sources.add(story.id, "feed", "https://news.example/rss")
        b = sources.add(story.id, "feed", "https://news.example/rss")
        assert a.id == b.id
        c = sources.add(story.id, "start_url", "https://news.example/", max_depth=1, max_pages=50)
        with pytest.raises(ValueError, match="kind"):
            sources.add(story.id, "twitter", "https://x.example/")
        with pytest.raises(NotFoundError):
            sources.add(999_999, "feed", "https://news.example/rss")
        story_id = story.id
    with session_factory() as s:
        assert count(s, Source) == 2
        got = Sources(s).for_story(story_id)
        assert [x.id for x in got] == [a.id, c.id]
        assert (got[1].max_depth, got[1].max_pages) == (1, 50)


# --- pages -------------------------------------------------------------------------------


def test_pages_upsert_reports_content_changes(session_factory) -> None:
    url = "https://copy.example/story"
    with session_factory.begin() as s:
        page, changed = Pages(s).upsert(url=url, http_status=200, content_hash="h1", text="v1", fetched_at=T0)
        assert changed
        page_id = page.id
    with session_factory.begin() as s:
        later = T0 + timedelta(hours=1)
        page, changed = Pages(s).upsert(url=url, http_status=203, content_hash="h1", text="IGNORED", fetched_at=later)
        assert (page.id, changed) == (page_id, False)
    with session_factory() as s:
        page = Pages(s).by_url(url)
        assert (page.text, page.http_status, page.fetched_at) == ("v1", 203, T0 + timedelta(hours=1))
    with session_factory.begin() as s:
        page, changed = Pages(s).upsert(url=url, http_status=200, content_hash="h2", text="v2")
        assert (page.id, changed) == (page_id, True)
    with session_factory() as s:
        assert Pages(s).by_url(url).text == "v2"
        assert count(s, Page) == 1
        assert Pages(s).by_url("https://elsewhere.example/") is None


# --- matches -------------------------------------------------------------------------------


def test_matches_upsert_is_idempotent_and_keeps_person_status(session_factory) -> None:
    with session_factory.begin() as s:
        story, _ = Stories(s).add(title="t", text="x")
        page = add_page(s)
        match, is_new = add_match(s, story, page, seen_at=T0)
        assert is_new and match.status == "active"
        ids = (story.id, page.id, match.id)
    with session_factory.begin() as s:
        Matches(s).get(ids[2]).status = "licensed"  # a person's decision
    with session_factory.begin() as s:
        story, page = Stories(s).get(ids[0]), Pages(s).get(ids[1])
        later = T0 + timedelta(days=1)
        match, is_new = add_match(s, story, page, kind="verbatim", scores={"jaccard": 0.9}, seen_at=later)
        assert (match.id, is_new) == (ids[2], False)
    with session_factory() as s:
        match = Matches(s).get(ids[2])
        assert count(s, Match) == 1
        assert match.status == "licensed"
        assert match.first_seen == T0
        assert match.last_seen == T0 + timedelta(days=1)
        assert (match.kind, match.scores) == ("verbatim", {"jaccard": 0.9})


def test_touch_page_moves_last_seen_of_its_matches_only(session_factory) -> None:
    with session_factory.begin() as s:
        a, _ = Stories(s).add(title="a", text="a")
        b, _ = Stories(s).add(title="b", text="b")
        page, other = add_page(s, "https://one.example/1"), add_page(s, "https://two.example/2")
        m1, _ = add_match(s, a, page, seen_at=T0)
        m2, _ = add_match(s, b, page, seen_at=T0)
        m3, _ = add_match(s, a, other, seen_at=T0)
        m1.status = "ignored"
    later = T0 + timedelta(days=2)
    with session_factory.begin() as s:
        assert Matches(s).touch_page(page.id, seen_at=later) == 2
        assert Matches(s).touch_page(page.id, seen_at=T0) == 2  # an older sighting moves nothing
        assert Matches(s).touch_page(999_999) == 0
    with session_factory() as s:
        got = {m.id: m for m in Matches(s).list()}
    assert (got[m1.id].last_seen, got[m2.id].last_seen, got[m3.id].last_seen) == (later, later, T0)
    assert got[m1.id].first_seen == T0 and got[m1.id].status == "ignored"


def test_matches_list_filters_and_eager_loads(session_factory) -> None:
    with session_factory.begin() as s:
        a, _ = Stories(s).add(title="a", text="a")
        b, _ = Stories(s).add(title="b", text="b")
        p1 = add_page(s, "https://one.example/1", site="one.example")
        p2 = add_page(s, "https://two.example/2", site="two.example")
        m1, _ = add_match(s, a, p1, kind="verbatim", seen_at=T0 + timedelta(hours=2))
        m2, _ = add_match(s, a, p2, kind="rewrite", seen_at=T0)
        m3, _ = add_match(s, b, p1, kind="rewrite", seen_at=T0 + timedelta(hours=1))
        m3.status = "false_positive"
    with session_factory() as s:
        repo = Matches(s)
        assert [m.id for m in repo.list()] == [m2.id, m3.id, m1.id]  # by first_seen
        assert [m.id for m in repo.list(story_id=a.id)] == [m2.id, m1.id]
        assert [m.id for m in repo.list(kind="rewrite")] == [m2.id, m3.id]
        assert [m.id for m in repo.list(status="false_positive")] == [m3.id]
        assert [m.id for m in repo.list(site="one.example")] == [m3.id, m1.id]
        assert [m.id for m in repo.list(since=T0 + timedelta(minutes=30))] == [m3.id, m1.id]
        listed = repo.list()
        got = repo.get(m1.id)
        assert repo.get(999_999) is None
    # Session closed: related objects must already be loaded.
    assert {m.page.url for m in listed} == {p1.url, p2.url}
    assert {m.story.title for m in listed} == {"a", "b"}
    assert (got.page.site, got.story.title) == ("one.example", "a")


def test_match_for_missing_story_is_a_clear_error(session_factory) -> None:
    with session_factory.begin() as s:
        page = add_page(s)
        with pytest.raises(NotFoundError, match="story"):
            Matches(s).upsert(
                story_id=999_999, page_id=page.id, kind="rewrite", confidence=1.0,
                story_coverage=1.0, page_coverage=1.0, scores={}, evidence=[],
            )


# --- alerts ----------------------------------------------------------------------------------


def test_alerts_one_per_enabled_destination_and_idempotent(session_factory, story_with_holder) -> None:
    with session_factory.begin() as s:
        match, _ = add_match(s, story_with_holder, add_page(s))
        created = Alerts(s).enqueue(match, payload={"url": "https://copy.example/a"})
        assert sorted(a.channel for a in created) == ["email", "webhook"]
        assert all(a.status == "pending" and a.attempts == 0 for a in created)
        assert Alerts(s).enqueue(match, payload={"url": "https://copy.example/a"}) == []
        # Another event for the same match is a separate alert.
        assert len(Alerts(s).enqueue(match, event="copy.changed", payload={})) == 2
    with session_factory.begin() as s:
        match = Matches(s).list()[0]
        assert Alerts(s).enqueue(match, payload={}) == []  # in a later transaction too
    with session_factory() as s:
        assert count(s, Alert) == 4
        disabled = s.scalars(select(Destination).where(Destination.enabled.is_(False))).one()
        assert all(a.destination_id != disabled.id for a in Alerts(s).list())


def test_alerts_need_a_holder_with_destinations(session_factory) -> None:
    with session_factory.begin() as s:
        orphan, _ = Stories(s).add(title="t", text="no holder")
        lonely_holder = Holders(s).get_or_create("Nobody listens")
        lonely, _ = Stories(s).add(title="t", text="no destinations", holder=lonely_holder)
        page = add_page(s)
        for story in (orphan, lonely):
            match, _ = add_match(s, story, page)
            assert Alerts(s).enqueue(match, payload={}) == []
    with session_factory() as s:
        assert count(s, Alert) == 0


def test_alerts_pending_and_list(session_factory, story_with_holder) -> None:
    with session_factory.begin() as s:
        match, _ = add_match(s, story_with_holder, add_page(s))
        email, hook = sorted(Alerts(s).enqueue(match, payload={}), key=lambda a: a.channel)
        hook.next_attempt_at = T0 + timedelta(hours=1)  # a retry scheduled later
        email_id, hook_id = email.id, hook.id
    with session_factory.begin() as s:
        assert [a.id for a in Alerts(s).pending(now=T0)] == [email_id]
        assert [a.id for a in Alerts(s).pending(now=T0 + timedelta(hours=2))] == [email_id, hook_id]
        assert len(Alerts(s).pending(now=T0 + timedelta(hours=2), limit=1)) == 1
        assert [a.id for a in Alerts(s).pending(now=T0, skip_locked=True)] == [email_id]
        s.get(Alert, email_id).status = "sent"
    with session_factory() as s:
        assert Alerts(s).pending(now=T0) == []
        assert [a.id for a in Alerts(s).list(status="sent")] == [email_id]
        assert [a.id for a in Alerts(s).list()] == [email_id, hook_id]


# --- crawl runs --------------------------------------------------------------------------------


def test_crawl_runs(session_factory) -> None:
    with session_factory.begin() as s:
        story, _ = Stories(s).add(title="t", text="x")
        runs = CrawlRuns(s)
        first = runs.start(story.id)
        second = runs.start(None)
        assert first.status == "running" and first.finished_at is None
        done = runs.finish(first.id, status="ok", counts={"pages": 3, "matches": 1})
        assert done.finished_at is not None and done.counts == {"pages": 3, "matches": 1}
        runs.finish(second.id, status="failed", counts={}, error="DNS failure")
        with pytest.raises(NotFoundError):
            runs.finish(999_999, status="ok", counts={})
        story_id = story.id
    with session_factory() as s:
        latest = CrawlRuns(s).latest()
        assert [r.id for r in latest] == [second.id, first.id]
        assert latest[0].error == "DNS failure"
        assert [r.id for r in CrawlRuns(s).latest(story_id)] == [first.id]
        assert len(CrawlRuns(s).latest(limit=1)) == 1


# --- removal ------------------------------------------------------------------------------------


def test_removing_a_story_cascades(session_factory, story_with_holder) -> None:
    with session_factory.begin() as s:
        story = Stories(s).get(story_with_holder.id)
        Sources(s).add(story.id, "feed", "https://news.example/rss")
        page = add_page(s)
        match, _ = add_match(s, story, page)
        Alerts(s).enqueue(match, payload={})
        run = CrawlRuns(s).start(story.id)
        keep, _ = Stories(s).add(title="other", text="another story")
        add_match(s, keep, page)
        run_id, keep_id = run.id, keep.id
    # A fresh session: the database, not the identity map, has to do the cascading.
    with session_factory.begin() as s:
        assert Stories(s).remove(story_with_holder.id) is True
        assert Stories(s).remove(story_with_holder.id) is False
    with session_factory() as s:
        assert count(s, Source) == 0
        assert count(s, Alert) == 0
        assert [m.story_id for m in Matches(s).list()] == [keep_id]
        assert count(s, Page) == 1
        assert s.get(CrawlRun, run_id).story_id is None
        assert Holders(s).by_name("Reuters") is not None


def test_removing_a_loaded_story_cascades_in_the_same_session(session_factory, story_with_holder) -> None:
    with session_factory.begin() as s:
        story = Stories(s).get(story_with_holder.id)
        match, _ = add_match(s, story, add_page(s))
        Alerts(s).enqueue(match, payload={})
        assert len(story.matches) == 1 and len(match.alerts) == 2  # collections loaded
        assert Stories(s).remove(story.id)
    with session_factory() as s:
        assert (count(s, Story), count(s, Match), count(s, Alert)) == (0, 0, 0)


# --- concurrency ------------------------------------------------------------------------------------


def test_concurrent_workers_saving_the_same_page(session_factory, story_with_holder) -> None:
    """Two workers store the same page, match and alerts at once: one row each, no error."""
    workers = 2
    rounds = 5
    story_id = story_with_holder.id
    results: list[tuple[bool, bool, int]] = []
    errors: list[BaseException] = []
    lock = threading.Lock()

    def work(barrier: threading.Barrier, url: str) -> None:
        try:
            barrier.wait(timeout=30)
            with session_factory.begin() as s:
                page, changed = Pages(s).upsert(url=url, site="copy.example", http_status=200, content_hash="same")
                match, is_new = Matches(s).upsert(
                    story_id=story_id, page_id=page.id, kind="verbatim", confidence=1.0,
                    story_coverage=1.0, page_coverage=1.0, scores={}, evidence=[],
                )
                alerts = Alerts(s).enqueue(match, payload={"url": url})
            with lock:
                results.append((changed, is_new, len(alerts)))
        except BaseException as exc:  # reported to the main thread and asserted below
            with lock:
                errors.append(exc)

    for n in range(rounds):
        barrier = threading.Barrier(workers)
        url = f"https://copy.example/race/{n}"
        threads = [threading.Thread(target=work, args=(barrier, url), daemon=True) for _ in range(workers)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=60)
        assert not any(t.is_alive() for t in threads), "a worker hung"
    assert errors == []
    assert len(results) == workers * rounds
    # Exactly one worker per page saw it as new, and only that one created alerts.
    assert sorted(results) == sorted([(True, True, 2)] * rounds + [(False, False, 0)] * (workers - 1) * rounds)
    with session_factory() as s:
        assert count(s, Page) == rounds
        assert count(s, Match) == rounds
        assert count(s, Alert) == 2 * rounds
