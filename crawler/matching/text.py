"""Pure text functions shared by the candidate index and the verifier.

Everything here is deterministic and dependency-free so a sketch computed at crawl
time and one computed at query time see exactly the same tokens. `normalize()` and
`words()` are a stable interface (the MinHash index imports them): change their
output and every stored sketch silently stops matching.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from functools import lru_cache
from itertools import accumulate

__all__ = [
    "STOPWORDS",
    "Sentence",
    "content_stem",
    "content_words",
    "is_rare_token",
    "normalize",
    "sentence_spans",
    "sentences",
    "stem",
    "token_spans",
    "word_spans",
    "words",
]

# Typographic variants that copies and machine translations swap freely; folding them
# means a curly-quoted copy of a straight-quoted story still matches word for word.
_TRANSLATE = str.maketrans(
    {
        "\u2018": "'",
        "\u2019": "'",
        "\u201a": "'",
        "\u201b": "'",
        "\u2032": "'",
        "\u00b4": "'",
        "`": "'",
        "\u201c": '"',
        "\u201d": '"',
        "\u201e": '"',
        "\u201f": '"',
        "\u00ab": '"',
        "\u00bb": '"',
        "\u2033": '"',
        "\u2010": "-",
        "\u2011": "-",
        "\u2012": "-",
        "\u2013": "-",
        "\u2014": "-",
        "\u2015": "-",
        "\u2212": "-",
        "\u00a0": " ",
        "\u200b": "",
        "\u200c": "",
        "\u200d": "",
        "\ufeff": "",
        "\u00ad": "",
    }
)
_WS = re.compile(r"[ \t\r\f\v]+")
_BLANKS = re.compile(r"\n\s*\n+")


# UTF-8 punctuation decoded as Latin-1 ("\u00e2\u0080\u009c" for a curly quote) is
# common in scraped and legacy files. C1 control characters never occur in real text,
# so such a triple is blanked out with spaces of the same length (offsets survive).
_MOJIBAKE = re.compile("[\u00c2-\u00f4][\u0080-\u009f][\u0080-\u00bf]?")


_C1 = re.compile("[\u0080-\u009f]")


def _demojibake(text: str) -> str:
    if _C1.search(text) is None:
        return text
    return _MOJIBAKE.sub(lambda m: " " * len(m.group()), text)


def normalize(text: str) -> str:
    """NFKC, folded quotes/dashes, collapsed whitespace (paragraph breaks kept as one
    blank line). Offsets into the result do NOT map back to the input: the verifier
    tokenises the original text with `word_spans` instead."""
    text = unicodedata.normalize("NFKC", _demojibake(text)).translate(_TRANSLATE)
    text = _WS.sub(" ", text)
    text = _BLANKS.sub("\n\n", text)
    return "\n".join(line.strip() for line in text.split("\n")).strip()


# A token is a run of letters/digits, allowing inner dots and commas in numbers ("3.5",
# "1,000"), letters mixed with digits as one token ("R2", "A100") and inner
# apostrophes in words ("don't"). Hyphens split: copies write
# "less-powerful" and "less powerful" interchangeably.
_TOKEN = re.compile(
    r"\d+(?:[.,]\d+)*(?![^\W_])|[^\W_]*\d[^\W_]*|[^\W\d_]+(?:['\u2019][^\W\d_]+)*|\w+", re.UNICODE
)
# The same tokens, found faster: a plain run of letters (not continued by a digit or an
# apostrophe) is tried first, since the first alternative of `_TOKEN` that matches there
# gives that same run; captured, so `split` returns gaps and tokens alternately. On
# lower-cased ASCII text the ASCII flag gives the same classes and cheaper tests.
_TOKEN_FAST_PATTERN = rf"([^\W\d_]+(?![^\W_]|['\u2019])|{_TOKEN.pattern})"
_TOKEN_FAST = re.compile(_TOKEN_FAST_PATTERN)
_ASCII_TOKEN_FAST = re.compile(_TOKEN_FAST_PATTERN, re.ASCII)


def _fold(token: str) -> str:
    """Lower case and strip accents so 'Zhejiang'/'ZHEJIANG' and 'café'/'cafe' agree."""
    token = token.lower()
    if token.isascii():
        return token
    decomposed = unicodedata.normalize("NFKD", token)
    return "".join(c for c in decomposed if not unicodedata.combining(c))


def _strip_possessive(tokens: list[str]) -> list[str]:
    return [t[:-2] if t.endswith("'s") else t for t in tokens]


def words(text: str) -> list[str]:
    """Lower-cased, accent-folded word tokens of `text` (normalised first).

    Possessive "'s" is dropped so "DeepSeek's" and "DeepSeek" are one token."""
    norm = normalize(text)
    if norm.isascii():  # folding is lower-casing, and case never changes a token's extent
        return _strip_possessive(_ASCII_TOKEN_FAST.findall(norm.lower()))
    return [t for t in _strip_possessive([_fold(raw) for raw in _TOKEN_FAST.findall(norm)]) if t]


def token_spans(text: str) -> tuple[list[str], list[tuple[int, int]]]:
    """`word_spans` as two parallel lists, (tokens, (start, end) spans).

    The verifier tokenises every page: one `re.split` pass (gaps and tokens alternate,
    so offsets are running sums of lengths) is much cheaper than a match object and a
    tuple per token."""
    ascii_text = text.isascii()  # no mojibake; folding is lower-casing, same extents
    if ascii_text:
        parts = _ASCII_TOKEN_FAST.split(text.lower())
    else:
        parts = _TOKEN_FAST.split(_demojibake(text))
    offsets = list(accumulate(map(len, parts)))
    spans = list(zip(offsets[0::2], offsets[1::2]))
    if ascii_text:
        return _strip_possessive(parts[1::2]), spans
    tokens = _strip_possessive(
        [raw.lower() if raw.isascii() else _fold(unicodedata.normalize("NFKC", raw).translate(_TRANSLATE))
         for raw in parts[1::2]]
    )
    if "" in tokens:
        spans = [sp for t, sp in zip(tokens, spans) if t]
        tokens = [t for t in tokens if t]
    return tokens, spans


def word_spans(text: str) -> list[tuple[str, int, int]]:
    """(token, start, end) over the ORIGINAL text, tokens folded like `words()`.

    Tokenising per character run of the original keeps offsets exact; NFKC is applied
    per token, which is what `words()` does up to whitespace handling."""
    tokens, spans = token_spans(text)
    return [(t, a, b) for t, (a, b) in zip(tokens, spans)]


# Short English stopword list: function words carry no evidence of copying; keeping the
# list short keeps negations and content-bearing adverbs in play.
STOPWORDS = frozenset(
    """a about above after again against all also am an and any are as at be because been
    before being below between both but by can could did do does doing down during each
    few for from further had has have having he her here hers herself him himself his how
    i if in into is it its itself just me more most my myself no nor not of off on once
    only or other our ours ourselves out over own same she should so some such than that
    the their theirs them themselves then there these they this those through to too under
    until up very was we were what when where which while who whom why will with would you
    your yours yourself yourselves said says say told according s t will would may might
    shall must one also new""".split()
)

_SUFFIXES = (
    "ational", "ization", "fulness", "iveness", "ousness", "ations", "ation", "ments",
    "ment", "ness", "ings", "ing", "edly", "ies", "ied", "ers", "est", "ed", "ly", "es",
    "er", "s",
)


@lru_cache(maxsize=1 << 16)
def stem(token: str) -> str:
    """Light suffix stripping: enough to let 'launched'/'launch'/'launches' meet,
    cheap enough to run on every token of every page. Not a linguistic stemmer."""
    if len(token) <= 3 or not token.isalpha():
        return token
    for suf in _SUFFIXES:
        if token.endswith(suf) and len(token) - len(suf) >= 3:
            base = token[: -len(suf)]
            if suf in ("ies", "ied"):
                return base + "y"
            # launchED -> launch, stopPED -> stop
            if len(base) > 3 and base[-1] == base[-2] and base[-1] not in "lsz":
                base = base[:-1]
            return base
    return token


@lru_cache(maxsize=1 << 16)
def content_stem(token: str) -> str | None:
    """The verifier's content word: `stem(token)`, or None for a stopword or a single
    letter. Cached as one call because the verifier asks for every token of every page."""
    if token in STOPWORDS or (len(token) == 1 and token.isalpha()):
        return None
    return stem(token)


def content_words(tokens: list[str]) -> list[str]:
    """Stemmed tokens without stopwords."""
    return [stem(t) for t in tokens if t not in STOPWORDS]


def is_rare_token(raw: str, folded: str) -> bool:
    """Names and figures: tokens that carry a story's exclusive details.

    A number, or a word written with a capital letter somewhere (checked on the raw
    token; sentence-initial capitals are filtered by the caller)."""
    if any(c.isdigit() for c in folded):
        return True
    return any(c.isupper() for c in raw) and folded not in STOPWORDS


@dataclass(frozen=True, slots=True)
class Sentence:
    start: int
    end: int
    text: str


# Sentence ends: . ! ? (optionally followed by closing quotes/brackets) then space and a
# capital/digit/quote, or any line break. Common abbreviations are protected below.
_SENT_END = re.compile(
    r"""(?=[.!?\n])"""  # changes no match; lets the engine skip other characters quickly
    r"""(?:[.!?]+["')\]\u201d\u2019]*(?=\s+["'(\[\u201c\u2018]?[A-Z0-9\u00C0-\u024F])|\n[ \t]*\n?)"""
)
_ABBREV = frozenset(
    "mr mrs ms dr prof st jr sr inc ltd co corp no vs etc jan feb mar apr jun jul aug sep "
    "sept oct nov dec gen gov sen rep col lt sgt capt u.s u.k e.g i.e fig".split()
)


def _hard_wrapped(text: str) -> bool:
    """True when single line breaks are layout (text wrapped at ~70 columns), not
    structure: most long lines that continue into another line end mid-sentence."""
    lines = text.split("\n")
    long_inner = wrapped = 0
    for line, nxt in zip(lines, lines[1:]):
        line = line.rstrip()
        if len(line) >= 40 and nxt.strip():
            long_inner += 1
            if line[-1] not in ".!?:;\"')\u201d\u2019":
                wrapped += 1
    return long_inner >= 3 and wrapped >= 0.5 * long_inner


def sentences(text: str) -> list[Sentence]:
    """Split `text` into sentences with character offsets into `text` itself.

    Line breaks end a sentence (headlines, subheads, list items and page chrome are
    lines of their own) unless the text is hard-wrapped or the next line continues in
    lower case; spans are stripped of surrounding whitespace, empty spans dropped."""
    return [Sentence(a, b, text[a:b]) for a, b in sentence_spans(text)]


def sentence_spans(text: str) -> list[tuple[int, int]]:
    """(start, end) of each of `sentences(text)`, without building Sentence objects
    (the verifier splits every page and needs only the offsets)."""
    out: list[tuple[int, int]] = []
    start = 0
    wrapped = "\n" in text and _hard_wrapped(text)
    for m in _SENT_END.finditer(text):
        g = m.group()
        if g[0] == ".":
            # "Mr. Smith", "U.S. officials": the word before the dot is an abbreviation
            # or a single initial.
            j = m.start()
            i = j
            while i > 0 and (text[i - 1].isalpha() or text[i - 1] == "."):
                i -= 1
            prev = text[i:j].lower()
            if prev in _ABBREV or (len(prev) == 1 and prev.isalpha()):
                continue
        elif g[0] == "\n" and g.count("\n") == 1:
            k = m.end()
            while k < len(text) and text[k] in " \t":
                k += 1
            if wrapped or (k < len(text) and text[k].islower()):
                continue
        end = m.end() if g[0] != "\n" else m.start()
        _append(out, text, start, end)
        start = m.end()
    _append(out, text, start, len(text))
    return out


def _append(out: list[tuple[int, int]], text: str, start: int, end: int) -> None:
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    if end > start:
        out.append((start, end))
