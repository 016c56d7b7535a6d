"""A small multi-site news web on loopback, for the demo command and the crawler tests.

Each site listens on its own loopback address (127.0.0.2, 127.0.0.3, ...) on one shared
port, so to a crawler every site is a separate domain, as on the real web. All of
127.0.0.0/8 routes to ``lo`` on Linux; where binding 127.0.0.x (x >= 2) fails (macOS
without aliases, some containers), every site falls back to 127.0.0.1 on its own port,
and domain separation then rests on the port alone (note that Scrapy's
``allowed_domains`` ignores ports, so a crawl there must filter by netloc).

Pages are rendered once at start (they depend on the bound base URLs) and served from
memory by stdlib ``ThreadingHTTPServer``s in daemon threads: no extra dependency.
"""

from __future__ import annotations

import errno
import hashlib
import socketserver
import threading
from dataclasses import dataclass, field
from datetime import datetime
from email.utils import parsedate_to_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

from .content import (
    ORIGIN_KEY,
    SITES,
    SiteSpec,
    demo_story,
    expected_derivatives,
    independent_reports,
    load_articles,
    origin_path,
)
from .render import SiteRenderer, http_date

__all__ = [
    "DemoSite",
    "DemoWeb",
    "DemoWebError",
    "demo_story",
    "expected_derivatives",
    "independent_reports",
    "origin_path",
]

FIRST_ALIAS = 2  # sites live on 127.0.0.2 ... 127.0.0.(1 + number of sites)
BIND_ATTEMPTS = 8


class DemoWebError(RuntimeError):
    """The demo web could not start (e.g. the requested port is taken)."""


@dataclass(frozen=True, slots=True)
class Resource:
    body: bytes
    content_type: str
    last_modified: datetime
    etag: str
    status: int = 200


@dataclass
class DemoSite:
    key: str
    name: str
    host: str
    port: int
    spec: SiteSpec
    resources: dict[str, Resource] = field(default_factory=dict, repr=False)
    not_found: Resource | None = field(default=None, repr=False)
    requests: list[str] = field(default_factory=list, repr=False)  # paths served, in order

    @property
    def netloc(self) -> str:
        return f"{self.host}:{self.port}"

    @property
    def base_url(self) -> str:
        return f"http://{self.netloc}/"

    def url(self, path: str) -> str:
        return self.base_url.rstrip("/") + path


def _resource(text: str, content_type: str, modified: datetime, status: int = 200) -> Resource:
    body = text.encode("utf-8")
    etag = '"' + hashlib.sha1(body).hexdigest()[:20] + '"'
    return Resource(body, content_type, modified, etag, status)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    # SO_REUSEADDR lets a restart reuse a port in TIME_WAIT; on Linux a port some other
    # socket listens on still fails with EADDRINUSE (sharing would need SO_REUSEPORT).
    allow_reuse_address = True

    def server_bind(self) -> None:
        # HTTPServer.server_bind resolves the FQDN of the address, a reverse DNS lookup
        # that can stall for seconds without network; the demo needs no server name.
        socketserver.TCPServer.server_bind(self)
        host, port = self.server_address[:2]
        self.server_name = str(host)
        self.server_port = int(port)


class _Handler(BaseHTTPRequestHandler):
    server_version = "DemoNews/1.0"
    timeout = 15  # a stalled client cannot hold a thread forever

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - stdlib signature
        pass  # the request log records what the tests need; stderr stays quiet

    def do_HEAD(self) -> None:
        self._serve(head=True)

    def do_GET(self) -> None:
        self._serve(head=False)

    def _serve(self, head: bool) -> None:
        web: DemoWeb = self.server.demo_web  # type: ignore[attr-defined]
        site: DemoSite = self.server.demo_site  # type: ignore[attr-defined]
        web._record(site, self.path)
        path = urlsplit(self.path).path or "/"
        res = site.resources.get(path)
        if res is None and not path.endswith("/") and path + "/" in site.resources:
            self.send_response(301)
            self.send_header("Location", path + "/")
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        if res is None:
            res = site.not_found
            assert res is not None
        if res.status == 200 and self._not_modified(res):
            self.send_response(304)
            self.send_header("ETag", res.etag)
            self.send_header("Last-Modified", http_date(res.last_modified))
            self.end_headers()
            return
        self.send_response(res.status)
        self.send_header("Content-Type", res.content_type)
        self.send_header("Content-Length", str(len(res.body)))
        if res.status == 200:
            self.send_header("Last-Modified", http_date(res.last_modified))
            self.send_header("ETag", res.etag)
            self.send_header("Cache-Control", "public, max-age=60")
        self.end_headers()
        if not head:
            self.wfile.write(res.body)

    def _not_modified(self, res: Resource) -> bool:
        inm = self.headers.get("If-None-Match")
        if inm is not None:
            return res.etag in [t.strip() for t in inm.split(",")] or inm.strip() == "*"
        ims = self.headers.get("If-Modified-Since")
        if ims:
            try:
                return res.last_modified.replace(microsecond=0) <= parsedate_to_datetime(ims)
            except (TypeError, ValueError):
                return False
        return False


class DemoWeb:
    """The demo news web. Use as a context manager, or start()/stop().

    ``port=0`` picks a free port shared by all sites; an explicit port is used as given
    (in the 127.0.0.1 fallback, sites take port, port+1, ...). ``separate_hosts=False``
    forces the 127.0.0.1 fallback layout.
    """

    def __init__(self, *, port: int = 0, separate_hosts: bool = True):
        if not 0 <= port <= 65535:
            raise ValueError(f"port must be 0..65535, got {port}")
        self._port = port
        self._separate_hosts = separate_hosts
        self._lock = threading.Lock()
        self._servers: list[_Server] = []
        self._threads: list[threading.Thread] = []
        self.sites: list[DemoSite] = []
        self.request_log: list[tuple[str, str]] = []
        title, text = demo_story()
        self.story_title: str = title
        self.story_text: str = text
        self.story_path: str = origin_path()

    # -- lifecycle -----------------------------------------------------------------------
    def start(self) -> DemoWeb:
        if self._servers:
            raise DemoWebError("DemoWeb is already running")
        specs = list(SITES)
        servers: list[_Server] | None = None
        if self._separate_hosts:
            servers = self._bind_aliases(specs)
        if servers is None:
            servers = self._bind_fallback(specs)
        self._servers = servers
        self.sites = [
            DemoSite(key=spec.key, name=spec.name, host=srv.server_name, port=srv.server_port, spec=spec)
            for spec, srv in zip(specs, servers)
        ]
        self._render()
        for site, srv in zip(self.sites, servers):
            srv.demo_web = self  # type: ignore[attr-defined]
            srv.demo_site = site  # type: ignore[attr-defined]
            t = threading.Thread(
                target=srv.serve_forever, kwargs={"poll_interval": 0.1}, name=f"demo-web-{site.key}", daemon=True
            )
            t.start()
            self._threads.append(t)
        return self

    def stop(self) -> None:
        for srv in self._servers:
            srv.shutdown()
        for srv in self._servers:
            srv.server_close()
        for t in self._threads:
            t.join(timeout=5)
        self._servers = []
        self._threads = []

    def __enter__(self) -> DemoWeb:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def running(self) -> bool:
        return bool(self._servers)

    def _bind_aliases(self, specs: list[SiteSpec]) -> list[_Server] | None:
        """All sites on 127.0.0.x with one shared port; None if aliases cannot be bound."""
        hosts = [f"127.0.0.{FIRST_ALIAS + i}" for i in range(len(specs))]
        attempts = 1 if self._port else BIND_ATTEMPTS
        for _ in range(attempts):
            bound: list[_Server] = []
            try:
                port = self._port
                for host in hosts:
                    srv = _Server((host, port), _Handler)
                    bound.append(srv)
                    port = srv.server_port
                return bound
            except OSError as exc:
                for srv in bound:
                    srv.server_close()
                if exc.errno == errno.EADDRINUSE:
                    if self._port:
                        raise DemoWebError(
                            f"port {self._port} is already in use on {hosts[len(bound)]}; pass port=0 to pick a free one"
                        ) from exc
                    continue  # someone holds the port on a later alias: pick another
                return None  # EADDRNOTAVAIL and friends: no 127.0.0.x aliases here
        raise DemoWebError(f"no port was free on all of {hosts[0]}..{hosts[-1]} after {attempts} attempts")

    def _bind_fallback(self, specs: list[SiteSpec]) -> list[_Server]:
        bound: list[_Server] = []
        try:
            for i in range(len(specs)):
                bound.append(_Server(("127.0.0.1", self._port + i if self._port else 0), _Handler))
        except OSError as exc:
            for srv in bound:
                srv.server_close()
            raise DemoWebError(f"cannot bind the demo web on 127.0.0.1 (port={self._port}): {exc}") from exc
        return bound

    def _render(self) -> None:
        articles = load_articles()
        for site in self.sites:
            others = [(o.name, o.base_url) for o in self.sites if o is not site]
            r = SiteRenderer(site.spec, articles[site.key], site.base_url, others)
            html, xml, text = "text/html; charset=utf-8", "application/rss+xml; charset=utf-8", "text/plain; charset=utf-8"
            arts = articles[site.key]
            newest = max(a.updated for a in arts)
            res = {
                "/": _resource(r.home(), html, newest),
                "/feed.xml": _resource(r.feed(), xml, newest),
                "/sitemap.xml": _resource(r.sitemap(), "application/xml; charset=utf-8", newest),
                "/robots.txt": _resource(r.robots(), text, newest),
            }
            for page in ("about", "contact", "privacy"):
                res[f"/{page}/"] = _resource(r.static_page(page), html, newest)
            res["/private/staff/"] = _resource(r.static_page("staff"), html, newest)
            for slug, _ in site.spec.sections:
                in_section = [a for a in arts if a.section == slug]
                if in_section:
                    res[f"/{slug}/"] = _resource(r.section(slug), html, max(a.updated for a in in_section))
            for a in arts:
                res[a.path] = _resource(r.article(a), html, a.updated)
                amp = r.amp_path(a)
                if amp:
                    res[amp] = _resource(r.amp(a), html, a.updated)
            site.resources = res
            site.not_found = _resource(r.not_found(), html, newest, status=404)

    def _record(self, site: DemoSite, raw_path: str) -> None:
        with self._lock:
            self.request_log.append((site.host, raw_path))
            site.requests.append(raw_path)

    # -- what the demo and the tests ask -------------------------------------------------
    def _need_started(self) -> None:
        if not self.sites:
            raise DemoWebError("DemoWeb is not started: call start() or use it as a context manager")

    def site(self, key: str) -> DemoSite:
        self._need_started()
        for s in self.sites:
            if s.key == key:
                return s
        raise KeyError(key)

    @property
    def origin(self) -> DemoSite:
        return self.site(ORIGIN_KEY)

    @property
    def story_url(self) -> str:
        return self.origin.url(self.story_path)

    def start_urls(self) -> list[str]:
        self._need_started()
        return [s.base_url for s in self.sites]

    def feed_urls(self) -> list[str]:
        self._need_started()
        return [s.url("/feed.xml") for s in self.sites]

    def sitemap_urls(self) -> list[str]:
        self._need_started()
        return [s.url("/sitemap.xml") for s in self.sites]

    def _url_of(self, path: str) -> str:
        for s in self.sites:
            if path in s.resources:
                return s.url(path)
        raise KeyError(path)  # content.py guarantees paths are unique and rendered

    def expected(self) -> dict[str, str]:
        """Absolute URL of every derivative page -> kind (copy/excerpt/rewrite)."""
        self._need_started()
        return {self._url_of(p): kind for p, kind in expected_derivatives().items()}

    def independent_urls(self) -> list[str]:
        """Independent reports of the same event: pages the matcher must NOT flag."""
        self._need_started()
        return [self._url_of(p) for p in independent_reports()]

    def article_urls(self) -> list[str]:
        """Every article page on every site (the story, derivatives and the rest)."""
        self._need_started()
        return [s.url(a.path) for s in self.sites for a in load_articles()[s.key]]

    def requests_to(self, site: DemoSite) -> list[str]:
        """Paths requested from one site; unambiguous even when all hosts are 127.0.0.1."""
        with self._lock:
            return list(site.requests)
