"""The story index (candidate retrieval): recall on real derivatives, sketches, backends.

Recall is measured on the labelled corpora with an index holding every seed of the
corpus plus ~2,000 synthetic news-like distractors (bench/match.py's generator) and the
semeval news articles (real English news, so real vocabulary overlap).
"""

from __future__ import annotations

import csv
import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest

import crawler.matching.index as index_module
from crawler.matching.index import StoryIndex
from crawler.matching.sketch import SKETCH_PARAMS, Sketcher, SketchParamsError, StorySketch, check_params
from tests.conftest import skip_or_fail

ROOT = Path(__file__).resolve().parent.parent
DERIVED = {"copy", "excerpt", "rewrite", "spun"}


def _load_bench():
    spec = importlib.util.spec_from_file_location("bench_match", ROOT / "bench" / "match.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


bench = _load_bench()


@pytest.fixture(scope="module")
def gen():
    return bench.NewsGenerator(seed=5)


@pytest.fixture(scope="module")
def distractors(gen):
    return {1_000_000 + i: gen.story(i) for i in range(2000)}


def _pairs(corpus: Path, name: str):
    with open(corpus / name / "pairs.csv", newline="") as f:
        return list(csv.DictReader(f))


def _recall(corpus_dir: Path, name: str, distractors: dict[int, str]):
    d = corpus_dir / name
    rows = _pairs(corpus_dir, name)
    seeds = sorted({r["seed"] for r in rows})
    ids = {s: i for i, s in enumerate(seeds)}
    stories = [(ids[s], (d / s).read_text(errors="replace")) for s in seeds]
    stories += list(distractors.items())
    sem = corpus_dir / "semeval2022_en" / "texts"
    if sem.is_dir():
        stories += [(2_000_000 + j, p.read_text(errors="replace")) for j, p in enumerate(sorted(sem.glob("*.txt")))]
    index = StoryIndex.build(stories)
    found, missed, n_cands = [], [], []
    for r in rows:
        cands = index.candidates((d / r["candidate"]).read_text(errors="replace"))
        n_cands.append(len(cands))
        if r["label"] in DERIVED:
            (found if ids[r["seed"]] in cands else missed).append(r["id"])
    return found, missed, n_cands, len(index)


def test_recall_mission(corpus_dir, distractors):
    found, missed, n_cands, size = _recall(corpus_dir, "mission", distractors)
    print(f"\nmission recall {len(found)}/{len(found) + len(missed)} with {size} stories indexed; missed {missed}")
    assert len(found) == 6  # copy, 4 rewrites/spun, copy of a copy
    assert missed == []
    # the list stays short: the seed, and 003 which 004 is a rewrite of
    assert max(n_cands) <= 3


def test_recall_clough_stevenson(corpus_dir, distractors):
    found, missed, n_cands, size = _recall(corpus_dir, "clough_stevenson", distractors)
    recall = len(found) / (len(found) + len(missed))
    print(f"\nclough_stevenson recall {recall:.3f} ({len(found)}/{len(found) + len(missed)}), "
          f"{size} stories indexed; missed {missed}")
    # Known misses: g2pE_taskc and g4pD_taskb are labelled "cut" but were pasted from
    # other Wikipedia articles: they share no word 5-gram with their seed.
    assert recall >= 0.95
    assert set(missed) <= {"cs-g2pE_taskc", "cs-g4pD_taskb"}
    assert sum(n_cands) / len(n_cands) <= 2


def test_unrelated_pages_get_no_candidates(corpus_dir, gen, distractors):
    d = corpus_dir / "mission"
    index = StoryIndex.build([(0, (d / "seed/reuters_deepseek_r2.txt").read_text()), *distractors.items()])
    for name in ("related_metro", "related_powys_county_times", "related_daily_record"):
        assert index.candidates((d / "candidates" / f"{name}.txt").read_text()) == []
    unrelated = [gen.story(5_000_000 + i) for i in range(50)]
    total = sum(len(index.candidates(t)) for t in unrelated)
    assert total <= 5


def test_excerpt_inside_other_article(corpus_dir, gen, distractors):
    """Two paragraphs of the Reuters story inside an unrelated article: containment,
    not Jaccard (the page's 5-gram Jaccard to the story is a few percent)."""
    seed = (corpus_dir / "mission/seed/reuters_deepseek_r2.txt").read_text()
    other = (corpus_dir / "mission/candidates/related_metro.txt").read_text()
    paras = [p for p in seed.split("\n") if len(p.split()) > 25]
    host = other.split("\n")
    page = "\n".join(host[: len(host) // 2] + paras[3:5] + host[len(host) // 2 :])
    index = StoryIndex.build([(7, seed), *distractors.items()])
    assert index.candidates(page)[:1] == [7]
    # synthetic: 2-3 paragraphs of a distractor inside another generated article
    for i in range(20):
        sid = 1_000_000 + 37 * i
        page = gen.excerpt(distractors[sid], gen.story(6_000_000 + i), bench.random.Random(i))
        assert sid in index.candidates(page), i


def test_sketch_round_trip_and_stored_fingerprint():
    text = "The Hangzhou-based firm said on Tuesday it would release R2 in May. " * 5
    sk = Sketcher()
    s = sk.sketch(text)
    data = s.to_bytes()
    back = StorySketch.from_bytes(data)
    assert back.minhash == s.minhash and back.minhash.scheme == SKETCH_PARAMS["scheme"]
    assert back.shingles.tolist() == s.shingles.tolist() and back.pairs.tolist() == s.pairs.tolist()
    assert back.n_words == s.n_words and dict(back.params) == SKETCH_PARAMS
    # adding by stored fingerprint retrieves exactly like adding by text
    a, b = StoryIndex(), StoryIndex()
    a.add(1, text)
    b.add(1, "text unused when a sketch is given", sketch=data)
    assert a.candidates(text) == b.candidates(text) == [1]


def test_mismatched_params_are_refused():
    sk = Sketcher()
    s = sk.sketch("Some story text about the launch of a new model by a startup. " * 4)
    for key, value in (("num_perm", 256), ("seed", 2), ("scheme", "legacy"), ("version", 0), ("shingle_words", 4)):
        other = dict(SKETCH_PARAMS, **{key: value})
        data = StorySketch(s.minhash, s.shingles, s.pairs, s.n_words, other).to_bytes()
        with pytest.raises(SketchParamsError, match=key):
            StorySketch.from_bytes(data)
        with pytest.raises(ValueError):
            StoryIndex().add(1, "x", sketch=data)
    with pytest.raises(ValueError, match="num_perm"):
        check_params(json.dumps(dict(SKETCH_PARAMS, num_perm=64)))
    check_params(json.dumps(SKETCH_PARAMS))  # the DB's JSON column round-trips
    for junk in (b"", b"CHSK", b"garbage" * 10, s.to_bytes()[:-3], s.to_bytes() + b"x"):
        with pytest.raises(ValueError):
            StorySketch.from_bytes(junk)


def test_remove_and_re_add(gen):
    stories = {i: gen.story(7_000_000 + i) for i in range(5)}
    index = StoryIndex.build(stories.items())
    page = gen.copy(stories[2], bench.random.Random(1))
    assert index.candidates(page) == [2]
    assert len(index) == 5 and 2 in index
    index.remove(2)
    assert 2 not in index and len(index) == 4
    assert index.candidates(page) == []
    with pytest.raises(KeyError):
        index.remove(2)
    index.add(2, stories[2])
    assert index.candidates(page) == [2]
    index.add(2, stories[3])  # re-adding replaces
    assert 2 not in index.candidates(page) and len(index) == 5


def test_datasketch_storage_backend_agrees_with_memory(gen):
    """The datasketch storage_config path (Redis for shared workers) gives the same
    candidates; {'type': 'dict'} exercises it without a server."""
    stories = {i: gen.story(8_000_000 + i) for i in range(60)}
    mem = StoryIndex.build(stories.items())
    ds = StoryIndex.build(stories.items(), config={"type": "dict", "basename": b"test"})
    rng = bench.random.Random(4)
    pages = [gen.copy(stories[3], rng), gen.reword(stories[10], rng),
             gen.excerpt(stories[20], gen.story(9_000_000), rng), gen.story(9_000_001)]
    for page in pages:
        assert mem.candidates(page) == ds.candidates(page)
    ds.remove(3)
    assert 3 not in ds and len(ds) == 59 and 3 not in ds.candidates(pages[0])
    with pytest.raises(ValueError, match="backend type"):
        StoryIndex({"type": "mongo"})


def test_pages_looked_up_together_get_what_each_gets_alone(gen, monkeypatch):
    """The batched lookup the crawler uses: no window or count crosses from one page
    to the next, whatever the pages (empty, a few words, copies, unrelated news)."""
    stories = {i: gen.story(8_500_000 + i) for i in range(80)}
    rng = bench.random.Random(6)
    pages = ["", "Troop", "one two three", gen.copy(stories[1], rng), gen.story(9_100_000),
             gen.reword(stories[2], rng), gen.excerpt(stories[3], gen.story(9_100_001), rng),
             gen.copy(stories[1], rng), "   "]
    for config in (None, {"type": "dict", "basename": b"batch"}):
        index = StoryIndex.build(stories.items(), config=config)
        index.remove(40)
        index.add(200, gen.story(8_500_040))  # lives in the delta until the next merge
        alone = [index.scored_candidates(p) for p in pages]
        assert [c[0].story_id if c else None for c in alone] == [None, None, None, 1, None, 2, 3, 1, None]
        assert index.scored_candidates_many(pages) == alone
        assert index.scored_candidates_many([]) == []
    # a batch too large for one lookup is split, with the same result
    monkeypatch.setattr(index_module, "MAX_BATCH_CHARS", len(pages[3]) + 10)
    assert index.scored_candidates_many(pages) == alone


@pytest.mark.parametrize(("sharing", "found"), [(30, True), (90, True), (120, False)])
def test_a_passage_shared_by_many_stories_counts_until_max_posting_df(gen, sharing, found):
    """Anchors of a passage in up to MAX_POSTING_DF (100) stories are evidence, more is
    boilerplate. 30 copies sit in a short directory bucket, 90 in one long enough to be
    binary-searched instead: both paths must find every story."""
    boiler = gen.story(9_200_000).split("\n\n")[1]
    stories = {i: f"{gen.story(9_300_000 + i)}\n\n{boiler}" for i in range(sharing)}
    stories.update({1000 + i: gen.story(9_400_000 + i) for i in range(200)})
    index = StoryIndex.build(stories.items())
    got = index.candidates(f"Site menu\n\n{boiler}\n\nContact us", limit=500)
    assert sorted(got) == (list(range(sharing)) if found else [])


def test_bad_input():
    index = StoryIndex()
    assert index.candidates("anything") == []
    index.add(1, "")
    assert index.candidates("") == [] and index.candidates("\x00\xff binary \ud800") == []
    with pytest.raises(TypeError):
        index.candidates(b"bytes")  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        index.add(-1, "text")
    assert "1" not in index and None not in index


def test_matcher_verifies_candidates_and_include(corpus_dir):
    pytest.importorskip("crawler.matching.compare")
    from crawler.matching import Matcher, Verdict

    d = corpus_dir / "mission"
    seed = (d / "seed/reuters_deepseek_r2.txt").read_text()
    metro = (d / "candidates/related_metro.txt").read_text()
    m = Matcher.build([(1, seed), (2, metro)])
    page = (d / "candidates/002.txt").read_text()
    out = m.match(page)
    assert [sid for sid, _ in out] == [1] and isinstance(out[0][1], Verdict)
    # include: always verified, listed first, even when the index does not propose it
    out = m.match(page, include=[2])
    assert [sid for sid, _ in out] == [2, 1]
    assert m.match(page, only=[2]) == []
    with pytest.raises(KeyError):
        m.match(page, include=[99])


def test_bench_quick_json():
    proc = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "match.py"), "--quick", "--json"],
        capture_output=True, text=True, timeout=600, cwd=ROOT,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    res = json.loads(proc.stdout)
    for key in ("matcher", "latency", "recall", "memory", "targets", "verifier"):
        assert key in res
    assert set(res["latency"]) == {"200", "1000", "3000"}
    for v in res["latency"].values():
        assert {"median_ms", "p99_ms", "queries"} <= set(v)
    for v in res["recall"].values():
        assert {"copy", "excerpt", "reworded", "unrelated_with_candidates"} <= set(v)
    assert res["memory"]["bytes_per_story"] > 0
    m = res["matcher"]["1000"]
    assert "pages_per_s" in m or "skipped" in m
    if "pages_per_s" in m:
        assert {"brute_force_pages_per_s", "brute_force_extrapolated", "speedup_index_vs_brute_force"} <= set(m)


def test_redis_backend_shared_between_workers(gen, tmp_path):
    """Two StoryIndex objects on one Redis (two crawl workers) see the same stories."""
    import shutil
    import socket
    import time

    exe = shutil.which("redis-server")
    if exe is None:
        skip_or_fail("redis-server is not installed")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen(
        [exe, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", str(tmp_path)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    try:
        import redis

        client = redis.Redis(host="127.0.0.1", port=port)
        for _ in range(100):  # bounded wait for the server to accept connections
            try:
                client.ping()
                break
            except redis.ConnectionError:
                time.sleep(0.05)
        cfg = {"type": "redis", "redis": {"host": "127.0.0.1", "port": port}, "basename": b"chtest"}
        stories = {i: gen.story(10_000_000 + i) for i in range(30)}
        a = StoryIndex.build(stories.items(), config=cfg)
        b = StoryIndex(cfg)
        page = gen.copy(stories[7], bench.random.Random(1))
        assert len(b) == 30 and b.candidates(page) == a.candidates(page) == [7]
        b.remove(7)
        assert 7 not in a and a.candidates(page) == [] and len(a) == 29
    finally:
        proc.terminate()
        proc.wait(timeout=10)
