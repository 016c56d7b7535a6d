"""HTML, RSS, sitemap and robots.txt for one demo site. Pure functions of the content.

The chrome is deliberately noisy (navigation, teasers of other stories, comments, cookie
banner, newsletter box, footer), because the pages the crawler meets are like that and
the text extractor has to cope with it. Every text inserted is escaped.
"""

from __future__ import annotations

import hashlib
import json
from datetime import datetime
from email.utils import format_datetime
from html import escape
from xml.sax.saxutils import escape as xml_escape

from .content import Article, Comment, SiteSpec

GENERIC_COMMENTS = (
    Comment("Pat_in_Saltmere", "Good to see proper local reporting on this. Keep it up."),
    Comment("J. Whitlock", "Not sure the figures add up, but thanks for covering it."),
    Comment("harbourwatcher", "Same old story round here: decide first, consult afterwards."),
    Comment("Mags", "My dad would have had plenty to say about this one!"),
    Comment("OldSalt72", "Anyone know if the number 14 bus is still diverted this week?"),
    Comment("Rhian D", "Lovely piece. Shared it with the family group chat."),
    Comment("no_more_potholes", "Meanwhile Quarry Lane still looks like the surface of the moon."),
    Comment("T. Abara", "Would be good to hear from the people actually affected next time."),
    Comment("Callum R.", "Been saying this for years. Nobody listens until it's too late."),
    Comment("Wendy from Aldbury", "Fascinating, I had no idea. Thank you."),
    Comment("sceptic_steve", "I'll believe it when I see it."),
    Comment("Ffion", "The photos on the print edition were great, any chance of putting them online?"),
)

COOKIE_TEXT = (
    "We and our 143 partners use cookies and similar technologies to store and access "
    "information on your device, to personalise content and ads, and to analyse our traffic. "
    "You can change your choices at any time by clicking Manage preferences."
)


def _h(text: str) -> str:
    return escape(text, quote=True)


def _date_label(when: datetime) -> str:
    return f"{when.day} {when:%B %Y}, {when:%H:%M} GMT"


def _ago(hours: int) -> str:
    return "1 hour ago" if hours == 1 else f"{hours} hours ago"


def http_date(when: datetime) -> str:
    return format_datetime(when, usegmt=True)


class SiteRenderer:
    """Renders every resource of one site for one base URL (known only once bound)."""

    def __init__(self, spec: SiteSpec, articles: tuple[Article, ...], base_url: str, others: list[tuple[str, str]]):
        self.spec = spec
        self.articles = articles  # newest first
        self.base = base_url.rstrip("/")
        self.others = others  # (name, base_url) of sister sites for the footer
        self.sections = dict(spec.sections)

    # -- helpers ---------------------------------------------------------------------
    def url(self, path: str) -> str:
        return self.base + path

    def amp_path(self, article: Article) -> str | None:
        return "/amp" + article.path if article.slug in self.spec.amp else None

    def _in_section(self, section: str) -> list[Article]:
        return [a for a in self.articles if a.section == section]

    def _teaser(self, a: Article, with_dek: bool = True) -> str:
        dek = f'<p class="dek">{_h(a.dek)}</p>' if with_dek else ""
        return (
            f'<li class="teaser"><a href="{_h(a.path)}">{_h(a.title)}</a>'
            f'<span class="kicker">{_h(self.sections[a.section])}</span>{dek}</li>'
        )

    def _head(self, title: str, extra: str = "") -> str:
        s = self.spec
        return f"""<!DOCTYPE html>
<html lang="en-GB">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{_h(title)}</title>
<link rel="alternate" type="application/rss+xml" title="{_h(s.name)}" href="{_h(self.url('/feed.xml'))}">
<style>body{{font-family:Georgia,serif;margin:0;color:#222}} header.masthead{{background:{s.accent};color:#fff;padding:1em}}
nav a{{color:#fff;margin-right:1em}} main{{display:flex;gap:2em;padding:1em}} article{{flex:3}} aside{{flex:1;font-size:.9em}}
.cookie-banner{{position:fixed;bottom:0;background:#eee;padding:1em;width:100%}}</style>
{extra}</head>
<body>
<div class="cookie-banner" id="cookie-consent" role="dialog" aria-label="Cookie consent">
<p>{_h(COOKIE_TEXT)}</p>
<button type="button">Accept all</button> <button type="button">Reject non-essential</button> <a href="/privacy/">Manage preferences</a>
</div>
<div class="topbar"><a href="/">Home</a> | <a href="/about/">About us</a> | <a href="/contact/">Contact</a> | Subscribe from &pound;1 a week</div>
<header class="masthead">
<a class="logo" href="/">{_h(s.name)}</a>
<p class="tagline">{_h(s.tagline)}</p>
<nav aria-label="Sections">
<a href="/">Home</a>{''.join(f'<a href="/{_h(slug)}/">{_h(label)}</a>' for slug, label in s.sections)}
</nav>
</header>
"""

    def _sidebar(self, exclude: str | None) -> str:
        pool = [a for a in self.articles if a.path != exclude]
        most_read = pool[1:6] if len(pool) > 6 else pool[:5]
        latest = pool[:4]
        return f"""<aside class="sidebar">
<section class="most-read"><h2>Most read</h2><ol>{''.join(self._teaser(a, False) for a in most_read)}</ol></section>
<div class="ad-slot" aria-hidden="true">Advertisement</div>
<section class="newsletter"><h2>Get the {_h(self.spec.name)} morning briefing</h2>
<p>The day's top stories from {_h(self.spec.town)} and beyond, in your inbox before 7am. Free, and you can unsubscribe at any time.</p>
<form action="/newsletter/" method="post"><input type="email" name="email" placeholder="Your email address"><button>Sign up</button></form></section>
<section class="latest"><h2>Latest</h2><ul>{''.join(self._teaser(a, False) for a in latest)}</ul></section>
</aside>
"""

    def _footer(self) -> str:
        s = self.spec
        sisters = "".join(f'<li><a href="{_h(base)}">{_h(name)}</a></li>' for name, base in self.others)
        return f"""<footer class="site-footer">
<nav aria-label="Footer"><a href="/about/">About {_h(s.name)}</a> <a href="/contact/">Contact us</a>
<a href="/privacy/">Privacy and cookies</a> <a href="/private/staff/">Staff login</a> <a href="/feed.xml">RSS</a></nav>
<section class="network"><h2>Elsewhere on the coast</h2><ul>{sisters}</ul></section>
<p class="legal">&copy; {_h(s.name)} {s.founded}&ndash;2025. All rights reserved. Registered in England and Wales.
{_h(s.name)} is regulated by the Independent Press Standards Organisation.</p>
</footer>
</body>
</html>
"""

    # -- pages -----------------------------------------------------------------------
    def home(self) -> str:
        lead, rest = self.articles[0], self.articles[1:]
        blocks = []
        for slug, label in self.spec.sections:
            items = [a for a in rest if a.section == slug][:4]
            if items:
                blocks.append(
                    f'<section class="section-block"><h2><a href="/{_h(slug)}/">{_h(label)}</a></h2>'
                    f'<ul>{"".join(self._teaser(a) for a in items)}</ul></section>'
                )
        return (
            self._head(f"{self.spec.name} | {self.spec.tagline}")
            + f"""<main>
<div class="front">
<section class="lead-story"><h1><a href="{_h(lead.path)}">{_h(lead.title)}</a></h1><p class="dek">{_h(lead.dek)}</p>
<p class="byline">By {_h(lead.author)}</p></section>
{''.join(blocks)}
</div>
{self._sidebar(lead.path)}
</main>
"""
            + self._footer()
        )

    def section(self, slug: str) -> str:
        label = self.sections[slug]
        items = self._in_section(slug)
        return (
            self._head(f"{label} | {self.spec.name}")
            + f"""<main>
<div class="section-page"><h1>{_h(label)}</h1>
<ul class="river">{''.join(self._teaser(a) for a in items)}</ul>
<p class="pagination">Page 1 of 1</p></div>
{self._sidebar(None)}
</main>
"""
            + self._footer()
        )

    def _json_ld(self, a: Article) -> str:
        data = {
            "@context": "https://schema.org",
            "@type": "NewsArticle",
            "headline": a.title,
            "description": a.dek,
            "datePublished": a.published.isoformat(),
            "dateModified": a.updated.isoformat(),
            "author": {"@type": "Person", "name": a.author},
            "publisher": {"@type": "Organization", "name": self.spec.name},
            "mainEntityOfPage": self.url(a.path),
        }
        text = json.dumps(data, ensure_ascii=False).replace("</", "<\\/")
        return f'<script type="application/ld+json">{text}</script>'

    def _comments(self, a: Article) -> str:
        if a.comments_closed:
            return '<section class="comments" id="comments"><h2>Comments</h2><p>Comments are closed on this article.</p></section>'
        comments = a.comments
        if not comments:
            digest = int(hashlib.sha1(a.path.encode()).hexdigest(), 16)
            count = 2 + digest % 3
            start = digest % len(GENERIC_COMMENTS)
            comments = tuple(GENERIC_COMMENTS[(start + 5 * i) % len(GENERIC_COMMENTS)] for i in range(count))
        items = "".join(
            f'<li class="comment"><p class="comment-author">{_h(c.name)}</p><p class="comment-body">{_h(c.text)}</p>'
            f'<p class="comment-meta">{_ago(1 + i * 3)} &middot; Reply &middot; Report</p></li>'
            for i, c in enumerate(comments)
        )
        return (
            f'<section class="comments" id="comments"><h2>{len(comments)} comments</h2>'
            f'<p class="comments-policy">Comments are moderated. Please keep it civil.</p><ol>{items}</ol></section>'
        )

    def _body(self, a: Article) -> str:
        out = []
        for block in a.blocks:
            if block.startswith("## "):
                out.append(f"<h2>{_h(block[3:])}</h2>")
            else:
                out.append(f"<p>{_h(block)}</p>")
        return "\n".join(out)

    def article(self, a: Article) -> str:
        extra = [
            f'<meta name="description" content="{_h(a.dek)}">',
            f'<meta property="og:title" content="{_h(a.title)}">',
            '<meta property="og:type" content="article">',
            f'<meta property="article:published_time" content="{_h(a.published.isoformat())}">',
            f'<meta name="author" content="{_h(a.author)}">',
            self._json_ld(a),
        ]
        if self.spec.canonical:
            extra.append(f'<link rel="canonical" href="{_h(self.url(a.path))}">')
        amp = self.amp_path(a)
        if amp:
            extra.append(f'<link rel="amphtml" href="{_h(self.url(amp))}">')
        related = [x for x in self._in_section(a.section) if x.path != a.path][:3]
        label = self.sections[a.section]
        role = f", {a.role}" if a.role else ""
        updated = (
            f' &middot; Updated <time datetime="{_h(a.updated.isoformat())}">{_h(_date_label(a.updated))}</time>'
            if a.updated > a.published
            else ""
        )
        return (
            self._head(f"{a.title} | {self.spec.name}", "\n".join(extra) + "\n")
            + f"""<main>
<article class="story">
<p class="breadcrumb"><a href="/">Home</a> &rsaquo; <a href="/{_h(a.section)}/">{_h(label)}</a></p>
<header><h1>{_h(a.title)}</h1><p class="standfirst">{_h(a.dek)}</p>
<p class="byline">By <span class="author">{_h(a.author)}</span>{_h(role)} &middot;
<time datetime="{_h(a.published.isoformat())}">{_h(_date_label(a.published))}</time>{updated}</p>
<p class="share">Share: <a href="#">Facebook</a> <a href="#">X</a> <a href="#">WhatsApp</a> <a href="#">Email</a></p>
</header>
<div class="article-body">
{self._body(a)}
</div>
<p class="corrections">Spotted an error? Email corrections@{_h(self.spec.key)}.example and we will put it right.</p>
<section class="related"><h2>More from {_h(label)}</h2><ul>{''.join(self._teaser(x) for x in related)}</ul></section>
{self._comments(a)}
</article>
{self._sidebar(a.path)}
</main>
"""
            + self._footer()
        )

    def amp(self, a: Article) -> str:
        return f"""<!doctype html>
<html amp lang="en-GB">
<head>
<meta charset="utf-8">
<title>{_h(a.title)} | {_h(self.spec.name)}</title>
<link rel="canonical" href="{_h(self.url(a.path))}">
<meta name="viewport" content="width=device-width">
<script async src="https://cdn.ampproject.org/v0.js"></script>
<style amp-boilerplate>body{{visibility:visible}}</style>
</head>
<body>
<header><a href="/">{_h(self.spec.name)}</a></header>
<article><h1>{_h(a.title)}</h1><p class="standfirst">{_h(a.dek)}</p>
<p class="byline">By {_h(a.author)} &middot; {_h(_date_label(a.published))}</p>
{self._body(a)}
</article>
<footer><a href="{_h(a.path)}">View full version</a></footer>
</body>
</html>
"""

    def static_page(self, kind: str) -> str:
        s = self.spec
        texts = {
            "about": (
                f"About {s.name}",
                [
                    f"{s.name} has reported on {s.town} and the surrounding area since {s.founded}. "
                    "Our journalists live and work in the communities they cover.",
                    "We are funded by our readers and by advertising. Our editorial decisions are made "
                    "independently of our commercial team.",
                ],
            ),
            "contact": (
                "Contact us",
                [
                    f"News desk: newsdesk@{s.key}.example. Advertising: ads@{s.key}.example.",
                    "If you have a story, we want to hear from you. We protect our sources.",
                ],
            ),
            "privacy": (
                "Privacy and cookies",
                [
                    "This notice explains what personal data we collect when you visit our website, "
                    "why we collect it and how long we keep it.",
                    COOKIE_TEXT,
                ],
            ),
            "staff": ("Staff login", ["This area is for staff only. Please sign in with your newsroom account."]),
        }
        title, paras = texts[kind]
        body = "".join(f"<p>{_h(p)}</p>" for p in paras)
        return (
            self._head(f"{title} | {s.name}")
            + f'<main><div class="page"><h1>{_h(title)}</h1>{body}</div></main>\n'
            + self._footer()
        )

    def not_found(self) -> str:
        return (
            self._head(f"Page not found | {self.spec.name}")
            + '<main><div class="page"><h1>Page not found</h1><p>Sorry, we could not find that page. '
            'It may have been moved or deleted. <a href="/">Return to the homepage</a>.</p></div></main>\n'
            + self._footer()
        )

    # -- machine-readable ---------------------------------------------------------------
    def feed_link(self, a: Article) -> str:
        url = self.url(a.path)
        if self.spec.feed_utm:
            url += "?utm_source=rss&utm_medium=feed&utm_campaign=" + a.section
        return url

    def feed(self) -> str:
        s = self.spec
        items = []
        for a in self.articles[:20]:
            items.append(
                "<item>"
                f"<title>{xml_escape(a.title)}</title>"
                f"<link>{xml_escape(self.feed_link(a))}</link>"
                f'<guid isPermaLink="true">{xml_escape(self.url(a.path))}</guid>'
                f"<pubDate>{http_date(a.published)}</pubDate>"
                f"<dc:creator>{xml_escape(a.author)}</dc:creator>"
                f"<category>{xml_escape(self.sections[a.section])}</category>"
                f"<description>{xml_escape(a.dek)}</description>"
                "</item>"
            )
        return (
            '<?xml version="1.0" encoding="UTF-8"?>\n'
            '<rss version="2.0" xmlns:dc="http://purl.org/dc/elements/1.1/" xmlns:atom="http://www.w3.org/2005/Atom">\n'
            "<channel>"
            f"<title>{xml_escape(s.name)}</title>"
            f"<link>{xml_escape(self.url('/'))}</link>"
            f'<atom:link href="{xml_escape(self.url("/feed.xml"))}" rel="self" type="application/rss+xml"/>'
            f"<description>{xml_escape(s.tagline)}</description>"
            "<language>en-gb</language>"
            f"<lastBuildDate>{http_date(self.articles[0].updated)}</lastBuildDate>\n"
            + "\n".join(items)
            + "\n</channel>\n</rss>\n"
        )

    def sitemap(self) -> str:
        newest = max(a.updated for a in self.articles)
        entries = [(self.url("/"), newest, "hourly")]
        for slug, _ in self.spec.sections:
            items = self._in_section(slug)
            if items:
                entries.append((self.url(f"/{slug}/"), max(a.updated for a in items), "hourly"))
        entries += [(self.url(a.path), a.updated, "weekly") for a in self.articles]
        body = "".join(
            f"<url><loc>{xml_escape(loc)}</loc><lastmod>{when.isoformat().replace('+00:00', 'Z')}</lastmod>"
            f"<changefreq>{freq}</changefreq></url>\n"
            for loc, when, freq in entries
        )
        return (
            '<?xml version="1.0" encoding="UTF-8"?>\n'
            '<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">\n' + body + "</urlset>\n"
        )

    def robots(self) -> str:
        return (
            "# robots.txt for " + self.spec.name + "\n"
            "User-agent: *\n"
            "Disallow: /private/\n"
            "Disallow: /newsletter/\n"
            "\n"
            "User-agent: GPTBot\n"
            "Disallow: /\n"
            "\n"
            f"Sitemap: {self.url('/sitemap.xml')}\n"
        )
