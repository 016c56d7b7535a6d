"""fetch() against a real HTTP server on 127.0.0.1 started by the tests.

Every server behaviour a hostile or broken site shows is served for real:
errors, a PDF, redirect loops, a gzip bomb, an oversized body, a server
that never answers and one that trickles. Timeouts are 1 s; nothing asserts
on elapsed time.
"""

from __future__ import annotations

import gzip
import socket
import threading
import time
import tracemalloc
import zlib
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from crawler.extraction import decode_html, extract
from crawler.fetching import MAX_REDIRECTS, FetchError, Fetched, fetch

ARTICLE = (
    "<!doctype html><html lang='en'><head><meta charset='utf-8'><title>Harbour plan</title></head>"
    "<body><article><h1>Harbour plan approved</h1>"
    + "".join(
        f"<p>Paragraph {i}: the council approved the harbour redevelopment plan after a long "
        f"debate about costs, fishing rights and the café on the old pier.</p>"
        for i in range(8)
    )
    + "</article></body></html>"
).encode("utf-8")

SMALL_CAP = 100_000  # max_bytes used for the size tests


def _bomb() -> bytes:
    """~20 MB of zeros gzip-compressed to a few kB, built without holding 20 MB."""
    compressor = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    zeros = b"\0" * 1_000_000
    parts = [compressor.compress(zeros) for _ in range(20)]
    parts.append(compressor.flush())
    return b"".join(parts)


GZIP_BOMB = _bomb()


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - silence test output
        pass

    def _send(self, status: int, body: bytes, content_type: str = "text/html; charset=utf-8",
              extra: dict[str, str] | None = None, length: bool = True) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        for name, value in (extra or {}).items():
            self.send_header(name, value)
        if length:
            self.send_header("Content-Length", str(len(body)))
        else:
            self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(body)
        if not length:
            self.close_connection = True

    def do_GET(self) -> None:  # noqa: C901 - one route table
        path = self.path
        if path == "/page":
            self._send(200, ARTICLE)
        elif path == "/latin1":
            body = "<html><body><p>Le café de la gare a fermé.</p></body></html>".encode("cp1252")
            self._send(200, body, content_type="text/html; charset=ISO-8859-1")
        elif path == "/missing":
            self._send(404, b"<html><body>not here</body></html>")
        elif path == "/broken":
            self._send(503, b"<html><body>down</body></html>")
        elif path == "/report.pdf":
            self._send(200, b"%PDF-1.4\n" + b"x" * 1000, content_type="application/pdf")
        elif path.startswith("/loop/a"):
            self._send(302, b"", extra={"Location": "/loop/b"})
        elif path.startswith("/loop/b"):
            self._send(301, b"", extra={"Location": "/loop/a"})
        elif path.startswith("/chain/"):
            step = int(path.rsplit("/", 1)[1])
            self._send(302, b"", extra={"Location": f"/chain/{step + 1}"})
        elif path == "/moved":
            self._send(301, b"", extra={"Location": "/hop"})
        elif path == "/hop":
            self._send(307, b"", extra={"Location": f"http://127.0.0.1:{self.server.server_port}/page"})
        elif path == "/to-file":
            self._send(302, b"", extra={"Location": "file:///etc/passwd"})
        elif path == "/gzipped":
            self._send(200, gzip.compress(ARTICLE), extra={"Content-Encoding": "gzip"})
        elif path == "/bomb":
            self._send(200, GZIP_BOMB, extra={"Content-Encoding": "gzip"})
        elif path == "/corrupt-gzip":
            self._send(200, b"\x1f\x8b\x08\x00garbage-not-gzip" * 10, extra={"Content-Encoding": "gzip"})
        elif path == "/brotli":
            self._send(200, b"\x0b\x02\x80hello", extra={"Content-Encoding": "br"})
        elif path == "/large-declared":
            self._send(200, b"<p>" + b"a" * (SMALL_CAP * 2) + b"</p>")
        elif path == "/large-undeclared":  # no Content-Length: the read loop must stop itself
            self._send(200, b"<p>" + b"a" * (SMALL_CAP * 2) + b"</p>", length=False)
        elif path == "/trickle":
            # a complete, valid page if one waits ~100 s for it: only an overall
            # deadline (not a per-read socket timeout) makes the client give up
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.send_header("Connection", "close")
            self.end_headers()
            self.close_connection = True
            for _ in range(1000):  # bounded; the client hangs up after 1 s
                try:
                    self.wfile.write(b"<")
                    self.wfile.flush()
                except OSError:
                    return
                time.sleep(0.1)
        elif path == "/no-type":
            self.send_response(200)
            self.send_header("Content-Length", str(len(ARTICLE)))
            self.end_headers()
            self.wfile.write(ARTICLE)
        else:
            self._send(404, b"unknown route")


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    httpd.daemon_threads = True
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_port}"
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=5)


@pytest.fixture
def silent_server() -> Iterator[str]:
    """Listens but never accepts: the kernel completes the TCP handshake from
    the backlog, then nothing ever answers the request."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    sock.listen(8)
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}/"
    finally:
        sock.close()


@pytest.fixture
def closed_port() -> str:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()  # nothing listens there any more
    return f"http://127.0.0.1:{port}/"


def test_html_page_is_fetched_and_extractable(server: str) -> None:
    fetched = fetch(f"{server}/page", timeout=5)
    assert isinstance(fetched, Fetched)
    assert fetched.status == 200
    assert fetched.final_url == fetched.url == f"{server}/page"
    assert fetched.content_type == "text/html"
    assert fetched.charset == "utf-8"
    assert fetched.headers["content-type"].startswith("text/html")
    assert fetched.body == ARTICLE
    page = extract(fetched.body, url=fetched.final_url)
    assert "harbour redevelopment plan" in page.text
    assert "café" in page.text


def test_declared_charset_is_exposed_for_decoding(server: str) -> None:
    fetched = fetch(f"{server}/latin1", timeout=5)
    assert fetched.charset == "ISO-8859-1"
    assert "Le café de la gare a fermé." in decode_html(fetched.body, declared=fetched.charset)


def test_redirects_are_followed_and_final_url_reported(server: str) -> None:
    fetched = fetch(f"{server}/moved", timeout=5)
    assert fetched.url == f"{server}/moved"
    assert fetched.final_url == f"{server}/page"
    assert fetched.body == ARTICLE


@pytest.mark.parametrize(("path", "status"), [("/missing", 404), ("/broken", 503)])
def test_http_errors_raise_with_status_and_url(server: str, path: str, status: int) -> None:
    with pytest.raises(FetchError) as info:
        fetch(f"{server}{path}", timeout=5)
    assert str(info.value) == f"HTTP {status} for {server}{path}"


def test_pdf_is_refused_with_its_content_type(server: str) -> None:
    with pytest.raises(FetchError, match=r"serves application/pdf, not an HTML page"):
        fetch(f"{server}/report.pdf", timeout=5)


def test_redirect_loop_is_a_clear_error(server: str) -> None:
    with pytest.raises(FetchError, match=r"redirect loop"):
        fetch(f"{server}/loop/a", timeout=5)


def test_endless_redirect_chain_is_bounded(server: str) -> None:
    with pytest.raises(FetchError, match=rf"too many redirects \(more than {MAX_REDIRECTS}\)"):
        fetch(f"{server}/chain/0", timeout=5)


def test_redirect_to_non_http_scheme_is_refused(server: str) -> None:
    with pytest.raises(FetchError, match=r"not an http\(s\) URL"):
        fetch(f"{server}/to-file", timeout=5)


def test_gzip_body_is_decompressed(server: str) -> None:
    fetched = fetch(f"{server}/gzipped", timeout=5)
    assert fetched.body == ARTICLE


def test_gzip_bomb_stops_at_max_bytes_without_inflating_it(server: str) -> None:
    assert len(GZIP_BOMB) < SMALL_CAP  # the compressed body alone passes the cap
    tracemalloc.start()
    try:
        with pytest.raises(FetchError, match=r"decompresses to more than 100000 bytes"):
            fetch(f"{server}/bomb", timeout=5, max_bytes=SMALL_CAP)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    # decompression is capped chunk by chunk: memory stays near max_bytes,
    # far from the 20 MB the bomb inflates to
    assert peak < 20 * SMALL_CAP


def test_corrupt_gzip_is_a_clear_error(server: str) -> None:
    with pytest.raises(FetchError, match=r"corrupt gzip body"):
        fetch(f"{server}/corrupt-gzip", timeout=5)


def test_unsupported_content_encoding_is_refused(server: str) -> None:
    with pytest.raises(FetchError, match=r"Content-Encoding 'br'"):
        fetch(f"{server}/brotli", timeout=5)


def test_declared_too_large_body_is_refused_before_download(server: str) -> None:
    with pytest.raises(FetchError, match=r"more than max_bytes=100000"):
        fetch(f"{server}/large-declared", timeout=5, max_bytes=SMALL_CAP)


def test_undeclared_too_large_body_stops_at_the_cap(server: str) -> None:
    with pytest.raises(FetchError, match=r"sends more than 100000 bytes"):
        fetch(f"{server}/large-undeclared", timeout=5, max_bytes=SMALL_CAP)


def test_missing_content_type_is_sniffed(server: str) -> None:
    fetched = fetch(f"{server}/no-type", timeout=5)
    assert fetched.content_type == "text/html"
    assert fetched.body == ARTICLE


def test_server_that_never_answers_times_out(silent_server: str) -> None:
    with pytest.raises(FetchError, match=r"timed out after 1 s"):
        fetch(silent_server, timeout=1)


def test_trickling_server_hits_the_overall_deadline(server: str) -> None:
    # each byte arrives well within the socket timeout; only a total deadline stops it
    with pytest.raises(FetchError, match=r"timed out after 1 s"):
        fetch(f"{server}/trickle", timeout=1)


def test_closed_port_is_connection_refused(closed_port: str) -> None:
    with pytest.raises(FetchError, match=r"connection refused fetching http://127\.0\.0\.1:\d+/"):
        fetch(closed_port, timeout=2)


@pytest.mark.parametrize("url", ["ftp://example.org/x", "file:///etc/passwd", "not a url", "http://"])
def test_non_http_urls_are_refused_without_network(url: str) -> None:
    with pytest.raises(FetchError, match=r"is not an http\(s\) URL"):
        fetch(url)


def test_fetch_error_is_a_value_error() -> None:
    assert issubclass(FetchError, ValueError)


@pytest.mark.parametrize("kwargs", [{"timeout": 0}, {"max_bytes": 0}])
def test_invalid_limits_are_rejected(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError, match=r"must be positive"):
        fetch("http://127.0.0.1:9/", **kwargs)
