"""`copyhound demo` end to end, as a user runs it: twice, in a fresh directory."""

from __future__ import annotations

import socket
import sqlite3
import subprocess
import sys
from pathlib import Path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def copyhound(cwd: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "crawler.cli", *args], cwd=cwd, capture_output=True, text=True, timeout=600,
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(Path(__file__).resolve().parent.parent)},
    )


def test_demo_finds_the_planted_copies_once(tmp_path: Path) -> None:
    port = str(free_port())
    first = copyhound(tmp_path, "demo", "--port", port)
    assert first.returncode == 0, first.stdout + first.stderr
    assert "planted derivatives found: 3 of 3; false alarms: 0" in first.stdout
    assert "3 new copies this run" in first.stdout
    db = tmp_path / "copyhound.db"
    assert db.is_file()
    conn = sqlite3.connect(db)
    kinds = sorted(r[0] for r in conn.execute("select kind from matches"))
    assert kinds == ["copy", "excerpt", "rewrite"]
    assert conn.execute("select count(*) from alerts where status = 'pending'").fetchone()[0] == 3
    conn.close()

    second = copyhound(tmp_path, "demo", "--port", port)
    assert second.returncode == 0, second.stdout + second.stderr
    assert "0 new copies this run; 3 in total" in second.stdout

    listing = copyhound(tmp_path, "matches", "--format", "csv")
    assert listing.returncode == 0
    assert len(listing.stdout.strip().splitlines()) == 1 + 3
