"""The summary chart's geometry: copies by kind over time, and by site over time.

Pure numbers and labels; the template draws them as inline SVG (escaped like any other
value), so the report needs no script and no external asset. Two panels share one time
axis: stacked bars of new copies per period, coloured by kind, and one lane per site
with a dot for each copy at the time it was first seen.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

KIND_COLOURS = {
    "copy": "#c0392b",
    "excerpt": "#d68910",
    "rewrite": "#2471a3",
    "spun": "#7d3c98",
    "translation": "#138d75",
}
OTHER_COLOUR = "#7f8c8d"
KIND_ORDER = ("copy", "excerpt", "rewrite", "spun", "translation")

WIDTH = 640
LEFT = 150  # room for site names
RIGHT = 16
BAR_TOP = 14
BAR_HEIGHT = 90
AXIS_GAP = 30
LANE_HEIGHT = 20
MAX_LANES = 10
MAX_BUCKETS = 24
MAX_BAR_WIDTH = 40
_STEPS = (
    (timedelta(hours=1), "%m-%d %H:00"),
    (timedelta(hours=6), "%m-%d %H:00"),
    (timedelta(days=1), "%Y-%m-%d"),
    (timedelta(days=7), "%Y-%m-%d"),
    (timedelta(days=30), "%Y-%m"),
    (timedelta(days=365), "%Y"),
)


def colour(kind: str) -> str:
    return KIND_COLOURS.get(kind, OTHER_COLOUR)


@dataclass(frozen=True, slots=True)
class Rect:
    x: float
    y: float
    w: float
    h: float
    colour: str
    title: str


@dataclass(frozen=True, slots=True)
class Label:
    x: float
    y: float
    text: str
    anchor: str = "middle"


@dataclass(frozen=True, slots=True)
class Dot:
    cx: float
    cy: float
    colour: str
    title: str


@dataclass(frozen=True, slots=True)
class Chart:
    width: int
    height: int
    bars: tuple[Rect, ...]
    dots: tuple[Dot, ...]
    labels: tuple[Label, ...]  # axis and lane labels
    lines: tuple[tuple[float, float, float, float], ...]  # x1, y1, x2, y2
    legend: tuple[tuple[str, str, int], ...]  # kind, colour, count
    empty: bool


def _bucket_size(first: datetime, last: datetime) -> tuple[timedelta, str]:
    span = last - first
    for step, fmt in _STEPS:
        if span / step < MAX_BUCKETS:
            return step, fmt
    return _STEPS[-1]


def _floor(when: datetime, step: timedelta) -> datetime:
    epoch = datetime(1970, 1, 1, tzinfo=UTC)
    return epoch + ((when - epoch) // step) * step


def build_chart(copies: Sequence[tuple[datetime, str, str]]) -> Chart:
    """`copies` are (first_seen, kind, site) of each copy to count."""
    if not copies:
        return Chart(WIDTH, 40, (), (), (Label(WIDTH / 2, 24, "no copies yet"),), (), (), True)
    times = [t for t, _, _ in copies]
    step, fmt = _bucket_size(min(times), max(times))
    start = _floor(min(times), step)
    n_buckets = int((max(times) - start) // step) + 1
    plot_w = WIDTH - LEFT - RIGHT
    slot = plot_w / n_buckets

    per_bucket: dict[int, Counter[str]] = {}
    for when, kind, _ in copies:
        per_bucket.setdefault(int((when - start) // step), Counter())[kind] += 1
    tallest = max(sum(c.values()) for c in per_bucket.values())
    unit = BAR_HEIGHT / tallest
    bars: list[Rect] = []
    kinds = sorted({k for _, k, _ in copies}, key=lambda k: (KIND_ORDER.index(k) if k in KIND_ORDER else 99, k))
    for b, counter in sorted(per_bucket.items()):
        y = BAR_TOP + BAR_HEIGHT
        label = (start + b * step).strftime(fmt)
        for kind in kinds:
            n = counter.get(kind, 0)
            if not n:
                continue
            y -= n * unit
            width = min(slot * 0.7, MAX_BAR_WIDTH)
            bars.append(Rect(LEFT + (b + 0.5) * slot - width / 2, y, width, n * unit, colour(kind), f"{label}: {n} {kind}"))
    base = BAR_TOP + BAR_HEIGHT
    lines = [(LEFT, base, WIDTH - RIGHT, base)]
    labels = [Label(LEFT - 6, BAR_TOP + 8, f"{tallest} new", "end"), Label(LEFT - 6, base, "0", "end")]
    every = max(1, n_buckets // 6)
    for b in range(0, n_buckets, every):
        labels.append(Label(LEFT + b * slot + slot / 2, base + 14, (start + b * step).strftime(fmt)))

    sites = Counter(site for _, _, site in copies)
    lane_sites = [s for s, _ in sites.most_common(MAX_LANES)]
    if len(sites) > MAX_LANES:
        lane_sites[-1] = "other sites"
    top = base + AXIS_GAP
    dots: list[Dot] = []
    lane_of = {s: i for i, s in enumerate(lane_sites)}
    last_x: dict[int, float] = {}
    for when, kind, site in sorted(copies):
        lane = lane_of.get(site, len(lane_sites) - 1)
        cy = top + lane * LANE_HEIGHT + LANE_HEIGHT / 2
        # Copies seen at about the same time on one site sit side by side, not on top
        # of each other.
        bucket = int((when - start) // step)
        cx = max(LEFT + (bucket + 0.5) * slot, last_x.get(lane, 0.0) + 9)
        last_x[lane] = cx
        dots.append(Dot(min(cx, WIDTH - RIGHT - 4), cy, colour(kind), f"{site}: {kind}, first seen {when:%Y-%m-%d %H:%M} UTC"))
    for i, site in enumerate(lane_sites):
        y = top + i * LANE_HEIGHT
        lines.append((LEFT, y + LANE_HEIGHT, WIDTH - RIGHT, y + LANE_HEIGHT))
        shown = site if len(site) <= 22 else site[:21] + "…"
        count = sites[site] if site in sites else sum(n for s, n in sites.items() if s not in lane_of)
        labels.append(Label(LEFT - 6, y + LANE_HEIGHT / 2 + 4, f"{shown} ({count})", "end"))
    height = int(top + len(lane_sites) * LANE_HEIGHT + 8)
    legend = tuple((k, colour(k), sum(1 for _, kk, _ in copies if kk == k)) for k in kinds)
    return Chart(WIDTH, height, tuple(bars), tuple(dots), tuple(labels), tuple(lines), legend, False)
