"""Document frequencies learned from the pages a crawl collects.

Why: independent reports of one event share its press statements, agency boilerplate
and topic vocabulary. A passage that many unrelated pages contain is weak evidence that
a page copied a story; the pages a crawl stores anyway are the natural background to
learn that from. The model is a plain document-frequency table of hashed keys:

* word stems (for term weights, an IDF), and
* word n-grams of the folded token stream (for "this wording is common").

Keys are xxhash64 of the text with a kind prefix, so the table is compact, has no
vocabulary to store and serialises to bytes for the database.
"""

from __future__ import annotations

import json
import math
import struct
from collections.abc import Iterable

import numpy as np
import xxhash

from crawler.matching import thresholds as T
from crawler.matching.text import STOPWORDS, stem, words

__all__ = ["Background", "BackgroundFormatError", "ngram_key", "ngram_keys", "stem_key"]

_MAGIC = b"CHBG1"
# Memoised idf values kept at most (a crawl's vocabulary is unbounded; the words that
# recur from page to page are few).
_IDF_CACHE_SIZE = 1 << 17


class BackgroundFormatError(ValueError):
    """Bytes given to `Background.from_bytes` are not a serialised Background."""


def stem_key(s: str) -> int:
    return xxhash.xxh64_intdigest(("u\x00" + s).encode())


def ngram_key(tokens: Iterable[str]) -> int:
    return xxhash.xxh64_intdigest(("n\x00" + " ".join(tokens)).encode())


def ngram_keys(tokens: list[str], n: int) -> list[int]:
    """`ngram_key` of every window of `n` consecutive tokens, in order (no slice per window)."""
    digest = xxhash.xxh64_intdigest
    return [digest(("n\x00" + " ".join(g)).encode()) for g in zip(*(tokens[k:] for k in range(n)))]


class Background:
    """Document frequencies of stems and word n-grams over a collection of pages.

    `add()` each page once (re-adding the same page counts it twice: callers dedupe,
    e.g. by checksum). Frequencies include every page added, so when the page under
    comparison is itself in the background, `compare()` subtracts it (`df - 1`)."""

    __slots__ = ("n_docs", "ngram", "_df", "_idf")

    def __init__(self, *, ngram: int = T.BACKGROUND_NGRAM) -> None:
        if ngram < 2 or ngram > 8:
            raise ValueError(f"Background ngram must be 2..8, got {ngram}")
        self.n_docs = 0
        self.ngram = ngram
        self._df: dict[int, int] = {}
        self._idf: dict[str, float] = {}  # idf(s) memo, cleared by add()

    @classmethod
    def from_texts(cls, texts: Iterable[str], *, ngram: int = T.BACKGROUND_NGRAM) -> Background:
        bg = cls(ngram=ngram)
        for t in texts:
            bg.add(t)
        return bg

    def keys_of(self, text: str) -> set[int]:
        toks = words(text)
        keys = {stem_key(stem(t)) for t in toks if t not in STOPWORDS}
        keys.update(ngram_keys(toks, self.ngram))
        return keys

    def add(self, text: str) -> None:
        df = self._df
        for k in self.keys_of(text):
            df[k] = df.get(k, 0) + 1
        self.n_docs += 1
        self._idf.clear()

    def __len__(self) -> int:
        return self.n_docs

    def df(self, key: int) -> int:
        return self._df.get(key, 0)

    def ngram_dfs(self, tokens: list[str]) -> list[int]:
        """df of the n-gram starting at each token (`len(tokens) - ngram + 1` of them)."""
        get = self._df.get
        return [get(k, 0) for k in ngram_keys(tokens, self.ngram)]

    def stem_df(self, s: str) -> int:
        return self._df.get(stem_key(s), 0)

    def idf(self, s: str, *, exclude_self: bool = True) -> float:
        """Smoothed inverse document frequency of a stem.

        A prior of `BACKGROUND_IDF_PRIOR_DOCS` pseudo-documents that do not contain the
        stem keeps a small background (a handful of pages) from calling a word common
        just because it is in three of eight pages.

        Memoised (the verifier weighs every stem of every page it compares)."""
        if exclude_self and s in self._idf:
            return self._idf[s]
        df = self.stem_df(s)
        if exclude_self and df > 0:
            df -= 1
        n = max(self.n_docs - (1 if exclude_self else 0), 0) + T.BACKGROUND_IDF_PRIOR_DOCS
        value = math.log((n + 1) / (df + 1))
        if exclude_self:
            if len(self._idf) >= _IDF_CACHE_SIZE:
                self._idf.clear()
            self._idf[s] = value
        return value

    def max_idf(self) -> float:
        n = max(self.n_docs - 1, 0) + T.BACKGROUND_IDF_PRIOR_DOCS
        return math.log(n + 1)

    # -- serialisation ---------------------------------------------------------------

    def to_bytes(self) -> bytes:
        keys = np.fromiter(self._df.keys(), dtype=np.uint64, count=len(self._df))
        counts = np.fromiter(self._df.values(), dtype=np.uint32, count=len(self._df))
        header = json.dumps(
            {"n_docs": self.n_docs, "ngram": self.ngram, "size": len(self._df), "hash": "xxh64"}
        ).encode()
        return b"".join(
            [_MAGIC, struct.pack("<I", len(header)), header, keys.astype("<u8").tobytes(),
             counts.astype("<u4").tobytes()]
        )

    @classmethod
    def from_bytes(cls, data: bytes) -> Background:
        if not data.startswith(_MAGIC) or len(data) < len(_MAGIC) + 4:
            raise BackgroundFormatError("not a copyhound Background (bad magic)")
        off = len(_MAGIC)
        (hlen,) = struct.unpack_from("<I", data, off)
        off += 4
        try:
            header = json.loads(data[off : off + hlen])
            size, n_docs, ngram = int(header["size"]), int(header["n_docs"]), int(header["ngram"])
        except (ValueError, KeyError, TypeError) as exc:
            raise BackgroundFormatError(f"bad Background header: {exc}") from exc
        if header.get("hash") != "xxh64":
            raise BackgroundFormatError(f"unsupported Background hash {header.get('hash')!r}")
        off += hlen
        if len(data) != off + size * 12:
            raise BackgroundFormatError(
                f"Background payload is {len(data) - off} bytes, expected {size * 12}"
            )
        keys = np.frombuffer(data, dtype="<u8", count=size, offset=off)
        counts = np.frombuffer(data, dtype="<u4", count=size, offset=off + size * 8)
        bg = cls(ngram=ngram)
        bg.n_docs = n_docs
        bg._df = dict(zip(keys.tolist(), counts.tolist()))
        return bg
