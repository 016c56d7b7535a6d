"""The report as one self-contained HTML file: Jinja2 with autoescape, inline CSS and SVG.

Scraped titles, URLs and texts are hostile: every value is escaped by the template
engine, links are made only from http(s) URLs, and a Content-Security-Policy meta tag
forbids scripts and every external load, so even a mistake in escaping could not run
code or call out. The report uses no script at all.
"""

from __future__ import annotations

from datetime import datetime
from functools import cache

import jinja2

from crawler.reporting.data import ReportData


def _when(value: datetime | None) -> str:
    return value.strftime("%Y-%m-%d %H:%M UTC") if value else "unknown"


def _pct(value: float | None) -> str:
    return f"{value:.0%}" if isinstance(value, int | float) else "-"


@cache
def environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("crawler.reporting", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["when"] = _when
    env.filters["pct"] = _pct
    return env


def render_report(data: ReportData) -> str:
    return environment().get_template("report.html").render(r=data)
