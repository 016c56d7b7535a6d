"""The review report: a story, its copies side by side, their history and chains.

`write_report(factory, story_id, path)` is the one call the CLI makes; loading
(`data`), passage handling (`passages`), the chart (`chart`) and the template
(`render`) are separate so each can be tested with plain values.
"""

from __future__ import annotations

import os
from pathlib import Path

from sqlalchemy.orm import sessionmaker

from crawler.reporting.data import ReportData, load_report
from crawler.reporting.render import render_report

__all__ = ["ReportData", "build_report", "load_report", "render_report", "write_report"]


def build_report(factory: sessionmaker, story_id: int) -> tuple[str, ReportData]:
    """(html, data) for a story; reads in one short transaction."""
    with factory.begin() as session:
        data = load_report(session, story_id)
    return render_report(data), data


def write_report(factory: sessionmaker, story_id: int, path: Path) -> ReportData:
    """Write the report to `path` atomically: a half-written report never replaces a good one."""
    html, data = build_report(factory, story_id)
    path = Path(path)
    if path.parent and not path.parent.is_dir():
        raise OSError(f"{path.parent}: no such directory for the report (-o)")
    # A temporary name beside the target (same file system, so the rename is atomic);
    # opened normally so the report gets the user's usual file permissions.
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        tmp.write_text(html, encoding="utf-8")
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return data
