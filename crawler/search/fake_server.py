"""A local search engine speaking the SearXNG and Bing v7 JSON formats, for tests and the demo.

`FakeSearchServer(documents)` indexes {url: text} in memory and serves, on
127.0.0.1 and a free port:

    GET /search?q=...&format=json[&pageno=N]   SearXNG: {"query", "results": [{url, title, content}]}
    GET /v7.0/search?q=...&count=N[&offset=M]  Bing:    {"_type": "SearchResponse", "webPages": {"value": [...]}}

A document matches when it contains every "quoted phrase" of the query word for
word (tokenised like the matcher: case, accents and punctuation do not matter) and
every unquoted word. With `key=...` the Bing endpoint demands it in the
Ocp-Apim-Subscription-Key header (401 otherwise). `fail_next` queues canned
failures (a status code, or "bad-json") returned before normal answers, and
`requests` records what was asked, so tests can check retries and headers.
"""

from __future__ import annotations

import json
import re
import threading
from collections import deque
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from crawler.matching.text import words

PAGE_SIZE = 10
_QUOTED = re.compile(r'"([^"]*)"')


def _contains(haystack: list[str], needle: list[str]) -> bool:
    if not needle:
        return True
    first, size = needle[0], len(needle)
    return any(haystack[i : i + size] == needle for i in range(len(haystack) - size + 1) if haystack[i] == first)


class FakeSearchServer:
    """Context manager: `with FakeSearchServer({url: text}) as engine: engine.base_url`."""

    def __init__(self, documents: dict[str, str], *, key: str | None = None, host: str = "127.0.0.1",
                 port: int = 0) -> None:
        self.documents = {url: (text, words(text)) for url, text in documents.items()}
        self.key = key
        self.fail_next: deque[int | str] = deque()
        self.requests: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        engine = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
                engine._handle(self)

            def log_message(self, *args: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer((host, port), Handler)
        self.httpd.daemon_threads = True
        self.base_url = f"http://{host}:{self.httpd.server_address[1]}"
        self._thread = threading.Thread(target=self.httpd.serve_forever, name="fake-search", daemon=True)

    # --- lifecycle -------------------------------------------------------------------

    def __enter__(self) -> FakeSearchServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self._thread.join(timeout=5)

    # --- search ----------------------------------------------------------------------

    def matching(self, query: str) -> list[str]:
        """URLs of the documents the query matches, in insertion order."""
        phrases = [words(p) for p in _QUOTED.findall(query)]
        loose = words(_QUOTED.sub(" ", query))
        out = []
        for url, (_text, tokens) in self.documents.items():
            token_set = set(tokens)
            if all(_contains(tokens, p) for p in phrases) and all(w in token_set for w in loose):
                out.append(url)
        return out

    def _result(self, url: str, query: str) -> dict[str, str]:
        text = self.documents[url][0]
        lines = [line.strip() for line in text.splitlines() if line.strip()]
        title = lines[0][:120] if lines else url
        return {"url": url, "title": title, "content": " ".join(text.split())[:200]}

    # --- HTTP ------------------------------------------------------------------------

    def _handle(self, handler: BaseHTTPRequestHandler) -> None:
        parts = urlsplit(handler.path)
        params = {k: v[-1] for k, v in parse_qs(parts.query).items()}
        with self._lock:
            self.requests.append({"path": parts.path, "params": params, "headers": dict(handler.headers.items())})
            failure = self.fail_next.popleft() if self.fail_next else None
        if failure == "bad-json":
            return self._send(handler, 200, b"<html>not json</html>", "text/html")
        if isinstance(failure, int):
            extra = {"Retry-After": "0"} if failure == 429 else {}
            return self._send(handler, failure, b'{"error": "injected"}', "application/json", extra)
        query = params.get("q", "")
        if parts.path == "/search":
            if params.get("format") != "json":
                return self._send(handler, 403, b"format not enabled", "text/plain")
            page = max(1, _int(params.get("pageno"), 1))
            urls = self.matching(query)[(page - 1) * PAGE_SIZE : page * PAGE_SIZE]
            body = {"query": query, "number_of_results": len(urls),
                    "results": [self._result(u, query) for u in urls]}
            return self._send_json(handler, body)
        if parts.path == "/v7.0/search":
            if self.key is not None and handler.headers.get("Ocp-Apim-Subscription-Key") != self.key:
                return self._send_json(handler, {"error": {"code": "401", "message": "Access denied"}}, 401)
            count = min(50, max(1, _int(params.get("count"), 10)))
            offset = max(0, _int(params.get("offset"), 0))
            urls = self.matching(query)
            body: dict[str, Any] = {"_type": "SearchResponse", "queryContext": {"originalQuery": query}}
            if urls:
                body["webPages"] = {
                    "totalEstimatedMatches": len(urls),
                    "value": [{"name": r["title"], "url": r["url"], "snippet": r["content"]}
                              for r in (self._result(u, query) for u in urls[offset : offset + count])],
                }
            return self._send_json(handler, body)
        return self._send(handler, 404, b"not found", "text/plain")

    def _send_json(self, handler: BaseHTTPRequestHandler, body: Any, status: int = 200) -> None:
        self._send(handler, status, json.dumps(body).encode(), "application/json")

    @staticmethod
    def _send(handler: BaseHTTPRequestHandler, status: int, body: bytes, content_type: str,
              headers: dict[str, str] | None = None) -> None:
        handler.send_response(status)
        handler.send_header("Content-Type", content_type)
        for name, value in (headers or {}).items():
            handler.send_header(name, value)
        handler.send_header("Content-Length", str(len(body)))
        handler.end_headers()
        handler.wfile.write(body)


def _int(value: str | None, default: int) -> int:
    try:
        return int(value) if value is not None else default
    except ValueError:
        return default


__all__ = ["FakeSearchServer"]
