"""bench/crawl.py runs end to end and reports what it promises (never how fast)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_quick_run_reports_both_crawls_and_the_breakdown() -> None:
    out = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "crawl.py"), "--quick", "--json"],
        capture_output=True, text=True, timeout=600, cwd=ROOT,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    res = json.loads(out.stdout)
    for key in ("bare_pages_per_s", "pipeline_pages_per_s", "ratio", "bare", "pipeline", "web", "stories"):
        assert key in res, key
    assert res["stories"] == 1000
    web_pages = res["web"]["article_pages"]
    assert res["web"]["mean_article_bytes"] > 40_000
    # Both crawls reached every article (plus the front and section pages).
    assert res["bare"]["pages"] >= web_pages
    assert res["pipeline"]["pages"] >= web_pages
    counts = res["pipeline"]["counts"]
    assert counts["pages_stored"] == res["pipeline"]["pages"]
    assert counts["pages_matched"] == counts["pages_stored"]
    # The planted copy of the crawled story was found by the match phase.
    assert res["matches_new"] >= 1
    assert res["bare_pages_per_s"] > 0 and res["pipeline_pages_per_s"] > 0
    assert res["ratio"] == round(res["pipeline_pages_per_s"] / res["bare_pages_per_s"], 3)
    breakdown = res["pipeline"]["breakdown"]
    for key in ("extract_cpu_s", "crawl_phase_s", "match_phase_s", "store_s_estimate", "match_s_estimate"):
        assert key in breakdown, key
    assert breakdown["extract_cpu_s"] > 0
