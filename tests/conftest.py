"""Shared fixtures. Outside CI, tests that need ../shared or PostgreSQL skip with a
reason; under CI=true their absence is a failure, so CI cannot pass by skipping."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared"
IN_CI = os.environ.get("CI", "").lower() == "true"


def skip_or_fail(reason: str) -> None:
    if IN_CI:
        pytest.fail(f"{reason} (required under CI=true)")
    pytest.skip(reason)


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    if not (SHARED / "corpus").is_dir():
        skip_or_fail(f"{SHARED} with corpus/ and seeds/ is not beside this checkout")
    return SHARED


@pytest.fixture(scope="session")
def corpus_dir(shared_dir: Path) -> Path:
    return shared_dir / "corpus"


# --- Databases: a real SQLite file and a real, freshly created PostgreSQL database ---

PG_ADMIN_URL = os.environ.get(
    "COPYHOUND_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)


def _pg_admin_engine():
    """AUTOCOMMIT: CREATE/DROP DATABASE cannot run inside a transaction."""
    from sqlalchemy import create_engine
    from sqlalchemy.pool import NullPool

    return create_engine(
        PG_ADMIN_URL,
        isolation_level="AUTOCOMMIT",
        poolclass=NullPool,
        connect_args={"connect_timeout": 5},
    )


@pytest.fixture(
    params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)],
)
def db_url(request: pytest.FixtureRequest, tmp_path: Path):
    """A URL to an empty database of its own: each test is isolated from every other."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'copyhound-test.db'}"
        return

    import uuid

    from sqlalchemy import exc, text
    from sqlalchemy.engine import make_url

    admin = _pg_admin_engine()
    name = f"copyhound_test_{uuid.uuid4().hex[:16]}"
    try:
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    except exc.OperationalError as err:
        admin.dispose()
        skip_or_fail(f"PostgreSQL not reachable at {PG_ADMIN_URL}: {err.orig}")
    try:
        yield make_url(PG_ADMIN_URL).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture
def db_engine(db_url: str):
    """The production engine (storage.engine.make_engine) on the test database, upgraded."""
    from storage.engine import make_engine, upgrade

    engine = make_engine(db_url)
    upgrade(engine)
    yield engine
    engine.dispose()


@pytest.fixture
def session_factory(db_engine):
    from storage.engine import session_factory as make_factory

    return make_factory(db_engine)
