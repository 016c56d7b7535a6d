"""Fetch one page over HTTP(S) for ``copyhound seed add --url``.

The crawler fetches through Scrapy; registering a story is a one-off, so it
uses only the standard library. The URL comes from a user and the response
from anyone, so every dimension of the exchange is bounded: the number of
redirects, the wall-clock time (not only per socket read, so a server that
trickles one byte a second cannot hold us), the body size before *and*
after decompression (a gzip bomb stops at the cap), and the content type
(a PDF is refused before its body is downloaded). Every failure is one
:class:`FetchError` with a one-line message naming the URL.
"""

from __future__ import annotations

import socket
import ssl
import time
import urllib.error
import urllib.request
import zlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from email.message import Message
from http.client import HTTPException, HTTPResponse
from urllib.parse import urljoin, urlsplit

__all__ = [
    "DEFAULT_USER_AGENT",
    "HTML_CONTENT_TYPES",
    "MAX_REDIRECTS",
    "FetchError",
    "Fetched",
    "fetch",
]

DEFAULT_USER_AGENT = "copyhound/0.1 (republication monitor; +https://github.com/copyhound)"
MAX_REDIRECTS = 5
HTML_CONTENT_TYPES = frozenset({"text/html", "application/xhtml+xml"})
_CHUNK = 65_536
_REDIRECT_CODES = frozenset({301, 302, 303, 307, 308})


class FetchError(ValueError):
    """The URL did not give an HTML page; the message says why in one line."""


@dataclass(frozen=True)
class Fetched:
    """A fetched HTML page. ``headers`` has lower-case names (repeated headers
    joined with ", "); ``body`` is already decompressed; ``content_type`` is
    the bare media type (``"text/html"``)."""

    url: str
    final_url: str
    status: int
    headers: Mapping[str, str] = field(repr=False)
    body: bytes = field(repr=False)
    content_type: str

    @property
    def charset(self) -> str | None:
        """Charset declared in the Content-Type header, for ``decode_html``."""
        return _parse_content_type(self.headers.get("content-type", ""))[1]


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """Hand 3xx back to us: urllib's own redirect following has no loop
    message we can control and follows to any scheme it supports."""

    def redirect_request(self, req, fp, code, msg, headers, newurl):  # noqa: D401, ANN001
        return None


def _opener() -> urllib.request.OpenerDirector:
    return urllib.request.build_opener(_NoRedirect())


def _parse_content_type(value: str) -> tuple[str, str | None]:
    message = Message()
    message["content-type"] = value or ""
    media = message.get_content_type() if value else ""
    charset = message.get_param("charset")
    return media.lower(), (str(charset).strip() if charset else None)


def _check_url(url: str) -> None:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise FetchError(f"{url!r} is not an http(s) URL")


def _flatten(headers: Message) -> dict[str, str]:
    flat: dict[str, str] = {}
    for name, value in headers.items():
        key = name.lower()
        flat[key] = f"{flat[key]}, {value}" if key in flat else value
    return flat


def _describe(exc: BaseException, timeout: float) -> str:
    reason = getattr(exc, "reason", exc)
    if isinstance(reason, (TimeoutError, socket.timeout)):
        return f"timed out after {timeout:g} s"
    if isinstance(reason, ConnectionRefusedError):
        return "connection refused"
    if isinstance(reason, socket.gaierror):
        return "cannot resolve host"
    if isinstance(reason, ssl.SSLError):
        return f"TLS error ({reason.reason or reason})"
    if isinstance(reason, ConnectionError):
        return f"connection failed ({type(reason).__name__})"
    return f"{type(reason).__name__}: {reason}".strip()


class _Decoder:
    """Content-Encoding decoder that never produces more than a budget."""

    def __init__(self, encoding: str, url: str) -> None:
        self.encoding = encoding
        if encoding in ("", "identity"):
            self._wbits = None
        elif encoding in ("gzip", "x-gzip"):
            self._wbits = 16 + zlib.MAX_WBITS
        elif encoding == "deflate":
            self._wbits = zlib.MAX_WBITS  # zlib-wrapped; raw deflate is tried on error
        else:
            raise FetchError(f"{url} uses Content-Encoding {encoding!r}, which copyhound cannot decode")
        self._z = zlib.decompressobj(self._wbits) if self._wbits is not None else None
        self._raw_tried = False

    def feed(self, data: bytes, budget: int) -> bytes:
        """Decoded bytes of ``data``, at most ``budget + 1`` of them (one
        more than allowed is how the caller learns the cap was crossed)."""
        if self._z is None:
            return data[: budget + 1]
        out = bytearray()
        pending = data
        while pending and len(out) <= budget:  # each pass consumes input or fills the budget
            try:
                out += self._z.decompress(pending, budget + 1 - len(out))
            except zlib.error:
                if self.encoding == "deflate" and not self._raw_tried and not out:
                    self._raw_tried = True
                    self._z = zlib.decompressobj(-zlib.MAX_WBITS)
                    continue
                raise
            if self._z.unconsumed_tail:
                pending = self._z.unconsumed_tail
            elif self._z.eof and self._z.unused_data:
                pending = self._z.unused_data  # next gzip member
                self._z = zlib.decompressobj(self._wbits)
            else:
                pending = b""
        return bytes(out)


def _open(url: str, *, user_agent: str, timeout: float) -> HTTPResponse:
    request = urllib.request.Request(
        url,
        headers={
            "User-Agent": user_agent,
            "Accept": "text/html,application/xhtml+xml;q=0.9,*/*;q=0.1",
            "Accept-Encoding": "gzip, deflate",
        },
    )
    return _opener().open(request, timeout=timeout)  # type: ignore[return-value]


def _read_body(response: HTTPResponse, url: str, *, max_bytes: int, deadline: float, timeout: float) -> bytes:
    encoding = (response.headers.get("Content-Encoding") or "").strip().lower()
    decoder = _Decoder(encoding, url)
    body = bytearray()
    raw_read = 0
    while True:  # ends at EOF, at the size cap or at the deadline
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise FetchError(f"timed out after {timeout:g} s reading {url}")
        _set_read_timeout(response, remaining)
        chunk = response.read1(_CHUNK)
        if not chunk:
            break
        raw_read += len(chunk)
        if raw_read > max_bytes:
            raise FetchError(f"{url} sends more than {max_bytes} bytes (max_bytes)")
        try:
            body += decoder.feed(chunk, max_bytes - len(body))
        except zlib.error as exc:
            raise FetchError(f"{url} sent a corrupt {encoding} body ({exc})") from None
        if len(body) > max_bytes:
            raise FetchError(f"{url} decompresses to more than {max_bytes} bytes (max_bytes)")
    return bytes(body)


def _set_read_timeout(response: HTTPResponse, seconds: float) -> None:
    """Shrink the socket timeout to what is left of the overall deadline."""
    sock = getattr(getattr(response, "fp", None), "raw", None)
    sock = getattr(sock, "_sock", None)
    if isinstance(sock, socket.socket):
        sock.settimeout(max(seconds, 0.001))


def fetch(
    url: str,
    *,
    timeout: float = 20,
    max_bytes: int = 10_000_000,
    user_agent: str = DEFAULT_USER_AGENT,
) -> Fetched:
    """GET an HTML page, following at most :data:`MAX_REDIRECTS` redirects.

    ``timeout`` bounds the whole exchange, redirects included. Raises
    :class:`FetchError` for HTTP errors ("HTTP 404 for URL"), timeouts,
    unreachable hosts, redirect loops, bodies over ``max_bytes`` (compressed
    or not) and content that is not HTML.
    """
    if timeout <= 0:
        raise ValueError(f"timeout must be positive, got {timeout}")
    if max_bytes <= 0:
        raise ValueError(f"max_bytes must be positive, got {max_bytes}")
    _check_url(url)
    deadline = time.monotonic() + timeout
    current = url
    seen = {url}
    for _hop in range(MAX_REDIRECTS + 1):
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise FetchError(f"timed out after {timeout:g} s fetching {url}")
        try:
            response = _open(current, user_agent=user_agent, timeout=remaining)
        except urllib.error.HTTPError as exc:
            with exc:
                location = exc.headers.get("Location") if exc.headers else None
                if exc.code in _REDIRECT_CODES and location:
                    target = urljoin(current, location.strip())
                    _check_url(target)
                    if target in seen:
                        raise FetchError(f"redirect loop: {current} redirects back to {target}") from None
                    seen.add(target)
                    current = target
                    continue
                raise FetchError(f"HTTP {exc.code} for {current}") from None
        except urllib.error.URLError as exc:
            raise FetchError(f"{_describe(exc, timeout)} fetching {current}") from None
        except (TimeoutError, OSError, HTTPException) as exc:
            raise FetchError(f"{_describe(exc, timeout)} fetching {current}") from None

        with response:
            headers = _flatten(response.headers)
            media_type, _charset = _parse_content_type(headers.get("content-type", ""))
            if media_type and media_type not in HTML_CONTENT_TYPES:
                raise FetchError(f"{current} serves {media_type}, not an HTML page")
            length = headers.get("content-length", "").strip()
            if length.isdigit() and int(length) > max_bytes:
                raise FetchError(f"{current} is {int(length)} bytes, more than max_bytes={max_bytes}")
            try:
                body = _read_body(response, current, max_bytes=max_bytes, deadline=deadline, timeout=timeout)
            except (TimeoutError, OSError, HTTPException) as exc:
                raise FetchError(f"{_describe(exc, timeout)} reading {current}") from None
            if not media_type and not body.lstrip()[:1] == b"<":
                raise FetchError(f"{current} has no Content-Type and does not look like HTML")
            return Fetched(
                url=url,
                final_url=current,
                status=response.status,
                headers=headers,
                body=body,
                content_type=media_type or "text/html",
            )
    raise FetchError(f"too many redirects (more than {MAX_REDIRECTS}) starting at {url}")
