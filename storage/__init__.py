"""copyhound storage: typed models, engines and sessions, migrations and repositories.

Import from here; the submodules are an implementation detail. This package must not
import Scrapy (the matcher and alert sender use it outside any crawl).
"""

from __future__ import annotations

import logging

from storage.engine import (
    DEFAULT_DB_ENV,
    NotFoundError,
    StorageError,
    current_revision,
    default_db_url,
    make_engine,
    normalise_db_url,
    session_factory,
    unit_of_work,
    upgrade,
)
from storage.models import (
    Alert,
    Base,
    CrawlRun,
    Destination,
    Match,
    Page,
    RightsHolder,
    Source,
    Story,
    utcnow,
)
from storage.repositories import (
    Alerts,
    CrawlRuns,
    Holders,
    Matches,
    Pages,
    Sources,
    Stories,
    text_hash,
)

logging.getLogger(__name__).addHandler(logging.NullHandler())

__all__ = [
    "DEFAULT_DB_ENV",
    "Alert",
    "Alerts",
    "Base",
    "CrawlRun",
    "CrawlRuns",
    "Destination",
    "Holders",
    "Match",
    "Matches",
    "NotFoundError",
    "Page",
    "Pages",
    "RightsHolder",
    "Source",
    "Sources",
    "Stories",
    "Story",
    "StorageError",
    "current_revision",
    "default_db_url",
    "make_engine",
    "normalise_db_url",
    "session_factory",
    "text_hash",
    "unit_of_work",
    "upgrade",
    "utcnow",
]
