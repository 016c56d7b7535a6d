"""The demo web over real HTTP on loopback: sites, feeds, sitemaps, robots, articles, and
the manifest of derivatives checked against what the pages actually contain."""

from __future__ import annotations

import re
import socket
import urllib.error
import urllib.request
import urllib.robotparser
import xml.etree.ElementTree as ET
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from email.utils import parsedate_to_datetime
from html import unescape
from html.parser import HTMLParser
from urllib.parse import urldefrag, urljoin, urlsplit

import pytest

from crawler.demo import DemoWeb, DemoWebError, demo_story, expected_derivatives
from crawler.demo.content import DemoContentError, SITES, _parse_file, load_articles, story_article

TIMEOUT = 5
RSS_DC = "{http://purl.org/dc/elements/1.1/}"
SM = "{http://www.sitemaps.org/schemas/sitemap/0.9}"
PUBLIC_STATEMENT = (
    "The Eastquay site no longer meets the safety standards our workers and visitors deserve, "
    "and this decision secures its future for the next generation."
)
EXCLUSIVE = ("Halden & Roe", "Malcolm Tierney", "£1.8 million", "serviceable for at least 25 years")


def fetch(url: str, *, method: str = "GET", headers: dict[str, str] | None = None):
    req = urllib.request.Request(url, method=method, headers=headers or {})
    with urllib.request.urlopen(req, timeout=TIMEOUT) as resp:
        return resp.status, resp.headers, resp.read(), resp.url


def page_text(url: str) -> str:
    _, _, body, _ = fetch(url)
    return unescape(body.decode("utf-8"))


class _Links(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.hrefs: list[str] = []
        self.canonical: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag == "a" and a.get("href"):
            self.hrefs.append(a["href"] or "")
        if tag == "link" and a.get("rel") == "canonical":
            self.canonical = a.get("href")


def links_of(html: str) -> _Links:
    p = _Links()
    p.feed(html)
    return p


def sentences_outside_quotes(text: str, min_words: int = 8) -> list[str]:
    """The story's own narrative sentences: quotes removed, long enough to be distinctive."""
    unquoted = re.sub(r'"[^"]*"', "|", text)
    parts = re.split(r"(?<=[.!?])\s+|\|", unquoted)
    return [s.strip(" ,:;") for s in parts if len(s.split()) >= min_words]


@pytest.fixture(scope="module")
def web():
    with DemoWeb() as w:
        yield w


def test_sites_are_separate_loopback_domains_on_one_port(web: DemoWeb) -> None:
    assert 5 <= len(web.sites) <= 6
    assert len({s.host for s in web.sites}) == len(web.sites)
    assert len({s.port for s in web.sites}) == 1
    assert all(s.host.startswith("127.") and s.host != "127.0.0.1" for s in web.sites)
    assert web.origin.name == "Harbour Wire"
    assert web.story_url.startswith(web.origin.base_url)
    assert web.start_urls() == [s.base_url for s in web.sites]
    assert (web.story_title, web.story_text) == demo_story()


def test_homepage_has_chrome_and_links_that_resolve(web: DemoWeb) -> None:
    for site in web.sites:
        status, headers, body, _ = fetch(site.base_url)
        assert status == 200
        assert headers["Content-Type"] == "text/html; charset=utf-8"
        html = body.decode("utf-8")
        assert site.name in unescape(html)
        assert 'id="cookie-consent"' in html and "<footer" in html and "<nav" in html
        article_paths = {a.path for a in load_articles()[site.key]}
        linked = {urlsplit(urljoin(site.base_url, h)).path for h in links_of(html).hrefs}
        assert len(linked & article_paths) >= 5, site.key


def test_feeds_are_rss2_with_dated_items_that_resolve(web: DemoWeb) -> None:
    for site, feed_url in zip(web.sites, web.feed_urls()):
        status, headers, body, _ = fetch(feed_url)
        assert headers["Content-Type"].startswith("application/rss+xml")
        root = ET.fromstring(body)
        assert root.tag == "rss" and root.get("version") == "2.0"
        channel = root.find("channel")
        assert channel is not None and channel.findtext("title") == site.name
        items = channel.findall("item")
        assert len(items) == len(load_articles()[site.key])
        for item in items:
            title = item.findtext("title") or ""
            published = parsedate_to_datetime(item.findtext("pubDate") or "")
            assert published.tzinfo is not None
            assert item.findtext(f"{RSS_DC}creator")
            link = item.findtext("link") or ""
            assert urlsplit(link).netloc == site.netloc
            status, _, page, _ = fetch(link)
            assert status == 200 and f"<h1>{title}</h1>" in unescape(page.decode("utf-8"))


def test_sitemaps_list_every_article_with_lastmod(web: DemoWeb) -> None:
    for site, sitemap_url in zip(web.sites, web.sitemap_urls()):
        status, headers, body, _ = fetch(sitemap_url)
        assert headers["Content-Type"] == "application/xml; charset=utf-8"
        urls = ET.fromstring(body).findall(f"{SM}url")
        locs = []
        for url in urls:
            loc = url.findtext(f"{SM}loc") or ""
            lastmod = datetime.fromisoformat((url.findtext(f"{SM}lastmod") or "").replace("Z", "+00:00"))
            assert lastmod.tzinfo is not None
            assert urlsplit(loc).netloc == site.netloc
            locs.append(loc)
        for a in load_articles()[site.key]:
            assert site.url(a.path) in locs
        for loc in locs:
            assert fetch(loc)[0] == 200


def test_robots_disallows_private_and_names_the_sitemap(web: DemoWeb) -> None:
    for site in web.sites:
        _, headers, body, _ = fetch(site.url("/robots.txt"))
        assert headers["Content-Type"] == "text/plain; charset=utf-8"
        rp = urllib.robotparser.RobotFileParser()
        rp.parse(body.decode("utf-8").splitlines())
        assert not rp.can_fetch("copyhound", site.url("/private/staff/"))
        assert rp.can_fetch("copyhound", site.url(load_articles()[site.key][0].path))
        assert rp.site_maps() == [site.url("/sitemap.xml")]


def test_article_page_headers_chrome_and_conditional_get(web: DemoWeb) -> None:
    status, headers, body, _ = fetch(web.story_url)
    html = body.decode("utf-8")
    text = unescape(html)
    assert status == 200 and headers["Content-Type"] == "text/html; charset=utf-8"
    assert parsedate_to_datetime(headers["Last-Modified"]) == story_article().updated
    assert links_of(html).canonical == web.story_url
    assert web.story_title in text and "Elena Marsh" in text
    for paragraph in web.story_text.split("\n\n"):
        assert paragraph in text
    for marker in ('class="comments"', 'class="related"', 'class="sidebar"', 'id="cookie-consent"', "application/ld+json"):
        assert marker in html
    assert "Harbour_pilot_retd" in text  # user comments are on the page, outside the story

    with pytest.raises(urllib.error.HTTPError) as not_modified:
        fetch(web.story_url, headers={"If-None-Match": headers["ETag"]})
    not_modified.value.close()
    assert not_modified.value.code == 304
    _, head_headers, head_body, _ = fetch(web.story_url, method="HEAD")
    assert head_body == b"" and head_headers["ETag"] == headers["ETag"]


def test_amp_variant_points_back_to_its_canonical(web: DemoWeb) -> None:
    site = web.origin
    amp_articles = [a for a in load_articles()[site.key] if a.slug in site.spec.amp]
    assert amp_articles and all(a.kind == "unrelated" for a in amp_articles)
    article = amp_articles[0]
    assert f'rel="amphtml" href="{site.url("/amp" + article.path)}"' in page_text(site.url(article.path))
    amp_html = page_text(site.url("/amp" + article.path))
    assert "<html amp" in amp_html and links_of(amp_html).canonical == site.url(article.path)


def test_unknown_path_is_404_and_missing_slash_redirects(web: DemoWeb) -> None:
    site = web.sites[1]
    with pytest.raises(urllib.error.HTTPError) as missing:
        fetch(site.url("/no/such/page.html"))
    assert missing.value.code == 404
    assert missing.value.headers["Content-Type"] == "text/html; charset=utf-8"
    with missing.value:
        assert "Page not found" in missing.value.read().decode("utf-8")
    status, _, _, final_url = fetch(site.url("/sport"))
    assert status == 200 and final_url == site.url("/sport/")


def test_query_strings_serve_the_same_page(web: DemoWeb) -> None:
    url = next(iter(web.expected()))
    assert fetch(url + "?utm_source=rss&utm_medium=feed")[2] == fetch(url)[2]


def test_expected_derivatives_are_reachable_and_contain_the_story(web: DemoWeb) -> None:
    expected = web.expected()
    assert sorted(expected.values()) == ["copy", "excerpt", "rewrite"]
    assert {urlsplit(u).path: k for u, k in expected.items()} == expected_derivatives()
    assert web.story_url not in expected
    assert all(not u.startswith(web.origin.base_url) for u in expected)
    paragraphs = web.story_text.split("\n\n")
    by_kind = {kind: url for url, kind in expected.items()}

    copy_text = page_text(by_kind["copy"])
    assert sum(p in copy_text for p in paragraphs) >= len(paragraphs) - 1

    excerpt_url = by_kind["excerpt"]
    excerpt_text = page_text(excerpt_url)
    reused = [p for p in paragraphs if p in excerpt_text]
    assert 2 <= len(reused) <= 3
    excerpt_article = next(a for arts in load_articles().values() for a in arts if a.kind == "excerpt")
    own_words = sum(len(p.split()) for p in excerpt_article.paragraphs if p not in reused)
    assert own_words > 2 * sum(len(p.split()) for p in reused)  # a longer, otherwise different article

    rewrite_text = page_text(by_kind["rewrite"])
    quotes = [q for q in re.findall(r'"([^"]+)"', web.story_text) if len(q.split()) >= 6]
    assert quotes and all(q in rewrite_text for q in quotes)  # quotes survive a paraphrase
    assert all(detail in rewrite_text for detail in EXCLUSIVE)  # so does the exclusive
    copied = [s for s in sentences_outside_quotes(web.story_text) if s in rewrite_text]
    assert copied == []  # but every narrative sentence is reworded


def test_independent_reports_share_facts_but_not_wording(web: DemoWeb) -> None:
    urls = web.independent_urls()
    assert 2 <= len(urls) <= 3
    assert len({urlsplit(u).netloc for u in urls}) == len(urls)
    assert not set(urls) & set(web.expected())
    narrative = sentences_outside_quotes(web.story_text)
    story_quotes = set(re.findall(r'"([^"]+)"', web.story_text)) - {PUBLIC_STATEMENT}
    for url in urls:
        text = page_text(url)
        assert PUBLIC_STATEMENT in text and "Bellwether Marine Holdings" in text and "£62 million" in text
        assert not [d for d in EXCLUSIVE if d in text], url
        assert not [s for s in narrative if s in text], url
        assert not [q for q in story_quotes if q in text], url


def test_unrelated_articles_are_many_distinct_and_off_topic() -> None:
    articles = [a for arts in load_articles().values() for a in arts]
    unrelated = [a for a in articles if a.kind == "unrelated"]
    assert 25 <= len(unrelated) <= 40
    titled = [a for a in articles if a.kind != "copy"]  # the copy keeps the story's headline
    assert len({a.title for a in titled}) == len(titled)
    assert len({a.text for a in articles}) == len(articles)
    for a in unrelated:
        words = len(a.text.split())
        assert 200 <= words <= 600, (a.name, words)
        assert "Eastquay" not in a.text and "Bellwether" not in a.text, a.name
    assert 600 <= len(story_article().text.split()) <= 800


def test_every_linked_page_resolves_and_derivatives_are_discoverable(web: DemoWeb) -> None:
    netlocs = {s.netloc for s in web.sites}
    seen: set[str] = set()
    queue = deque(web.start_urls())
    while queue and len(seen) < 500:
        url = queue.popleft()
        if url in seen:
            continue
        seen.add(url)
        status, headers, body, _ = fetch(url)
        assert status == 200, url
        if not headers["Content-Type"].startswith("text/html"):
            continue
        for href in links_of(body.decode("utf-8")).hrefs:
            target = urldefrag(urljoin(url, href)).url
            parts = urlsplit(target)
            if parts.netloc in netlocs and not parts.path.startswith(("/private/", "/newsletter/")):
                queue.append(target)
    assert not queue, "crawl did not finish within 500 pages"
    assert set(web.expected()) <= seen
    assert set(web.independent_urls()) <= seen
    assert set(web.article_urls()) <= seen


def test_request_log_records_concurrent_requests(web: DemoWeb) -> None:
    site = web.sites[2]
    before = len(web.request_log)
    before_site = len(web.requests_to(site))
    paths = [f"/robots.txt?n={i}" for i in range(40)]
    with ThreadPoolExecutor(max_workers=8) as pool:
        statuses = list(pool.map(lambda p: fetch(site.url(p))[0], paths))
    assert statuses == [200] * len(paths)
    assert len(web.request_log) - before >= len(paths)
    assert sorted(p for h, p in web.request_log[before:] if h == site.host) == sorted(paths)
    assert sorted(web.requests_to(site)[before_site:]) == sorted(paths)


def _refused(host: str, port: int) -> bool:
    try:
        socket.create_connection((host, port), timeout=2).close()
    except ConnectionRefusedError:
        return True
    return False


def test_stop_closes_every_port() -> None:
    w = DemoWeb().start()
    try:
        addresses = [(s.host, s.port) for s in w.sites]
        assert fetch(w.sites[-1].base_url)[0] == 200
    finally:
        w.stop()
    assert not w.running
    assert all(_refused(host, port) for host, port in addresses)


def test_fallback_layout_separates_sites_by_port() -> None:
    with DemoWeb(separate_hosts=False) as w:
        assert {s.host for s in w.sites} == {"127.0.0.1"}
        assert len({s.port for s in w.sites}) == len(w.sites)
        for site in w.sites:
            assert f">{site.name}</a>" in page_text(site.base_url)
        assert sorted(w.expected().values()) == ["copy", "excerpt", "rewrite"]
        addresses = [(s.host, s.port) for s in w.sites]
    assert all(_refused(host, port) for host, port in addresses)


def test_a_taken_explicit_port_is_a_clear_error() -> None:
    blocker = socket.socket()
    try:
        blocker.bind(("127.0.0.3", 0))
        blocker.listen()
        port = blocker.getsockname()[1]
        with pytest.raises(DemoWebError, match=f"port {port} is already in use"):
            DemoWeb(port=port).start()
        assert _refused("127.0.0.2", port)  # the alias bound before the clash was released
    finally:
        blocker.close()


def test_api_before_start_is_a_clear_error() -> None:
    with pytest.raises(DemoWebError, match="not started"):
        DemoWeb().expected()


def test_malformed_text_files_are_rejected_with_their_name() -> None:
    site = SITES[0]
    with pytest.raises(DemoContentError, match="texts/harbour-wire/bad.txt: no '---'"):
        _parse_file(site, "bad", "title: x\nno separator here\n", 0)
    good_head = "title: t\ndek: d\nsection: news\nauthor: a\npublished: 2025-01-01T00:00:00+00:00\nslug: s\n"
    with pytest.raises(DemoContentError, match="section 'sport'"):
        _parse_file(site, "bad", good_head.replace("news", "sport") + "---\nbody\n", 0)
    with pytest.raises(DemoContentError, match="kind 'stolen'"):
        _parse_file(site, "bad", good_head + "kind: stolen\n---\nbody\n", 0)
