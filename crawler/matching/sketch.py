"""Fingerprints for the candidate index: cheap views of a text that survive rewording.

Why several views: a plain MinHash of word 5-grams misses every real derivative we
have seen (rewrites, round-trip machine translations, condensations, SEO rewrites
share 0.4-11 % of their 5-grams with the story). Each view below answers one kind of
reuse, and all of them are computed from ONE pass over the tokens:

* ``shingles`` -- word 5-grams, content-sampled ("0 mod p": a shingle is kept when
  its hash is 0 modulo ``shingle_sample``). Story and page keep the SAME shingles
  wherever they occur, so the count of shared anchors estimates the number of shared
  5-grams: containment, not Jaccard. This catches verbatim copies inside noisy pages
  and excerpts of a few paragraphs inside another article.
* ``pairs`` -- unordered pairs of content stems that occur within ``pair_window``
  content words of each other, sampled the same way. Rewrites and machine
  translations replace the glue words and reorder clauses, but the story's specific
  content words still travel together; on the calibration corpora rewrites share 27+
  such pairs with their source while unrelated news shares 0-5.
* ``minhash`` -- a datasketch MinHash (scheme ``affine32``) of the set of content
  stems: the Jaccard estimate used to rank candidates, stored compactly as a
  LeanMinHash.

Stems are 6-character prefixes of content words: crude, but a prefix also survives
the garbled names of machine translation ("Deepsek"/"DeepSeek" -> "deepse").

Everything here is a pure function of the text and ``SKETCH_PARAMS``. Changing ANY
tokenisation, stemming, stopword or hashing detail changes the stored fingerprints, so
it must bump ``SKETCH_PARAMS["version"]``; a stored sketch with other params is
refused with a ValueError instead of silently matching nothing.
"""

from __future__ import annotations

import json
import re
import struct
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import xxhash
from datasketch import LeanMinHash, MinHash

__all__ = [
    "SKETCH_PARAMS",
    "PageFeatures",
    "SketchParamsError",
    "Sketcher",
    "StorySketch",
    "check_params",
    "sketch_story",
]

# The parameters every stored sketch records. Anything that changes the bytes a text
# produces belongs here (the values are compared as a whole when a sketch is loaded).
SKETCH_PARAMS: dict[str, Any] = {
    "version": 1,  # bump on any change to tokenising/stemming/stopwords/hashing below
    "scheme": "affine32",  # datasketch 2.x MinHash permutation scheme
    "num_perm": 128,
    "seed": 1,
    "hash": "xxh3_64",  # token hash; the MinHash sees the low 32 bits of stem hashes
    "tokens": "bytes-split-v1",
    "stem": "prefix6",
    "stopwords": "en-v1",
    "min_content_len": 3,  # shorter alphabetic tokens are not content words
    "shingle_words": 5,
    "shingle_sample": 4,  # keep 1 shingle in 4 (power of two)
    "pair_window": 3,
    "pair_sample": 4,  # keep 1 pair in 4 (power of two)
}


class SketchParamsError(ValueError):
    """A stored sketch was made with other parameters than the current ones."""


def check_params(params: Mapping[str, Any] | str | None, expected: Mapping[str, Any] = SKETCH_PARAMS) -> None:
    """Raise SketchParamsError unless `params` (a dict or its JSON, as stored in
    Story.fingerprint_params) equals `expected`. Why strict equality: hash values carry
    no trace of how they were made, so any difference silently breaks matching."""
    if isinstance(params, (str, bytes)):
        try:
            params = json.loads(params)
        except ValueError as exc:
            raise SketchParamsError(f"sketch params are not valid JSON: {exc}") from None
    if not isinstance(params, Mapping):
        raise SketchParamsError(f"sketch params missing or not a mapping: {params!r}")
    if dict(params) != dict(expected):
        diff = sorted(k for k in set(params) | set(expected) if params.get(k) != expected.get(k))
        detail = ", ".join(f"{k}: stored {params.get(k)!r} != current {expected.get(k)!r}" for k in diff)
        raise SketchParamsError(
            f"sketch made with other parameters ({detail}); re-sketch the story from its text"
        )


# Function words and reporting verbs: they carry no evidence of copying. Frozen with
# SKETCH_PARAMS["stopwords"]; editing it requires a version bump.
_STOPWORDS = frozenset(
    """a about above after again against all almost along also although am among an and
    another any anyone anything are around as at be became because become been before
    being below between both but by can cannot could did do does doing done down during
    each either else even ever every few for from further get gets got had has have
    having he her here hers herself him himself his how however i if in including into is
    it its itself just like many me might more most much must my myself neither never no
    nor not now of off often on once one only onto or other others otherwise our ours
    ourselves out over own per perhaps quite rather same says said say see seen shall
    she should since so some still such than that the their theirs them themselves then
    there therefore these they this those though through thus to too toward towards
    under until up upon us very via was we well were what whatever when where whether
    which while who whom whose why will with within without would yet you your yours
    yourself yourselves told tell tells according also new two three""".split()
)

# Tokens: the UTF-8 bytes split on whitespace after ASCII punctuation and the Unicode
# "General Punctuation" block (curly quotes, dashes, ellipsis, nbsp) became spaces.
# Hyphens, dots and apostrophes split ("DeepSeek's" -> "deepseek", "s"). Done on bytes
# because Python's regex engine is 3-5x slower than translate()+split() here; case is
# folded per distinct token in the cache, not per text.
_ASCII_PUNCT = b"!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~"
_PUNCT_TABLE = bytes.maketrans(_ASCII_PUNCT, b" " * len(_ASCII_PUNCT))
_GENERAL_PUNCT = re.compile(rb"\xe2\x80[\x80-\xbf]|\xc2[\xa0\xab\xbb]")

_M64 = np.uint64(0xFFFFFFFFFFFFFFFF)
_LO32 = np.uint64(0xFFFFFFFF)
_SH32 = np.uint64(32)
# Odd multipliers for combining token hashes into shingle / pair hashes.
_MULS = np.array(
    [0x9E3779B97F4A7C15, 0xC2B2AE3D27D4EB4F, 0x165667B19E3779F9, 0xD6E8FEB86659FD93, 0xFF51AFD7ED558CCD,
     0x94D049BB133111EB, 0xBF58476D1CE4E5B9, 0x27D4EB2F165667C5],
    dtype=np.uint64,
)


def _fmix64(h: np.ndarray) -> np.ndarray:
    """MurmurHash3 finalizer on a uint64 array (wrapping multiplication intended)."""
    h = h ^ (h >> np.uint64(33))
    h = h * np.uint64(0xFF51AFD7ED558CCD)
    h = h ^ (h >> np.uint64(33))
    h = h * np.uint64(0xC4CEB9FE1A85EC53)
    return h ^ (h >> np.uint64(33))


def _identity(x: int) -> int:
    return x


def sorted_unique(a: np.ndarray) -> np.ndarray:
    """np.unique for integer keys. Why not np.unique: numpy 2 takes a hash-based path
    for integers that is 10-30x slower than sorting at the sizes seen here."""
    a = np.sort(a)
    keep = np.empty(len(a), dtype=bool)
    keep[:1] = True
    np.not_equal(a[1:], a[:-1], out=keep[1:])
    return a[keep]


def _per_text(owner: np.ndarray, keys: np.ndarray, n_texts: int) -> list[np.ndarray]:
    """Sorted unique uint32 `keys` of each text, from (owner text, key) rows."""
    both = sorted_unique((owner.astype(np.uint64) << _SH32) | keys.astype(np.uint64))
    bounds = np.searchsorted(both >> _SH32, np.arange(n_texts + 1, dtype=np.uint64))
    flat = (both & _LO32).astype(np.uint32)
    return [flat[bounds[t] : bounds[t + 1]] for t in range(n_texts)]


_EMPTY_U32 = np.zeros(0, dtype=np.uint32)


@dataclass(frozen=True, slots=True, eq=False)
class PageFeatures:
    """The sampled views of one text (sorted unique uint32 keys per view)."""

    shingles: np.ndarray
    pairs: np.ndarray
    stems: np.ndarray  # unique content-stem hashes (uint32) -- MinHash input
    n_words: int


@dataclass(frozen=True, slots=True, eq=False)
class StorySketch:
    """Everything the index needs about a story, serialisable for Story.fingerprint."""

    minhash: LeanMinHash
    shingles: np.ndarray
    pairs: np.ndarray
    n_words: int
    params: Mapping[str, Any]

    _MAGIC = b"CHSK"
    _FORMAT = 1

    def to_bytes(self) -> bytes:
        params = json.dumps(dict(self.params), sort_keys=True, separators=(",", ":")).encode()
        mh = bytearray(self.minhash.bytesize("<"))
        self.minhash.serialize(mh, "<")
        sh = np.ascontiguousarray(self.shingles, dtype="<u4").tobytes()
        pr = np.ascontiguousarray(self.pairs, dtype="<u4").tobytes()
        head = struct.pack("<4sHI", self._MAGIC, self._FORMAT, len(params))
        body = struct.pack("<IIII", self.n_words, len(mh), len(self.shingles), len(self.pairs))
        return b"".join((head, params, body, bytes(mh), sh, pr))

    @classmethod
    def from_bytes(cls, data: bytes, *, params: Mapping[str, Any] = SKETCH_PARAMS) -> StorySketch:
        """Load a sketch; SketchParamsError if it was made with other `params`,
        ValueError if the bytes are not a sketch at all."""
        try:
            view = memoryview(bytes(data))
            magic, fmt, plen = struct.unpack_from("<4sHI", view, 0)
            if magic != cls._MAGIC:
                raise ValueError("not a copyhound story sketch (bad magic)")
            if fmt != cls._FORMAT:
                raise SketchParamsError(f"sketch byte format {fmt} is not the supported {cls._FORMAT}")
            off = struct.calcsize("<4sHI")
            stored = json.loads(bytes(view[off : off + plen]))
            check_params(stored, params)
            off += plen
            n_words, mh_len, n_sh, n_pr = struct.unpack_from("<IIII", view, off)
            off += 16
            mh = LeanMinHash.deserialize(view[off : off + mh_len], "<")
            off += mh_len
            sh = np.frombuffer(view, dtype="<u4", count=n_sh, offset=off).astype(np.uint32)
            off += 4 * n_sh
            pr = np.frombuffer(view, dtype="<u4", count=n_pr, offset=off).astype(np.uint32)
            off += 4 * n_pr
        except SketchParamsError:
            raise
        except (struct.error, ValueError, TypeError) as exc:
            raise ValueError(f"corrupt or truncated story sketch: {exc}") from None
        if off != len(view):
            raise ValueError(f"corrupt story sketch: {len(view) - off} trailing bytes")
        if mh.scheme != params["scheme"] or len(mh) != params["num_perm"] or mh.seed != params["seed"]:
            raise SketchParamsError("sketch MinHash disagrees with its recorded params")
        return cls(minhash=mh, shingles=sh, pairs=pr, n_words=n_words, params=dict(params))


class Sketcher:
    """Computes PageFeatures / StorySketch for one parameter set.

    Holds a bounded per-instance cache word -> packed hashes (word hashing is most of
    the per-token cost and vocabularies repeat), so make one per index, not per text.
    """

    CACHE_MAX = 500_000  # words; cleared when full (a crawl's vocabulary is far smaller)

    def __init__(self, params: Mapping[str, Any] = SKETCH_PARAMS) -> None:
        params = dict(params)
        check_params(params, SKETCH_PARAMS)  # only the current implementation exists
        self.params = params
        self.k = int(params["shingle_words"])
        self.sh_mask = np.uint64(int(params["shingle_sample"]) - 1)
        self.pr_mask = np.uint64(int(params["pair_sample"]) - 1)
        self.window = int(params["pair_window"])
        self.min_len = int(params["min_content_len"])
        self.num_perm = int(params["num_perm"])
        self.seed = int(params["seed"])
        self.scheme = params["scheme"]
        self._perms = MinHash(num_perm=self.num_perm, seed=self.seed, scheme=self.scheme).permutations
        self._cache: dict[str, int] = {}

    # -- tokens ---------------------------------------------------------------------

    def _learn(self, tok: bytes) -> int:
        """Packed (31-bit word hash << 32 | 32-bit stem hash) of one raw token; stem
        hash 0 = not a content word. Packed below 2**63 so numpy converts it fast."""
        if len(self._cache) >= self.CACHE_MAX:
            self._cache.clear()
        t = tok.decode("utf-8", "ignore").lower()
        wh = xxhash.xxh3_64_intdigest(t.encode()) & 0x7FFFFFFF
        if t in _STOPWORDS or (len(t) < self.min_len and not any(c.isdigit() for c in t)):
            sh = 0
        else:
            sh = (xxhash.xxh3_64_intdigest(t[:6].encode()) & 0xFFFFFFFF) or 1
        v = (wh << 32) | sh
        self._cache[tok] = v
        return v

    def _tokens(self, text: str) -> np.ndarray:
        if not isinstance(text, str):
            raise TypeError(f"text must be str, got {type(text).__name__}")
        b = text.encode("utf-8", "ignore")
        if b"\xe2\x80" in b or b"\xc2" in b:
            b = _GENERAL_PUNCT.sub(b" ", b)
        toks = b.translate(_PUNCT_TABLE).split()
        vals = list(map(self._cache.get, toks))
        if None in vals:
            vals = [self._learn(t) if v is None else v for t, v in zip(toks, vals)]
        return np.array(vals, dtype=np.int64).view(np.uint64)

    # -- views ----------------------------------------------------------------------

    def features(self, text: str) -> PageFeatures:
        return self.features_many([text])[0]

    def features_many(self, texts: Sequence[str]) -> list[PageFeatures]:
        """`features` of each text, computed on all texts' tokens at once.

        Why batched: a page costs a few dozen numpy calls whose fixed overhead is most
        of the time on news-sized texts; one pass over the concatenated tokens, with
        windows that cross a text boundary masked out, pays it once per batch."""
        packs = [self._tokens(t) for t in texts]
        lens = np.array([len(p) for p in packs], dtype=np.int64)
        if not lens.any():
            return [PageFeatures(_EMPTY_U32, _EMPTY_U32, _EMPTY_U32, 0) for _ in packs]
        packed = np.concatenate(packs)
        owner = np.repeat(np.arange(len(packs)), lens)
        w = packed >> _SH32
        s = packed & _LO32
        content = s != 0
        s, s_owner = s[content], owner[content]
        n_texts = len(packs)
        # word k-gram shingles; a text shorter than k words is one shingle of all of them
        k = self.k
        m = max(0, len(w) - k + 1)
        h = w[:m] * _MULS[0]
        for j in range(1, k):
            h = h + w[j : j + m] * _MULS[j]
        keep = owner[:m] == owner[k - 1 : k - 1 + m]
        h, h_owner = h[keep], owner[:m][keep]
        short = np.flatnonzero((lens > 0) & (lens < k))
        if len(short):
            ends = np.cumsum(lens)
            extra = []
            for t in short:
                seg = w[ends[t] - lens[t] : ends[t]]
                extra.append(np.sum(seg * _MULS[: len(seg)], dtype=np.uint64))
            h = np.concatenate((h, np.array(extra, dtype=np.uint64)))
            h_owner = np.concatenate((h_owner, short))
        h = _fmix64(h)
        sampled = (h & self.sh_mask) == 0
        shingles = _per_text(h_owner[sampled], (h[sampled] >> _SH32).astype(np.uint32), n_texts)
        # content-stem pairs within the window, never across two texts
        parts, part_owner = [], []
        for d in range(1, self.window + 1):
            a, b = s[:-d], s[d:]
            keep = (a != b) & (s_owner[:-d] == s_owner[d:])
            a, b = a[keep], b[keep]
            parts.append(_fmix64(np.minimum(a, b) * _MULS[5] + np.maximum(a, b) * _MULS[6]))
            part_owner.append(s_owner[:-d][keep])
        ph, ph_owner = np.concatenate(parts), np.concatenate(part_owner)
        sampled = (ph & self.pr_mask) == 0
        pairs = _per_text(ph_owner[sampled], (ph[sampled] >> _SH32).astype(np.uint32), n_texts)
        stems = _per_text(s_owner, s.astype(np.uint32), n_texts)
        return [PageFeatures(shingles[t], pairs[t], stems[t], int(lens[t])) for t in range(n_texts)]

    def minhash(self, stems: np.ndarray) -> MinHash:
        """MinHash of a content-stem set: datasketch's affine32 permutations over our
        xxhash values (identity hashfunc: the input is already a 32-bit hash)."""
        mh = MinHash(
            num_perm=self.num_perm, seed=self.seed, hashfunc=_identity,
            permutations=self._perms, scheme=self.scheme,
        )
        if len(stems):
            mh.update_batch(stems.tolist())
        return mh

    def sketch(self, text: str) -> StorySketch:
        f = self.features(text)
        return StorySketch(
            minhash=LeanMinHash(self.minhash(f.stems)),
            shingles=f.shingles,
            pairs=f.pairs,
            n_words=f.n_words,
            params=self.params,
        )


def sketch_story(text: str, sketcher: Sketcher | None = None) -> bytes:
    """Story.fingerprint bytes for `text` (store SKETCH_PARAMS beside them)."""
    return (sketcher or Sketcher()).sketch(text).to_bytes()
