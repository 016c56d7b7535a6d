"""Benchmark of candidate retrieval + verification (copyhound's matcher).

    python bench/match.py            # table
    python bench/match.py --json     # one JSON document on stdout
    python bench/match.py --quick    # small smoke run (used by tests/test_index.py)

Measures in one run, on one core:
* matcher throughput (raw page text -> verdicts) with 1k and 10k stories indexed, on
  two page mixes: "stress" (60 % derived pages, verification-bound) and "crawl" (2 %
  derived, as crawls see); in batches as the crawler's match phase runs, and one page
  at a time on the stress mix;
* the same pages by brute force (compare against every story; extrapolated from a
  timed sample of stories when that would take too long -- the JSON says so);
* StoryIndex query latency (median, p99) at 1k, 10k and 100k stories (100k: index only);
* memory per indexed story (tracemalloc of building the index, sketches included);
* recall of the index on the derived pages (copies, excerpts, reworded).

Stories are synthetic news: a Zipf-distributed pseudo-word vocabulary (so stories share
common words the way real news does), real English function words, names, figures,
quotes. Derived pages: copies inside site chrome, excerpts of 2-3 paragraphs inside
another article, and rewordings (synonym swaps of 35 % of content words, dropped and
merged sentences, changed function words); plus unrelated pages.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import random
import statistics
import sys
import time
import tracemalloc
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from crawler.matching.index import StoryIndex  # noqa: E402

_FUNCTION = (
    "the the the the of of of to to to and and and a a in in is was for on that that with "
    "as at by from it its has have had be been were are this which but not or an will "
    "would after over about into than more their they he she his her who also"
).split()
_DAYS = "Monday Tuesday Wednesday Thursday Friday Saturday Sunday".split()
_CONS = "b c d f g h j k l m n p r s t v w z br ch cl dr gr kr pl sh st th tr".split()
_VOW = "a e i o u ai ea ia io ou".split()


class NewsGenerator:
    """Deterministic generator of news-like stories (one instance per seed)."""

    def __init__(self, seed: int = 7, vocab_size: int = 30_000, names: int = 8_000) -> None:
        rng = random.Random(seed)
        self.seed = seed
        self.vocab = self._words(rng, vocab_size, 2, 4)
        self.names = [w.capitalize() for w in self._words(rng, names, 2, 3)]
        # Zipf weights with a flattened head (rank offset 60): the most common content
        # word is ~0.3 % of the content tokens, as in English news once function words
        # are removed; most words are rare.
        self.cum = list(_cumulative([1.0 / (r + 60) ** 1.05 for r in range(vocab_size)]))
        # A fixed "synonym" for every word, for the rewording derivative.
        syn = list(self.vocab)
        rng.shuffle(syn)
        self.synonym = dict(zip(self.vocab, syn))

    @staticmethod
    def _words(rng: random.Random, n: int, lo: int, hi: int) -> list[str]:
        out: set[str] = set()
        while len(out) < n:
            out.add("".join(rng.choice(_CONS) + rng.choice(_VOW) for _ in range(rng.randint(lo, hi))))
        return sorted(out)

    def _zipf(self, rng: random.Random) -> str:
        import bisect

        return self.vocab[bisect.bisect(self.cum, rng.random() * self.cum[-1])]

    def story(self, i: int) -> str:
        rng = random.Random(self.seed * 1_000_003 + i)
        topic = [self._zipf(rng) for _ in range(40)] + rng.sample(self.vocab, 25)
        people = rng.sample(self.names, 5)
        orgs = [f"{a} {b}" for a, b in zip(rng.sample(self.names, 3), rng.sample(self.names, 3))]
        paras = []
        title = " ".join(w.capitalize() for w in rng.sample(topic, rng.randint(5, 9)))
        paras.append(title)
        for p in range(rng.randint(5, 16)):
            sents = []
            for _ in range(rng.randint(1, 4)):
                sents.append(self._sentence(rng, topic, people, orgs, first=(p == 0 and not sents)))
            paras.append(" ".join(sents))
        return "\n\n".join(paras)

    def _sentence(self, rng, topic, people, orgs, first=False) -> str:
        n = rng.randint(10, 32)
        toks = []
        for _ in range(n):
            r = rng.random()
            if r < 0.42:
                toks.append(rng.choice(_FUNCTION))
            elif r < 0.66:
                toks.append(rng.choice(topic))
            elif r < 0.88:
                toks.append(self._zipf(rng))
            elif r < 0.94:
                toks.append(rng.choice(people) if rng.random() < 0.6 else rng.choice(orgs))
            else:
                toks.append(rng.choice((str(rng.randint(2, 999)), f"{rng.randint(1, 99)}.{rng.randint(1, 9)}%",
                                        f"${rng.randint(1, 900)} million", rng.choice(_DAYS))))
        s = " ".join(toks)
        if rng.random() < 0.2:
            s = f'"{s}," said {rng.choice(people)}'
        if first:
            s = f"{rng.choice(self.names).upper()}, {rng.choice(_DAYS)} (Wire) - {s}"
        return s[0].upper() + s[1:] + "."

    # -- derived pages -------------------------------------------------------------

    def chrome(self, rng: random.Random) -> tuple[str, str]:
        menu = " | ".join(rng.sample(self.names, 8))
        teasers = "\n".join(self._sentence(rng, self.vocab[:200], self.names[:5], ["Wire Service"]) for _ in range(3))
        return menu, f"Related stories\n{teasers}\nCookies help us deliver our services. Subscribe now."

    def copy(self, story: str, rng: random.Random) -> str:
        head, tail = self.chrome(rng)
        return f"{head}\n\n{story}\n\n{tail}"

    def excerpt(self, story: str, other: str, rng: random.Random) -> str:
        sp = story.split("\n\n")[1:]
        k = min(len(sp), rng.randint(2, 3))
        start = rng.randint(0, len(sp) - k)
        op = other.split("\n\n")
        cut = rng.randint(1, len(op))
        return "\n\n".join(op[:cut] + sp[start : start + k] + op[cut:])

    def reword(self, story: str, rng: random.Random) -> str:
        out = []
        for para in story.split("\n\n"):
            sents = [s for s in para.split(". ") if rng.random() > 0.15] or [para]
            words = []
            for w in " ".join(sents).split():
                bare = w.strip('.,"%$').lower()
                if bare in self.synonym and rng.random() < 0.35:
                    w = w.replace(bare, self.synonym[bare])
                elif bare in _FUNCTION and rng.random() < 0.3:
                    w = rng.choice(_FUNCTION)
                words.append(w)
            out.append(" ".join(words))
        return "\n\n".join(out)


def _cumulative(ws):
    t = 0.0
    for w in ws:
        t += w
        yield t


# Page mixes. "stress": 60 % derived, so verification dominates. "crawl": 2 % derived,
# about what crawls see (the demo crawl stores 3 copies among 79 pages, the crawl
# benchmark 14 among 2,000).
STRESS_MIX = ("copy", "excerpt", "reworded", "unrelated", "unrelated")
CRAWL_MIX = ("copy", "excerpt", "reworded") + ("unrelated",) * 147


def make_pages(gen: NewsGenerator, stories: dict[int, str], n: int, seed: int = 11, mix=STRESS_MIX):
    """(page text, kind, source id or None), kinds cycling through `mix`."""
    rng = random.Random(seed)
    ids = sorted(stories)
    pages = []
    for j in range(n):
        kind = mix[j % len(mix)]
        if kind == "unrelated":
            pages.append((gen.story(10_000_000 + j), kind, None))
            continue
        sid = rng.choice(ids)
        if kind == "copy":
            text = gen.copy(stories[sid], rng)
        elif kind == "excerpt":
            text = gen.excerpt(stories[sid], gen.story(20_000_000 + j), rng)
        else:
            text = gen.reword(stories[sid], rng)
        pages.append((text, kind, sid))
    return pages


# --- measurements ---------------------------------------------------------------------


def _pct(xs, q):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(q * (len(xs) - 1))))]


def _load_compare():
    try:
        from crawler.matching.compare import compare, prepare  # noqa: F401
    except ImportError as exc:
        return None, None, f"crawler.matching.compare not importable: {exc}"
    return prepare, compare, None


def build_index(stories: dict[int, str]) -> tuple[StoryIndex, float]:
    t0 = time.perf_counter()
    index = StoryIndex.build(stories.items())
    return index, time.perf_counter() - t0


def query_latency(index: StoryIndex, pages, repeat: int = 1) -> dict:
    lat = []
    for _ in range(repeat):
        for text, _, _ in pages:
            t0 = time.perf_counter()
            index.candidates(text)
            lat.append(time.perf_counter() - t0)
    return {"median_ms": round(statistics.median(lat) * 1e3, 4), "p99_ms": round(_pct(lat, 0.99) * 1e3, 4),
            "queries": len(lat)}


def recall(index: StoryIndex, pages) -> dict:
    found = {}
    ncand = []
    for text, kind, sid in pages:
        c = index.candidates(text)
        ncand.append(len(c))
        if sid is not None:
            found.setdefault(kind, []).append(sid in c)
        else:
            found.setdefault("unrelated_with_candidates", []).append(bool(c))
    out = {k: round(sum(v) / len(v), 4) for k, v in found.items()}
    out["mean_candidates"] = round(sum(ncand) / len(ncand), 3)
    return out


def memory_per_story(stories: dict[int, str]) -> dict:
    gc.collect()
    tracemalloc.start()
    base = tracemalloc.get_traced_memory()[0]
    index = StoryIndex.build(stories.items())
    gc.collect()
    used = tracemalloc.get_traced_memory()[0] - base
    tracemalloc.stop()
    return {"bytes_per_story": int(used / len(stories)), "stories": len(stories),
            "postings_bytes_per_story": int(index.backend.nbytes() / len(stories)),
            "method": "tracemalloc delta across StoryIndex.build (index + its token-hash cache)"}


def _pages_per_s(index, stories, pages, batch: int) -> tuple[float, int]:
    """Throughput of a new Matcher over `pages` in batches of `batch` (stories are
    prepared as they are first verified, as in a crawl's match phase), and the number
    of verifications made."""
    from crawler.matching.matcher import Matcher

    matcher = Matcher(index, stories)
    texts = [t for t, _, _ in pages]
    t0 = time.perf_counter()
    n_verified = 0
    for i in range(0, len(texts), batch):
        n_verified += sum(len(v) for v in matcher.match_many(texts[i : i + batch]))
    return round(len(texts) / (time.perf_counter() - t0), 1), n_verified


def throughput(index: StoryIndex, stories: dict[int, str], pages, crawl_pages, prepare, compare,
               brute_sample: int, brute_pages: int) -> dict:
    """Matcher pages/s on both mixes, and brute force (compare against every story) on
    the same pages. Batches of MATCH_BATCH pages, as the crawler's match phase does."""
    from crawler.matching.matcher import MATCH_BATCH, Matcher

    res: dict = {"batch": MATCH_BATCH}
    t0 = time.perf_counter()
    matcher = Matcher(index, stories)
    res["prepare_s"] = round(time.perf_counter() - t0, 3)
    res["pages"] = len(pages)
    res["pages_per_s"], n_verified = _pages_per_s(index, stories, pages, MATCH_BATCH)
    res["verifications_per_page"] = round(n_verified / len(pages), 3)
    res["pages_per_s_one_at_a_time"], _ = _pages_per_s(index, stories, pages, 1)
    res["crawl_mix_pages"] = len(crawl_pages)
    res["crawl_mix_pages_per_s"], _ = _pages_per_s(index, stories, crawl_pages, MATCH_BATCH)
    # index only (no verification): the ceiling for this stage
    texts = [t for t, _, _ in pages]
    t0 = time.perf_counter()
    for i in range(0, len(texts), MATCH_BATCH):
        index.scored_candidates_many(texts[i : i + MATCH_BATCH])
    res["index_only_pages_per_s"] = round(len(pages) / (time.perf_counter() - t0), 1)
    # brute force: compare() of each page against every story. Far too slow to run in
    # full (milliseconds per pair x every story), so a sample of stories x pages is
    # timed and scaled linearly to all stories; the JSON says so.
    if compare is not None:
        ids = sorted(stories)
        sample = ids if len(ids) <= brute_sample else random.Random(3).sample(ids, brute_sample)
        prepared = {i: matcher.prepared(i) for i in sample}
        bpages = pages[:brute_pages]
        t0 = time.perf_counter()
        for text, _, _ in bpages:
            page = prepare(text)
            for i in sample:
                compare(prepared[i], page)
        dt = time.perf_counter() - t0
        per_page = dt / len(bpages) * (len(ids) / len(sample))
        res["brute_force_pages_per_s"] = round(1 / per_page, 4)
        res["brute_force_extrapolated"] = len(sample) < len(ids) or len(bpages) < len(pages)
        res["brute_force_method"] = (
            f"compare() of {len(bpages)} pages (page prepared once) against {len(sample)} of "
            f"{len(ids)} stories, scaled linearly to all stories"
        )
        res["speedup_index_vs_brute_force"] = round(res["pages_per_s"] / res["brute_force_pages_per_s"], 1)
    return res


def run(quick: bool = False) -> dict:
    sizes_match = (200, 1000) if quick else (1000, 10_000)
    sizes_lat = (200, 1000, 3000) if quick else (1000, 10_000, 100_000)
    n_pages = 100 if quick else 1000
    gen = NewsGenerator()
    prepare, compare, why = _load_compare()
    out: dict = {
        "quick": quick,
        "python": platform.python_version(),
        "cpu_count": os.cpu_count(),
        "single_core": True,
        "pages_mix": {"copy": 0.2, "excerpt": 0.2, "reworded": 0.2, "unrelated": 0.4},
        "crawl_mix": {"copy": 0.0067, "excerpt": 0.0067, "reworded": 0.0067, "unrelated": 0.98},
        "verifier": "crawler.matching.compare" if compare else why,
        "matcher": {},
        "latency": {},
        "recall": {},
    }
    t0 = time.perf_counter()
    all_stories = {i: gen.story(i) for i in range(max(sizes_lat))}
    out["generate_s"] = round(time.perf_counter() - t0, 2)
    for n in sizes_lat:
        stories = {i: all_stories[i] for i in range(n)}
        pages = make_pages(gen, stories, n_pages)
        index, build_s = build_index(stories)
        key = f"{n}"
        out["latency"][key] = {"build_s": round(build_s, 2), **query_latency(index, pages)}
        if n in sizes_match:
            out["recall"][key] = recall(index, pages)
            if compare is not None:
                crawl_pages = make_pages(gen, stories, 3 * n_pages, seed=12, mix=CRAWL_MIX)
                out["matcher"][key] = throughput(index, stories, pages, crawl_pages, prepare, compare,
                                                 brute_sample=20 if quick else 200,
                                                 brute_pages=5 if quick else 20)
            else:
                out["matcher"][key] = {"skipped": why}
        del index
        gc.collect()
    mem_n = 1000 if quick else 5_000
    out["memory"] = memory_per_story({i: all_stories[i] for i in range(mem_n)})
    lat = out["latency"]
    lo, hi = str(sizes_lat[0]), str(sizes_lat[-1])
    out["latency_growth_median"] = round(lat[hi]["median_ms"] / max(1e-9, lat[lo]["median_ms"]), 2)
    big = out["matcher"].get(str(sizes_match[-1]), {})
    out["targets"] = {
        "pages_per_s_10k_target": 2000,
        "pages_per_s_10k": big.get("pages_per_s"),
        "crawl_mix_pages_per_s_10k": big.get("crawl_mix_pages_per_s"),
        "index_only_pages_per_s_10k": big.get("index_only_pages_per_s"),
        "latency_flat_target": "median at largest size within 2x of smallest",
    }
    return out


def _table(res: dict) -> str:
    lines = [f"verifier: {res['verifier']}", "", "latency (StoryIndex.candidates)"]
    for n, v in res["latency"].items():
        lines.append(f"  {n:>7} stories  median {v['median_ms']:8.3f} ms  p99 {v['p99_ms']:8.3f} ms  build {v['build_s']} s")
    lines.append("")
    lines.append("matcher (raw text -> verdicts), one core")
    for n, v in res["matcher"].items():
        lines.append(f"  {n:>7} stories  " + ", ".join(f"{k}={x}" for k, x in v.items()))
    lines.append("")
    for n, v in res["recall"].items():
        lines.append(f"recall {n:>7}: " + ", ".join(f"{k}={x}" for k, x in v.items()))
    lines.append(f"memory: {res['memory']['bytes_per_story']} bytes/story ({res['memory']['stories']} stories)")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--json", action="store_true", help="print one JSON document")
    ap.add_argument("--quick", action="store_true", help="small smoke run")
    args = ap.parse_args(argv)
    res = run(quick=args.quick)
    print(json.dumps(res, indent=2) if args.json else _table(res))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
