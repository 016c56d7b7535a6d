"""Main text and metadata from an HTML page, as pure functions.

The matcher compares a story with what a page *says*, so everything a page
shows around the story (navigation, teasers of other stories, cookie banners,
reader comments) is noise that would both hide a copy and invent false ones.
trafilatura does the boilerplate removal; this module makes it safe to feed
hostile input: bytes in any (or a wrong) charset, binary files, truncated or
gigantic markup. It never imports Scrapy so the CLI, the evaluation and the
crawler share exactly one extraction.
"""

from __future__ import annotations

import codecs
import copy
import hashlib
import logging
import re
import unicodedata
from dataclasses import dataclass
from urllib.parse import urljoin, urlsplit

import trafilatura
from lxml import etree
from lxml.html import HtmlElement
from trafilatura.utils import load_html
from w3lib.encoding import html_body_declared_encoding, read_bom, resolve_encoding

__all__ = [
    "MAX_ELEMENTS_FOR_FALLBACKS",
    "MAX_INPUT_BYTES",
    "ExtractionError",
    "Extracted",
    "content_hash",
    "decode_html",
    "extract",
    "extract_text",
]

LOGGER = logging.getLogger(__name__)

#: Pages larger than this are cut before parsing, so one page cannot hold a
#: worker for minutes or exhaust memory. Real article pages are far below it;
#: what makes pages bigger is inline scripts and data, which extraction drops.
MAX_INPUT_BYTES = 5_000_000

# Options chosen by measuring on the Zyte article-extraction benchmark
# (crawler/evaluation/extraction.py): favor_precision scores best there and is
# also what news pages need (teasers and related-story boxes are dropped).
# deduplicate stays off: trafilatura keeps its duplicate cache in a module
# global, which would make the result depend on the pages seen before.
_TRAFILATURA_OPTIONS = {
    "include_comments": False,
    "favor_precision": True,
    "include_tables": True,
    "include_images": False,
    "include_links": False,
    "deduplicate": False,
    "with_metadata": True,
}

#: Above this many elements trafilatura runs without its readability and
#: jusText fallbacks: jusText's paragraph revision is quadratic (a 1 MB page
#: of short paragraphs takes 35 s with them, under 1 s without). Article pages
#: have far fewer (the benchmark's largest: 1,600). What remains is linear in
#: the input, which MAX_INPUT_BYTES bounds (about 10-20 s for 5 MB of
#: adversarial markup, well under 0.1 s for a real article page).
MAX_ELEMENTS_FOR_FALLBACKS = 10_000

_SNIFF_BYTES = 65_536
_MAGIC_NUMBERS = {
    b"%PDF-": "a PDF document",
    b"PK\x03\x04": "a ZIP archive (or office document)",
    b"\x89PNG": "a PNG image",
    b"GIF8": "a GIF image",
    b"\xff\xd8\xff": "a JPEG image",
    b"\x1f\x8b": "gzip-compressed data (decompress it first)",
    b"RIFF": "a RIFF media file",
    b"\x7fELF": "an executable",
}
_MULTIBYTE_CODECS = frozenset({
    "gb18030", "gbk", "gb2312", "hz", "big5", "big5hkscs", "cp950", "cp932",
    "shift_jis", "shift_jis_2004", "shift_jisx0213", "euc_jp", "euc_jis_2004",
    "euc_jisx0213", "iso2022_jp", "euc_kr", "cp949", "johab", "iso2022_kr",
})
_CONTROL_CHARS = {chr(c) for c in range(32)} - {"\t", "\n", "\r", "\f", "\v"}
_WS_RE = re.compile(r"\s+")

# For the simple fallback extractor: elements never shown as text, containers
# whose text is rarely the story, and class/id markers of page chrome.
_INVISIBLE_TAGS = ("script", "style", "noscript", "template", "svg", "iframe", "object", "head")
_CHROME_TAGS = ("nav", "header", "footer", "aside", "form", "button", "select")
_CHROME_MARKERS = re.compile(
    r"comment|cookie|consent|banner|gdpr|newsletter|subscribe|sidebar|"
    r"\bnav|menu|footer|related|promo|share|social|advert|\bads?\b",
    re.IGNORECASE,
)
_FALLBACK_BLOCKS = ("p", "h1", "h2", "h3", "h4", "h5", "h6", "li", "blockquote", "pre", "dd")


class ExtractionError(ValueError):
    """The input cannot yield text: empty, binary, or no readable content."""


@dataclass(frozen=True)
class Extracted:
    """What a page says, plus the metadata that identifies the publication.

    ``published`` is an ISO date (``YYYY-MM-DD``); ``canonical_url`` is what the
    page itself declares (``<link rel=canonical>`` or ``og:url``), resolved
    against the fetch URL, or None; ``language`` is the primary subtag the page
    declares (``"en"`` for ``lang="en-GB"``), or None. ``truncated`` is True when
    the input exceeded :data:`MAX_INPUT_BYTES` and only its head was read.
    """

    title: str | None
    text: str
    published: str | None
    site_name: str | None
    canonical_url: str | None
    language: str | None
    truncated: bool = False


# --------------------------------------------------------------------------
# decoding


def _codec(label: str | None) -> str | None:
    """Python codec for a web charset label (WHATWG aliases: latin-1 is
    cp1252, shift_jis is cp932), or None for unknown labels."""
    if not label:
        return None
    resolved = resolve_encoding(label.strip().strip("\"'"))
    if resolved is None:
        return None
    try:
        return codecs.lookup(resolved).name
    except LookupError:
        return None


def _strict_decode(body: bytes, codec: str) -> str | None:
    try:
        return body.decode(codec)
    except (UnicodeDecodeError, LookupError):
        return None


def _detect(body: bytes) -> str | None:
    """Statistical guess for undeclared legacy encodings. Short Western text
    is ambiguous between a dozen code pages; cp1252, the web's default legacy
    charset (WHATWG), wins whenever the detector finds it about as plausible."""
    from charset_normalizer import from_bytes  # heavy; only for undeclared pages

    # UTF-16/32 without a BOM cannot be told from noise and NUL-free bytes are
    # not UTF-16 text anyway: only ASCII-compatible guesses are useful here
    matches = [
        m for m in from_bytes(body[:_SNIFF_BYTES])
        if not _codec(m.encoding).startswith(("utf-16", "utf-32"))
    ]
    if not matches:
        return None
    best = matches[0]
    for match in matches:
        if _codec(match.encoding) == "cp1252" and match.chaos <= best.chaos + 0.1:
            return "cp1252"
    guess = _codec(best.encoding)
    if (
        guess not in _MULTIBYTE_CODECS  # strict CJK decoding is evidence enough
        and best.coherence < 0.1
        and _strict_decode(body, "cp1252") is not None
    ):
        return "cp1252"  # no language evidence for an exotic single-byte guess
    return guess


def decode_html(body: bytes, *, declared: str | None = None) -> str:
    """Bytes of a web page to text, readable even when the charset is wrong.

    Order: byte-order mark, then UTF-8 when the bytes are valid UTF-8 with
    non-ASCII characters (servers and templates often declare latin-1 for
    UTF-8 pages; valid multi-byte UTF-8 by accident is vanishingly rare), then
    the HTTP-declared charset, then ``<meta charset>``, then statistical
    detection, then cp1252 (which decodes any byte). A declared charset is only
    used when the bytes actually decode in it, so cp1252 bytes declared as
    UTF-8 still come out as the intended accented letters.
    """
    if not body:
        return ""
    bom_encoding, bom = read_bom(body)
    if bom_encoding:
        return body[len(bom):].decode(_codec(bom_encoding) or "utf-8", errors="replace")

    if not body.isascii():
        as_utf8 = _strict_decode(body, "utf-8")
        if as_utf8 is not None:
            return as_utf8

    candidates: list[str] = []
    for label in (declared, html_body_declared_encoding(body)):
        codec = _codec(label)
        # A declared UTF-16/32 without a BOM on an ASCII-compatible body is a
        # lie (the meta tag itself was readable as ASCII): skip it.
        if codec and not codec.startswith(("utf-16", "utf-32")):
            candidates.append(codec)
    for codec in candidates:
        text = _strict_decode(body, codec)
        if text is not None:
            return text
    detected = _detect(body)
    if detected:
        text = _strict_decode(body, detected)
        if text is not None:
            return text
    return body.decode("cp1252", errors="replace")


# --------------------------------------------------------------------------
# input checks


def _binary_reason_bytes(body: bytes) -> str | None:
    head = body[:_SNIFF_BYTES]
    for magic, what in _MAGIC_NUMBERS.items():
        if head.startswith(magic):
            return what
    if read_bom(head)[0]:  # UTF-16/32 text legitimately contains NUL bytes
        return None
    if b"\x00" in head:
        return "binary data (it contains NUL bytes)"
    return None


def _binary_reason_text(text: str) -> str | None:
    head = text[:_SNIFF_BYTES]
    if "\x00" in head:
        return "binary data (it contains NUL characters)"
    controls = sum(1 for ch in head if ch in _CONTROL_CHARS)
    if head and controls / len(head) > 0.05:
        return f"binary data ({controls} control characters in the first {len(head)})"
    return None


def _cap(html: str | bytes) -> tuple[str | bytes, bool]:
    """Cut oversized input at the last tag start before the cap: ``<`` never
    occurs inside a multi-byte character of UTF-8 or the CJK legacy
    encodings, so the cut never splits a character and decoding stays strict."""
    if len(html) <= MAX_INPUT_BYTES:  # for str: characters, a bound on work all the same
        return html, False
    head = html[:MAX_INPUT_BYTES]
    cut = head.rfind(b"<" if isinstance(head, bytes) else "<")
    return (head[:cut] if cut > 0 else head), True


# --------------------------------------------------------------------------
# metadata trafilatura does not give exactly as we need


def _http_url(value: str | None, base: str | None) -> str | None:
    if not value or not value.strip():
        return None
    resolved = urljoin(base or "", value.strip())
    parts = urlsplit(resolved)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        return None
    return resolved


def _canonical_url(tree: HtmlElement, base: str | None) -> str | None:
    for link in tree.iterfind(".//link[@rel][@href]"):
        if "canonical" in (link.get("rel") or "").lower().split():
            found = _http_url(link.get("href"), base)
            if found:
                return found
    for meta in tree.iterfind(".//meta[@content]"):
        if (meta.get("property") or meta.get("name") or "").strip().lower() == "og:url":
            found = _http_url(meta.get("content"), base)
            if found:
                return found
    return None


def _language(tree: HtmlElement) -> str | None:
    candidates = [tree.get("lang"), tree.get("{http://www.w3.org/XML/1998/namespace}lang")]
    for meta in tree.iterfind(".//meta[@content]"):
        key = (meta.get("http-equiv") or meta.get("property") or meta.get("name") or "").lower()
        if key in ("content-language", "og:locale", "language"):
            candidates.append(meta.get("content"))
    for value in candidates:
        if value:
            primary = re.split(r"[-_,;\s]", value.strip(), maxsplit=1)[0].lower()
            if primary.isalpha() and 2 <= len(primary) <= 3:
                return primary
    return None


# --------------------------------------------------------------------------
# fallback for pages too short for trafilatura


def _normalise_lines(lines: list[str]) -> str:
    kept = []
    for line in lines:
        line = _WS_RE.sub(" ", line).strip()
        if line and (not kept or kept[-1] != line):
            kept.append(line)
    return "\n".join(kept)


def _visible_lines(root: HtmlElement) -> list[str]:
    return root.text_content().splitlines()


def _fallback_text(tree: HtmlElement) -> str:
    """Readable text for pages trafilatura returns nothing for (a quoted
    paragraph on an otherwise empty page, text only in a footer): first the
    paragraphs outside obvious chrome, then any text outside chrome, then any
    visible text at all. A short excerpt is worth keeping even if it is noisy;
    the matcher decides what it is."""
    visible = copy.deepcopy(tree)
    etree.strip_elements(visible, etree.Comment, *_INVISIBLE_TAGS, with_tail=False)
    pruned = copy.deepcopy(visible)
    etree.strip_elements(pruned, *_CHROME_TAGS, with_tail=False)
    for element in list(pruned.iter(etree.Element)):
        marker = f"{element.get('class') or ''} {element.get('id') or ''} {element.get('role') or ''}"
        if marker.strip() and _CHROME_MARKERS.search(marker) and element.getparent() is not None:
            element.drop_tree()
    blocks = [
        element.text_content()
        for element in pruned.iter(*_FALLBACK_BLOCKS)
        if not any(ancestor.tag in _FALLBACK_BLOCKS for ancestor in element.iterancestors())
    ]
    for lines in (blocks, _visible_lines(pruned), _visible_lines(visible)):
        text = _normalise_lines(lines)
        if text:
            return text
    return ""


# --------------------------------------------------------------------------
# public API


def extract(html: str | bytes, *, url: str | None = None) -> Extracted:
    """The main text of a page without comments, with its metadata.

    Raises :class:`ExtractionError` for empty input, binary input and pages
    with no text at all. Input above :data:`MAX_INPUT_BYTES` is cut to that
    size (``Extracted.truncated`` says so) rather than refused, since the
    story is almost always in the head of the page.
    """
    if html is None or len(html) == 0:
        raise ExtractionError("empty input: there is no HTML to extract text from")
    if not isinstance(html, (str, bytes)):
        raise TypeError(f"extract() takes str or bytes, not {type(html).__name__}")
    where = f" at {url}" if url else ""
    if isinstance(html, bytes):
        reason = _binary_reason_bytes(html)
        if reason:
            raise ExtractionError(f"input{where} is {reason}, not an HTML page")
    capped, truncated = _cap(html)
    if truncated:
        LOGGER.warning(
            "page%s is %d bytes/characters; only the first %d (MAX_INPUT_BYTES) are extracted",
            where, len(html), MAX_INPUT_BYTES,
        )
    text_in = decode_html(capped) if isinstance(capped, bytes) else capped
    reason = _binary_reason_text(text_in)
    if reason:
        raise ExtractionError(f"input{where} is {reason}, not an HTML page")
    if not text_in.strip():
        raise ExtractionError(f"input{where} is only whitespace: there is no text to extract")

    tree = load_html(text_in)
    if tree is None:
        # trafilatura rejects fragments ("<p>quote</p>", bare text) as dubious;
        # a pasted excerpt is still worth its text
        tree = load_html(f"<html><body>{text_in}</body></html>")
    if tree is None:
        raise ExtractionError(f"input{where} could not be parsed as HTML")

    elements = sum(1 for _ in tree.iter())
    fast = elements > MAX_ELEMENTS_FOR_FALLBACKS
    if fast:
        LOGGER.info(
            "page%s has %d elements (> MAX_ELEMENTS_FOR_FALLBACKS=%d): extracting without fallbacks",
            where, elements, MAX_ELEMENTS_FOR_FALLBACKS,
        )
    document = None
    try:
        # bare_extraction copies a tree it is given, so `tree` stays intact
        document = trafilatura.bare_extraction(tree, url=url, fast=fast, **_TRAFILATURA_OPTIONS)
    except Exception:  # a library bug on hostile markup must not lose the page
        LOGGER.warning("trafilatura failed%s; using the simple extractor", where, exc_info=True)

    text = (document.text or "").strip() if document is not None else ""
    if not text:
        text = _fallback_text(tree)
    if not text:
        raise ExtractionError(f"page{where} has no readable text (no paragraphs, no body text)")

    return Extracted(
        title=(document.title if document is not None else None) or _title(tree),
        text=text,
        published=(document.date or None) if document is not None else None,
        site_name=(document.sitename or None) if document is not None else None,
        canonical_url=_canonical_url(tree, url),
        language=_language(tree),
        truncated=truncated,
    )


def _title(tree: HtmlElement) -> str | None:
    title = tree.findtext(".//title")
    if not title:
        return None
    return _WS_RE.sub(" ", title).strip() or None


def extract_text(html: str | bytes) -> str:
    """Main text only: what the evaluation of ``.html`` pairs compares."""
    return extract(html).text


def content_hash(text: str) -> str:
    """sha256 of the text with Unicode (NFC) and whitespace normalised, so a
    page re-served with different line breaks or indentation is recognised
    as unchanged and is not matched again."""
    normalised = " ".join(unicodedata.normalize("NFC", text).split())
    return hashlib.sha256(normalised.encode("utf-8")).hexdigest()
