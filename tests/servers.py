"""A small real HTTP server for tests: routes map a path to a canned response."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass
class Reply:
    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=lambda: {"Content-Type": "text/html; charset=utf-8"})
    # A body written piece by piece (huge, endless-looking or trickling responses); the
    # iterable must be finite. `length` is the Content-Length announced (None: none,
    # the end of the body is the end of the connection).
    chunks: Callable[[], Iterable[bytes]] | None = None
    length: int | None = None


Route = Reply | Callable[[BaseHTTPRequestHandler], Reply]


class LocalServer:
    """Serves `routes` on 127.0.0.1 on a free port until stopped; unknown paths 404."""

    def __init__(
        self,
        routes: dict[str, Route] | None = None,
        host: str = "127.0.0.1",
        fallback: Callable[[BaseHTTPRequestHandler], Reply | None] | None = None,
    ) -> None:
        self.routes: dict[str, Route] = dict(routes or {})
        self.fallback = fallback  # for paths no route names (e.g. /calendar?month=N)
        self.requests: list[str] = []
        self.request_headers: list[tuple[str, dict[str, str]]] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
                server.requests.append(self.path)
                server.request_headers.append((self.path, dict(self.headers.items())))
                route = server.routes.get(self.path)
                reply = route(self) if callable(route) else route
                if reply is None and server.fallback is not None:
                    reply = server.fallback(self)
                reply = reply or Reply(404, b"not found", {"Content-Type": "text/plain"})
                self.send_response(reply.status)
                for name, value in reply.headers.items():
                    self.send_header(name, value)
                if reply.chunks is None:
                    self.send_header("Content-Length", str(len(reply.body)))
                elif reply.length is not None:
                    self.send_header("Content-Length", str(reply.length))
                self.end_headers()
                try:
                    if reply.chunks is None:
                        self.wfile.write(reply.body)
                        return
                    for chunk in reply.chunks():
                        self.wfile.write(chunk)
                        self.wfile.flush()
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up on us: that is what these routes test

            def log_message(self, *args) -> None:
                pass

        self.httpd = ThreadingHTTPServer((host, 0), Handler)
        self.httpd.daemon_threads = True
        self.base = f"http://{host}:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def url(self, path: str) -> str:
        return self.base + path

    def __enter__(self) -> LocalServer:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(timeout=5)


def html_page(title: str, paragraphs: list[str]) -> bytes:
    body = "".join(f"<p>{p}</p>" for p in paragraphs)
    return (
        f"<!doctype html><html><head><meta charset='utf-8'><title>{title}</title></head>"
        f"<body><nav><a href='/'>Home</a></nav><article><h1>{title}</h1>{body}</article>"
        f"<footer>© Test site</footer></body></html>"
    ).encode()
