"""The story index: which registered stories might a page be derived from?

Why it looks like this: verification (`compare`) is the expensive step, and a story
this index does not return is never verified, so recall comes first and the list is
kept short second. Real derivatives share almost no word 5-grams with their story, so
a Jaccard-threshold MinHash-LSH alone cannot find them: with content-word Jaccard of
0.2 for a rewrite against 0.03-0.09 for unrelated news, any banding that catches the
rewrite also returns a growing share of the whole index. Instead the index looks up the
page's content-sampled anchors (see `sketch.py`) in inverted posting lists:

* shared word-5-gram anchors: copies and excerpts (containment, any offset);
* shared content-stem pair anchors: rewrites, spun text, round-trip translations;
* the stories' MinHash (content-stem Jaccard) ranks and prunes weak pair-only hits.

Anchors held by more than `MAX_POSTING_DF` stories are skipped at query time: they are
boilerplate or common phrases, not evidence, and skipping them keeps query cost
independent of the index size.

Backends (chosen by a config dict, `make_backend`): ``{"type": "memory"}`` (default,
sorted numpy arrays: ~8 bytes per posting) or any datasketch storage config
(``{"type": "dict"}`` or ``{"type": "redis", "redis": {...}, "basename": b"..."}``),
which is how several crawl workers can share one index.
"""

from __future__ import annotations

import struct
from abc import ABC, abstractmethod
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from itertools import pairwise
from typing import Any

import numpy as np

from crawler.matching.sketch import SKETCH_PARAMS, Sketcher, StorySketch

_SH32 = np.uint64(32)
_LO32 = np.uint64(0xFFFFFFFF)

__all__ = [
    "Candidate",
    "DatasketchBackend",
    "IndexBackend",
    "MemoryBackend",
    "StoryIndex",
    "make_backend",
]

# --- thresholds (the index's own; the verifier's live in thresholds.py) -----------
# Calibrated on /work/shared/corpus (mission, clough_stevenson) against 2,000 synthetic
# news-like distractors and the semeval "different story" pairs: see tests/test_index.py.

# A page needs this many shared 5-gram anchors (1 in 4 shingles is an anchor, so about
# 12 shared 5-grams: two short sentences) to be a copy/excerpt candidate. One or two
# anchors are shared boilerplate ("did not respond to a request for comment").
SHINGLE_MIN_HITS = 3

# Shared content-pair anchors (1 pair in 4 is an anchor) for a rewrite candidate. The
# weakest real rewrites share ~27 pairs (~7 anchors) with their source; unrelated news
# shares 0-5 pairs (0-1 anchor).
PAIR_MIN_HITS = 4

# Below this many pair anchors, a candidate without any shared 5-gram anchor must also
# have an estimated content-stem Jaccard of at least MIN_JACCARD: chance pair hits on
# long pages come with unrelated vocabulary (J 0.02-0.06), real rewrites have J >= 0.2.
# (An excerpt has a small Jaccard to its story but shares 5-gram anchors.)
PAIR_STRONG_HITS = 10
MIN_JACCARD = 0.08

# Anchors present in more than this many stories are skipped (boilerplate, common
# phrases). Fixed, not a share of the index: that is what keeps latency flat.
MAX_POSTING_DF = 100

# Retrieval reads at most this many characters of a page (the verifier gets all of
# it); a story copied past the first 1M characters of a page is not a real case.
MAX_PAGE_CHARS = 1_000_000

# Pages looked up together hold at most this many characters (a page longer than it
# goes alone): the batch's token arrays take ~40 bytes per character.
MAX_BATCH_CHARS = 4_000_000


@dataclass(frozen=True, slots=True)
class Candidate:
    story_id: int
    score: float
    shingle_hits: int
    pair_hits: int
    jaccard: float | None  # None when not needed to decide


def _check_id(story_id: int) -> int:
    if isinstance(story_id, bool) or not isinstance(story_id, (int, np.integer)):
        raise TypeError(f"story_id must be an int, got {type(story_id).__name__}")
    story_id = int(story_id)
    if not 0 <= story_id < 2**32:
        raise ValueError(f"story_id must be in [0, 2**32), got {story_id}")
    return story_id


# --- backends -------------------------------------------------------------------------


class IndexBackend(ABC):
    """Where sketches and postings live. Views are "shingles" and "pairs"."""

    VIEWS = ("shingles", "pairs")

    @abstractmethod
    def put(self, story_id: int, sketch: StorySketch) -> None: ...

    @abstractmethod
    def delete(self, story_id: int) -> None:
        """Raise KeyError if absent."""

    @abstractmethod
    def __contains__(self, story_id: object) -> bool: ...

    @abstractmethod
    def __len__(self) -> int: ...

    @abstractmethod
    def hits_many(
        self, view: str, keys: Sequence[np.ndarray], max_df: int
    ) -> list[tuple[np.ndarray, np.ndarray]]:
        """Per key set: (story ids, number of its keys each holds), skipping keys held
        by more than max_df stories."""

    @abstractmethod
    def summaries(self, story_ids: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(n shingle anchors, n pair anchors, MinHash hash values [len, num_perm])."""

    def flush(self) -> None:
        """Make pending inserts visible and compact (optional)."""


class _SortedPostings:
    """Inverted lists as two parallel arrays sorted by key (uint32 key, uint32 id).

    Inserts go to a small sorted delta merged into the main arrays when it grows past
    DELTA_MAX; removals are tombstones applied at query time and purged on compaction.
    Why not dict-of-sets: ~350 bytes per posting in CPython against 8 here.

    The main arrays carry a directory on the keys' top bits (bucket b spans
    ``_mk[_dir[b]:_dir[b + 1]]``, about BUCKET_FILL postings): a lookup reads one
    directory entry and one short run per key instead of binary-searching tens of
    millions of postings, whose cache misses made query time grow with the index."""

    DELTA_MAX = 1 << 20  # postings; bounds the re-sort cost of an add-then-query cycle
    BUCKET_FILL = 4  # postings per directory bucket, on average (1 byte per posting)
    BUCKET_SCAN_MAX = 64  # longer buckets hold a common key: binary search those

    def __init__(self) -> None:
        e32 = np.zeros(0, dtype=np.uint32)
        self._mk, self._mi = e32, e32
        self._dk, self._di = e32, e32
        self._dir, self._shift = np.zeros(2, dtype=np.uint32), np.uint32(31)
        self._pending: list[tuple[np.ndarray, int]] = []
        self._dead: set[int] = set()
        self._dead_arr = e32
        self._dead_postings = 0

    def add(self, story_id: int, keys: np.ndarray) -> None:
        if story_id in self._dead:
            self.compact()
        if len(keys):
            self._pending.append((keys, story_id))

    def remove(self, story_id: int, n_keys: int) -> None:
        self._dead.add(story_id)
        self._dead_arr = np.fromiter(self._dead, dtype=np.uint32, count=len(self._dead))
        self._dead_postings += n_keys
        if self._dead_postings > max(self.DELTA_MAX, (len(self._mk) + len(self._dk)) // 4):
            self.compact()

    @staticmethod
    def _merge(k1, i1, k2, i2):
        k = np.concatenate((k1, k2))
        i = np.concatenate((i1, i2))
        order = np.argsort(k, kind="stable")  # timsort: two sorted runs merge in O(n)
        return k[order], i[order]

    def flush(self) -> None:
        if not self._pending:
            return
        pk = np.concatenate([k for k, _ in self._pending])
        pi = np.repeat(
            np.array([sid for _, sid in self._pending], dtype=np.uint32),
            [len(k) for k, _ in self._pending],
        )
        self._pending = []
        order = np.argsort(pk, kind="stable")
        self._dk, self._di = self._merge(self._dk, self._di, pk[order], pi[order])
        if len(self._dk) > max(self.DELTA_MAX, len(self._mk) // 4) or not len(self._mk):
            self._mk, self._mi = self._merge(self._mk, self._mi, self._dk, self._di)
            self._dk = self._di = np.zeros(0, dtype=np.uint32)
            self._index_main()

    def _index_main(self) -> None:
        n = len(self._mk)
        bits = min(30, max(1, (n // self.BUCKET_FILL).bit_length()))
        edges = (np.arange(1 << bits, dtype=np.uint64) << np.uint64(32 - bits)).astype(np.uint32)
        self._dir = np.append(np.searchsorted(self._mk, edges), n).astype(np.uint32)
        self._shift = np.uint32(32 - bits)

    def compact(self) -> None:
        self.flush()
        if self._dead:
            for name in ("_m", "_d"):
                k, i = getattr(self, name + "k"), getattr(self, name + "i")
                keep = ~np.isin(i, self._dead_arr)
                setattr(self, name + "k", k[keep])
                setattr(self, name + "i", i[keep])
            self._dead.clear()
            self._dead_arr = np.zeros(0, dtype=np.uint32)
            self._dead_postings = 0
            self._index_main()

    def lookup(self, keys: np.ndarray, max_df: int) -> tuple[np.ndarray, np.ndarray]:
        """(story id, index into `keys`) of every posting of `keys`."""
        self.flush()
        out = []
        if len(self._mk):
            b = (keys >> self._shift).astype(np.intp)
            lo = self._dir[b].astype(np.int64)
            size = self._dir[b + 1] - lo
            short = size <= self.BUCKET_SCAN_MAX
            out.append(self._scan_buckets(keys, np.flatnonzero(short), lo[short], size[short], max_df))
            if not short.all():
                out.append(self._search(self._mk, self._mi, keys, np.flatnonzero(~short), max_df))
        if len(self._dk):
            out.append(self._search(self._dk, self._di, keys, np.arange(len(keys)), max_df))
        if not out:
            return np.zeros(0, dtype=np.uint32), np.zeros(0, dtype=np.intp)
        ids = np.concatenate([i for i, _ in out])
        which = np.concatenate([w for _, w in out])
        if self._dead:
            alive = ~np.isin(ids, self._dead_arr)
            ids, which = ids[alive], which[alive]
        return ids, which

    def _scan_buckets(self, keys, sel, lo, size, max_df):
        """Postings of keys[sel] found by reading their whole (short) directory buckets."""
        owner = np.repeat(sel, size)
        pos = np.repeat(lo - np.cumsum(size) + size, size) + np.arange(int(size.sum()))
        hit = self._mk[pos] == keys[owner]
        pos, owner = pos[hit], owner[hit]
        df = np.bincount(owner, minlength=len(keys))
        ok = df[owner] <= max_df
        return self._mi[pos[ok]], owner[ok]

    @staticmethod
    def _search(k, i, keys, sel, max_df):
        """Postings of keys[sel] by binary search in (k, i)."""
        lo = np.searchsorted(k, keys[sel], "left")
        cnt = np.searchsorted(k, keys[sel], "right") - lo
        ok = (cnt > 0) & (cnt <= max_df)
        lo, cnt, sel = lo[ok], cnt[ok], sel[ok]
        starts = np.repeat(lo - np.cumsum(cnt) + cnt, cnt) + np.arange(int(cnt.sum()))
        return i[starts], np.repeat(sel, cnt)

    def nbytes(self) -> int:
        return sum(a.nbytes for a in (self._mk, self._mi, self._dk, self._di, self._dir))


class MemoryBackend(IndexBackend):
    """In-process index (one crawl worker). Per story: ~8 bytes per anchor plus the
    MinHash hash values (4 bytes x num_perm)."""

    def __init__(self, config: Mapping[str, Any] | None = None) -> None:
        self._post = {v: _SortedPostings() for v in self.VIEWS}
        # story id -> (n shingles, n pairs, hashvalues)
        self._meta: dict[int, tuple[int, int, np.ndarray]] = {}

    def put(self, story_id: int, sketch: StorySketch) -> None:
        self._meta[story_id] = (len(sketch.shingles), len(sketch.pairs), sketch.minhash.hashvalues)
        self._post["shingles"].add(story_id, sketch.shingles)
        self._post["pairs"].add(story_id, sketch.pairs)

    def delete(self, story_id: int) -> None:
        n_sh, n_pr, _ = self._meta.pop(story_id)
        self._post["shingles"].remove(story_id, n_sh)
        self._post["pairs"].remove(story_id, n_pr)

    def __contains__(self, story_id: object) -> bool:
        return story_id in self._meta

    def __len__(self) -> int:
        return len(self._meta)

    def hits_many(self, view, keys, max_df):
        ids, which = self._post[view].lookup(np.concatenate(keys), max_df)
        owner = np.searchsorted(np.cumsum([len(k) for k in keys]), which, "right")
        rows = np.sort((owner.astype(np.uint64) << _SH32) | ids)
        first = np.flatnonzero(np.r_[len(rows) > 0, rows[1:] != rows[:-1]])
        counts = np.diff(first, append=len(rows))
        rows = rows[first]
        bounds = np.searchsorted(rows >> _SH32, np.arange(len(keys) + 1, dtype=np.uint64))
        ids = (rows & _LO32).astype(np.int64)
        return [(ids[lo:hi], counts[lo:hi]) for lo, hi in pairwise(bounds)]

    def summaries(self, story_ids):
        rows = [self._meta[int(s)] for s in story_ids]
        n_sh = np.array([r[0] for r in rows], dtype=np.int64)
        n_pr = np.array([r[1] for r in rows], dtype=np.int64)
        hv = np.vstack([r[2] for r in rows]) if rows else np.zeros((0, 0), dtype=np.uint32)
        return n_sh, n_pr, hv

    def flush(self) -> None:
        for p in self._post.values():
            p.flush()

    def nbytes(self) -> int:
        return sum(p.nbytes() for p in self._post.values())


class DatasketchBackend(IndexBackend):
    """Postings and sketches in datasketch storage (`unordered_storage` /
    `ordered_storage`), so ``{"type": "redis", "redis": {"host": ...}, "basename":
    b"copyhound"}`` shares one index between crawl workers exactly as MinHashLSH's
    storage_config does. ``{"type": "dict"}`` runs the same code in memory (tests).
    Keys and values are bytes, as the Redis storage requires."""

    def __init__(self, config: Mapping[str, Any]) -> None:
        from datasketch.storage import ordered_storage, unordered_storage  # lazy: redis optional

        config = dict(config)
        basename = config.get("basename", b"copyhound")
        if isinstance(basename, str):
            basename = basename.encode()
        config["basename"] = basename
        self._post = {v: unordered_storage(config, name=basename + b"_" + v.encode()) for v in self.VIEWS}
        self._sketches = ordered_storage(config, name=basename + b"_sketches")
        self._params = SKETCH_PARAMS

    @staticmethod
    def _k(key: int) -> bytes:
        return struct.pack(">I", int(key))

    @staticmethod
    def _sid(story_id: int) -> bytes:
        return struct.pack(">I", story_id)

    def put(self, story_id, sketch):
        sid = self._sid(story_id)
        self._sketches.insert(sid, sketch.to_bytes())
        for view in self.VIEWS:
            store = self._post[view]
            for key in getattr(sketch, view).tolist():
                store.insert(self._k(key), sid)

    def _load(self, story_id: int) -> StorySketch:
        vals = self._sketches.get(self._sid(story_id))
        if not vals:
            raise KeyError(story_id)
        return StorySketch.from_bytes(vals[-1], params=self._params)

    def delete(self, story_id):
        sketch = self._load(story_id)
        sid = self._sid(story_id)
        for view in self.VIEWS:
            store = self._post[view]
            for key in getattr(sketch, view).tolist():
                store.remove_val(self._k(key), sid)
        self._sketches.remove(sid)

    def __contains__(self, story_id):
        try:
            return self._sketches.has_key(self._sid(_check_id(story_id)))
        except (TypeError, ValueError):
            return False

    def __len__(self):
        return self._sketches.size()

    def hits_many(self, view, keys, max_df):
        # One getmany for the whole batch: one Redis round trip, not one per page.
        found = self._post[view].getmany(*(self._k(k) for ks in keys for k in ks.tolist()))
        out, at = [], 0
        for ks in keys:
            counts: dict[int, int] = {}
            for members in found[at : at + len(ks)]:
                if not members or len(members) > max_df:
                    continue
                for m in members:
                    sid = struct.unpack(">I", m)[0]
                    counts[sid] = counts.get(sid, 0) + 1
            at += len(ks)
            ids = np.fromiter(counts.keys(), dtype=np.int64, count=len(counts))
            out.append((ids, np.fromiter(counts.values(), dtype=np.int64, count=len(counts))))
        return out

    def summaries(self, story_ids):
        sketches = [self._load(int(s)) for s in story_ids]
        n_sh = np.array([len(s.shingles) for s in sketches], dtype=np.int64)
        n_pr = np.array([len(s.pairs) for s in sketches], dtype=np.int64)
        hv = np.vstack([s.minhash.hashvalues for s in sketches]) if sketches else np.zeros((0, 0), np.uint32)
        return n_sh, n_pr, hv


def make_backend(config: Mapping[str, Any] | None = None) -> IndexBackend:
    """Backend from a config dict: {"type": "memory"} (default) or a datasketch
    storage_config ({"type": "dict"} / {"type": "redis", ...})."""
    config = dict(config or {"type": "memory"})
    kind = config.get("type", "memory")
    if kind == "memory":
        return MemoryBackend(config)
    if kind in ("dict", "redis", "cassandra"):
        return DatasketchBackend(config)
    raise ValueError(
        f"unknown story index backend type {kind!r}: use 'memory', or a datasketch storage "
        "config such as {'type': 'redis', 'redis': {'host': ..., 'port': ...}}"
    )


# --- the index ------------------------------------------------------------------------


class StoryIndex:
    """Candidate retrieval over registered stories. See the module docstring."""

    def __init__(self, config: Mapping[str, Any] | None = None, *, sketcher: Sketcher | None = None) -> None:
        self._backend = make_backend(config)
        self.sketcher = sketcher or Sketcher()

    @classmethod
    def build(cls, stories: Iterable[tuple[int, str]], config: Mapping[str, Any] | None = None) -> StoryIndex:
        """Index `(story_id, text)` pairs; a third element, when present, is the stored
        fingerprint (see `add`)."""
        index = cls(config)
        for story_id, text, *sketch in stories:
            index.add(story_id, text, sketch[0] if sketch else None)
        index._backend.flush()
        return index

    # -- maintenance --------------------------------------------------------------

    def sketch(self, text: str) -> StorySketch:
        """The sketch `add` would store; `.to_bytes()` is Story.fingerprint."""
        return self.sketcher.sketch(text)

    def add(self, story_id: int, text: str, sketch: bytes | None = None) -> None:
        """Index a story (re-adding an id replaces it). `sketch` is the stored
        Story.fingerprint: used instead of re-sketching `text`; a sketch made with
        other params raises SketchParamsError (a ValueError) -- re-sketch and store
        the new fingerprint instead."""
        story_id = _check_id(story_id)
        if sketch is not None:
            parsed = StorySketch.from_bytes(sketch, params=self.sketcher.params)
        else:
            parsed = self.sketcher.sketch(text)
        if story_id in self._backend:
            self._backend.delete(story_id)
        self._backend.put(story_id, parsed)

    def remove(self, story_id: int) -> None:
        """Forget a story; KeyError if it is not indexed."""
        story_id = _check_id(story_id)
        if story_id not in self._backend:
            raise KeyError(story_id)
        self._backend.delete(story_id)

    def __len__(self) -> int:
        return len(self._backend)

    def __contains__(self, story_id: object) -> bool:
        try:
            return _check_id(story_id) in self._backend  # type: ignore[arg-type]
        except (TypeError, ValueError):
            return False

    @property
    def backend(self) -> IndexBackend:
        return self._backend

    # -- queries ------------------------------------------------------------------

    def candidates(self, page_text: str, limit: int = 20) -> list[int]:
        """Story ids that might be the source of `page_text`, best first, at most
        `limit`. Empty when nothing in the index shares enough with the page."""
        return [c.story_id for c in self.scored_candidates(page_text, limit)]

    def scored_candidates(self, page_text: str, limit: int = 20) -> list[Candidate]:
        return self.scored_candidates_many([page_text], limit)[0]

    def scored_candidates_many(self, page_texts: Sequence[str], limit: int = 20) -> list[list[Candidate]]:
        """`scored_candidates` of each page. Pages looked up together share the fixed
        cost of the lookups, which is most of it for news-sized pages: the crawler
        matches its stored pages in batches."""
        for text in page_texts:
            if not isinstance(text, str):
                raise TypeError(f"page_text must be str, got {type(text).__name__}")
        if limit < 1 or not len(self._backend):
            return [[] for _ in page_texts]
        texts = [t[:MAX_PAGE_CHARS] for t in page_texts]
        out: list[list[Candidate]] = []
        start = 0
        while start < len(texts):
            end, size = start + 1, len(texts[start])
            while end < len(texts) and size + len(texts[end]) <= MAX_BATCH_CHARS:
                size += len(texts[end])
                end += 1
            feats = self.sketcher.features_many(texts[start:end])
            shingles = self._backend.hits_many("shingles", [f.shingles for f in feats], MAX_POSTING_DF)
            pairs = self._backend.hits_many("pairs", [f.pairs for f in feats], MAX_POSTING_DF)
            out += [self._rank(f, sh, pr, limit) for f, sh, pr in zip(feats, shingles, pairs)]
            start = end
        return out

    def _rank(self, f, shingle_hits, pair_hits, limit: int) -> list[Candidate]:
        """Candidates of one page from its anchor hits: thresholds, then the MinHash
        Jaccard for stories held by a few pair anchors only."""
        sh_ids, sh_cnt = shingle_hits
        pr_ids, pr_cnt = pair_hits
        sh_ok = sh_cnt >= SHINGLE_MIN_HITS
        pr_ok = pr_cnt >= PAIR_MIN_HITS
        if not (sh_ok.any() or pr_ok.any()):
            return []  # most pages of a crawl
        ids = np.union1d(sh_ids[sh_ok], pr_ids[pr_ok])
        a = np.zeros(len(ids), dtype=np.int64)
        p = np.zeros(len(ids), dtype=np.int64)
        pos = np.searchsorted(ids, sh_ids)
        m = (pos < len(ids)) & (ids[np.minimum(pos, len(ids) - 1)] == sh_ids)
        a[pos[m]] = sh_cnt[m]
        pos = np.searchsorted(ids, pr_ids)
        m = (pos < len(ids)) & (ids[np.minimum(pos, len(ids) - 1)] == pr_ids)
        p[pos[m]] = pr_cnt[m]

        n_sh, n_pr, hv = self._backend.summaries(ids)
        # Overlap coefficients: share of the smaller side's anchors found in the other.
        a_frac = a / np.maximum(1, np.minimum(n_sh, len(f.shingles)))
        p_frac = p / np.maximum(1, np.minimum(n_pr, len(f.pairs)))
        score = np.maximum(a_frac, p_frac)
        jac = np.full(len(ids), np.nan)
        weak = (a == 0) & (p < PAIR_STRONG_HITS)
        if weak.any():
            q = self.sketcher.minhash(f.stems).hashvalues
            jac[weak] = np.count_nonzero(hv[weak] == q, axis=1) / hv.shape[1]
            keep = ~weak | (jac >= MIN_JACCARD)
            ids, a, p, score, jac = ids[keep], a[keep], p[keep], score[keep], jac[keep]
        order = np.lexsort((-(a + p), -score))[:limit]
        return [
            Candidate(
                int(ids[i]), float(score[i]), int(a[i]), int(p[i]),
                None if np.isnan(jac[i]) else float(jac[i]),
            )
            for i in order
        ]
