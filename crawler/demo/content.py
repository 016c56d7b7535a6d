"""The demo web's content: site definitions, the articles in texts/, and the manifest.

Everything here is pure data loading, so the demo command and the tests can ask what
exists (the story, its derivatives, the independent reports) without starting a server.

Article files (texts/<site-key>/<name>.txt) have a header, a body and optional comments::

    title: ...            dek: ...            section: news
    author: ...           role: ...           published: 2025-03-12T06:15:00+00:00
    slug: ...             kind: story | copy | excerpt | rewrite | independent | unrelated
    ---
    Paragraphs separated by blank lines. "## " starts a subheading.
    {{story:2-3}} inserts paragraphs 2..3 (1-based) of the demo story verbatim, so the
    copy and the excerpt cannot drift from the story when it is edited.
    ===
    Commenter name | comment text

The manifest is the file headers: ``kind`` says what each page is, so a page cannot be
listed as a derivative without being one (the tests check the texts against it).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime, timezone
from functools import lru_cache
from importlib import resources

DERIVED = ("copy", "excerpt", "rewrite")
KINDS = ("story", "independent", "unrelated") + DERIVED
ORIGIN_KEY = "harbour-wire"

_DIRECTIVE = re.compile(r"^\{\{story:(\d+)(?:-(\d+))?\}\}$")


class DemoContentError(ValueError):
    """A text file in crawler/demo/texts/ is malformed; the message names the file."""


@dataclass(frozen=True, slots=True)
class SiteSpec:
    key: str
    name: str
    tagline: str
    sections: tuple[tuple[str, str], ...]  # (slug, label)
    url_style: str  # str.format pattern for article paths
    accent: str
    canonical: bool = True  # emit <link rel="canonical"> on articles
    feed_utm: bool = False  # feed links carry utm_* tracking parameters
    amp: tuple[str, ...] = ()  # slugs that also get an /amp/ variant
    founded: int = 1990
    town: str = "Marlow Haven"


SITES: tuple[SiteSpec, ...] = (
    SiteSpec(
        key="harbour-wire",
        name="Harbour Wire",
        tagline="Independent news from Marlow Haven and the Wessmoor coast",
        sections=(("news", "News"), ("business", "Business"), ("culture", "Culture")),
        url_style="/{section}/{yyyy}/{mm}/{dd}/{slug}/",
        accent="#0b4f6c",
        amp=("lifeboat-crew-marks-centenary-with-record-year", "tidal-lagoon-firm-lists-on-growth-market"),
        founded=2011,
    ),
    SiteSpec(
        key="northgate-chronicle",
        name="Northgate Chronicle",
        tagline="Serving Northgate and the northern parishes since 1887",
        sections=(("news", "News"), ("sport", "Sport"), ("weather", "Weather")),
        url_style="/{section}/{slug}-{id}.html",
        accent="#7a1f1f",
        canonical=False,
        founded=1887,
        town="Northgate",
    ),
    SiteSpec(
        key="valley-courier",
        name="Calder Valley Courier",
        tagline="The voice of the valley",
        sections=(("local", "Local"), ("business", "Business"), ("opinion", "Opinion")),
        url_style="/{section}/{slug}/",
        accent="#2f5d2f",
        founded=1952,
        town="Calder Bridge",
    ),
    SiteSpec(
        key="coastline-post",
        name="The Coastline Post",
        tagline="News, sport and life along the coast",
        sections=(("news", "News"), ("sport", "Sport"), ("lifestyle", "Lifestyle")),
        url_style="/articles/{yyyy}/{mm}/{slug}",
        accent="#1d3f8f",
        feed_utm=True,
        founded=2016,
        town="Saltmere",
    ),
    SiteSpec(
        key="metro-bulletin",
        name="Marlow Metro Bulletin",
        tagline="The city, every day",
        sections=(("city", "City"), ("politics", "Politics"), ("culture", "Culture")),
        url_style="/{section}/{yyyy}{mm}{dd}-{slug}.html",
        accent="#5b2a86",
        founded=1998,
    ),
    SiteSpec(
        key="riverside-gazette",
        name="Riverside Gazette",
        tagline="Local news for Aldbury and the Wessmoor riverside",
        sections=(("news", "News"), ("sport", "Sport"), ("weather", "Weather")),
        url_style="/{section}/{id}/{slug}",
        accent="#8a5a00",
        founded=1921,
        town="Aldbury",
    ),
)


@dataclass(frozen=True, slots=True)
class Comment:
    name: str
    text: str


@dataclass(frozen=True, slots=True)
class Article:
    site: str
    name: str  # file stem, stable id
    title: str
    dek: str
    section: str
    author: str
    role: str
    published: datetime
    updated: datetime
    slug: str
    kind: str
    path: str
    blocks: tuple[str, ...]  # paragraphs; "## " prefix marks a subheading
    comments: tuple[Comment, ...] = field(default=())
    comments_closed: bool = False

    @property
    def paragraphs(self) -> tuple[str, ...]:
        return tuple(b for b in self.blocks if not b.startswith("## "))

    @property
    def text(self) -> str:
        return "\n\n".join(self.paragraphs)


def _texts_root():
    return resources.files("crawler.demo").joinpath("texts")


def _parse_time(value: str, where: str) -> datetime:
    try:
        when = datetime.fromisoformat(value)
    except ValueError as exc:
        raise DemoContentError(f"{where}: bad timestamp {value!r}: {exc}") from None
    if when.tzinfo is None:
        raise DemoContentError(f"{where}: timestamp {value!r} needs a UTC offset")
    return when.astimezone(timezone.utc)


def _parse_file(site: SiteSpec, name: str, raw: str, index: int) -> dict:
    where = f"texts/{site.key}/{name}.txt"
    head, sep, rest = raw.partition("\n---\n")
    if not sep:
        raise DemoContentError(f"{where}: no '---' line between header and body")
    body, _, comment_part = rest.partition("\n===\n")
    meta: dict[str, str] = {}
    for line in head.splitlines():
        if not line.strip():
            continue
        key, colon, value = line.partition(":")
        if not colon:
            raise DemoContentError(f"{where}: header line without ':': {line!r}")
        meta[key.strip()] = value.strip()
    for required in ("title", "dek", "section", "author", "published", "slug"):
        if not meta.get(required):
            raise DemoContentError(f"{where}: header field {required!r} is missing")
    kind = meta.get("kind", "unrelated")
    if kind not in KINDS:
        raise DemoContentError(f"{where}: kind {kind!r} is not one of {KINDS}")
    sections = dict(site.sections)
    if meta["section"] not in sections:
        raise DemoContentError(f"{where}: section {meta['section']!r} is not one of {sorted(sections)}")
    comments = []
    closed = False
    for line in comment_part.splitlines():
        if not line.strip():
            continue
        if line.strip() == "closed":
            closed = True
            continue
        who, bar, text = line.partition("|")
        if not bar:
            raise DemoContentError(f"{where}: comment line without '|': {line!r}")
        comments.append(Comment(who.strip(), text.strip()))
    return {
        "meta": meta,
        "kind": kind,
        "blocks": [b.strip().replace("\n", " ") for b in body.strip().split("\n\n") if b.strip()],
        "comments": tuple(comments),
        "closed": closed,
        "where": where,
        "index": index,
    }


def _expand(blocks: list[str], story: tuple[str, ...], where: str) -> tuple[str, ...]:
    out: list[str] = []
    for block in blocks:
        m = _DIRECTIVE.match(block)
        if not m:
            if "{{" in block:
                raise DemoContentError(f"{where}: malformed directive in {block[:60]!r}")
            out.append(block)
            continue
        first = int(m.group(1))
        last = int(m.group(2) or first)
        if not 1 <= first <= last <= len(story):
            raise DemoContentError(f"{where}: {block} is outside the story's {len(story)} paragraphs")
        out.extend(story[first - 1 : last])
    return tuple(out)


def _article_path(site: SiteSpec, meta: dict[str, str], published: datetime, index: int) -> str:
    return site.url_style.format(
        section=meta["section"],
        slug=meta["slug"],
        yyyy=f"{published.year:04d}",
        mm=f"{published.month:02d}",
        dd=f"{published.day:02d}",
        id=48213 + index * 37,
    )


@lru_cache(maxsize=1)
def load_articles() -> dict[str, tuple[Article, ...]]:
    """All articles by site key, newest first. Cached: the files are package data."""
    root = _texts_root()
    parsed: dict[str, list[dict]] = {}
    for site in SITES:
        folder = root.joinpath(site.key)
        names = sorted(p.name for p in folder.iterdir() if p.name.endswith(".txt"))
        if not names:
            raise DemoContentError(f"texts/{site.key}/ has no articles")
        parsed[site.key] = [
            _parse_file(site, n[:-4], folder.joinpath(n).read_text(encoding="utf-8"), i)
            for i, n in enumerate(names)
        ]
    stories = [p for ps in parsed.values() for p in ps if p["kind"] == "story"]
    if len(stories) != 1 or stories[0] not in parsed[ORIGIN_KEY]:
        raise DemoContentError("exactly one article, on the origin site, must have kind: story")
    story_blocks = tuple(b for b in stories[0]["blocks"] if not b.startswith("## "))
    result: dict[str, tuple[Article, ...]] = {}
    seen_paths: set[str] = set()
    for site in SITES:
        articles = []
        for p in parsed[site.key]:
            meta = p["meta"]
            published = _parse_time(meta["published"], p["where"])
            updated = _parse_time(meta.get("updated", meta["published"]), p["where"])
            path = _article_path(site, meta, published, p["index"])
            if path in seen_paths:
                raise DemoContentError(f"{p['where']}: path {path} is used twice")
            seen_paths.add(path)
            articles.append(
                Article(
                    site=site.key,
                    name=p["where"].rsplit("/", 1)[-1][:-4],
                    title=meta["title"],
                    dek=meta["dek"],
                    section=meta["section"],
                    author=meta["author"],
                    role=meta.get("role", ""),
                    published=published,
                    updated=max(updated, published),
                    slug=meta["slug"],
                    kind=p["kind"],
                    path=path,
                    blocks=_expand(p["blocks"], story_blocks, p["where"]),
                    comments=p["comments"],
                    comments_closed=p["closed"],
                )
            )
        articles.sort(key=lambda a: (a.published, a.path), reverse=True)
        result[site.key] = tuple(articles)
    return result


def site_spec(key: str) -> SiteSpec:
    for site in SITES:
        if site.key == key:
            return site
    raise KeyError(key)


def story_article() -> Article:
    for article in load_articles()[ORIGIN_KEY]:
        if article.kind == "story":
            return article
    raise DemoContentError("the origin site has no story")  # load_articles checks this


def demo_story() -> tuple[str, str]:
    """The registered story as the rights holder would submit it: (title, body text)."""
    story = story_article()
    return story.title, story.text


def origin_path() -> str:
    """Path of the story on the origin site (the crawler skips it by URL)."""
    return story_article().path


def expected_derivatives() -> dict[str, str]:
    """Path of every derived page -> kind (copy/excerpt/rewrite). Paths are unique
    across sites; DemoWeb.expected() turns them into absolute URLs."""
    return {a.path: a.kind for arts in load_articles().values() for a in arts if a.kind in DERIVED}


def independent_reports() -> list[str]:
    """Paths of the independent reports of the story's event: must NOT be flagged."""
    return [a.path for arts in load_articles().values() for a in arts if a.kind == "independent"]
