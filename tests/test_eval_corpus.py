"""The verifier against the labelled corpora in ../shared/corpus (targets of the
matching issue). Skips outside CI when the corpus is absent."""

from __future__ import annotations

from pathlib import Path

import pytest

from crawler.evaluation.pairs import evaluate_pairs, format_pairs_table

pytestmark = pytest.mark.corpus


def _dir(corpus_dir: Path, name: str) -> Path:
    d = corpus_dir / name
    if not (d / "pairs.csv").is_file():
        pytest.fail(f"{d}/pairs.csv missing from the shared corpus")
    return d


@pytest.fixture(scope="module")
def mission(corpus_dir):
    return evaluate_pairs(_dir(corpus_dir, "mission"))


def test_mission_every_pair_gets_its_kind(mission):
    kinds = {r["id"]: r["kind"] for r in mission["results"]}
    expected = {r["id"]: r["label"] for r in mission["results"]}
    for pid, label in expected.items():
        want = "not_derived" if label == "unrelated" else label
        assert kinds[pid] == want, f"{pid}: {label} judged {kinds[pid]}\n{format_pairs_table(mission, show_pairs=True)}"
    assert mission["by_label"]["unrelated"]["flagged"] == 0
    assert mission["recall"] == 1.0 and mission["kind_accuracy"] == 1.0


def test_mission_holds_without_background(corpus_dir):
    r = evaluate_pairs(_dir(corpus_dir, "mission"), use_background=False)
    assert r["recall"] == 1.0 and r["precision"] == 1.0


def test_mission_evidence_is_checkable(mission, corpus_dir):
    d = _dir(corpus_dir, "mission")
    story = (d / "seed/reuters_deepseek_r2.txt").read_text(encoding="utf-8")
    from crawler.matching.compare import compare

    page = (d / "candidates/002.txt").read_text(encoding="utf-8")
    v = compare(story, page)
    assert v.story_coverage > 0.5 and v.passages
    for p in v.passages:
        assert story[p.story_start : p.story_end] == p.story_text
        assert page[p.page_start : p.page_end] == p.page_text


def test_clough_stevenson_targets(corpus_dir):
    r = evaluate_pairs(_dir(corpus_dir, "clough_stevenson"))
    by = r["by_label"]
    table = format_pairs_table(r)
    # Two of the 19 "cut" answers (g4pD_taskb, g2pE_taskc) were cut from a different
    # Wikipedia article than their source and share no wording with it: 17/19 is the
    # ceiling for any matcher that reads the texts (see the report), hence 0.89 here.
    assert by["copy"]["flagged"] / by["copy"]["n"] >= 0.89, table
    assert by["rewrite"]["flagged"] / by["rewrite"]["n"] >= 0.85, table
    assert by["independent"]["flagged"] <= 2, table


def test_semeval_independent_pairs_not_flagged(corpus_dir):
    r = evaluate_pairs(_dir(corpus_dir, "semeval2022_en"))
    assert r["by_label"]["independent"]["flagged"] <= 2, format_pairs_table(r)
    assert "same_story" in r["by_label"]  # reported, not scored
    assert 0.0 <= r["by_label"]["same_story"]["rate"] <= 1.0


def test_bad_directories_raise_clear_errors(tmp_path):
    with pytest.raises(ValueError, match="pairs.csv"):
        evaluate_pairs(tmp_path)
    (tmp_path / "pairs.csv").write_text("id,seed,candidate,detail\nx,a.txt,b.txt,\n")
    with pytest.raises(ValueError, match="label"):
        evaluate_pairs(tmp_path)
    (tmp_path / "a.txt").write_text("A story about a harbour.")
    (tmp_path / "pairs.csv").write_text("id,seed,candidate,label,detail\nx,a.txt,missing.txt,copy,\n")
    with pytest.raises(ValueError, match="missing.txt"):
        evaluate_pairs(tmp_path)
    (tmp_path / "pairs.csv").write_text("id,seed,candidate,label,detail\nx,a.txt,a.txt,,\n")
    with pytest.raises(ValueError, match="line 2"):
        evaluate_pairs(tmp_path)


def test_any_directory_in_the_format(tmp_path):
    story = "The harbour board approved a new ferry terminal on Tuesday after a long dispute.\n" * 1
    story += "Engineers will raise the quay by 1.4 metres and build a tidal barrier next year.\n"
    story += "Fisherman Tobias Wren said the decision felt rushed and would leave boats nowhere to go.\n"
    (tmp_path / "s.txt").write_text(story)
    (tmp_path / "c.txt").write_text("Menu | Login\n" + story + "Related: weather\n")
    (tmp_path / "u.txt").write_text("A chipmaker beat expectations as demand from carmakers rose sharply.\n")
    (tmp_path / "p.html").write_text("<html><body><p>ignored</p></body></html>")
    (tmp_path / "pairs.csv").write_text(
        "id,seed,candidate,label,detail\n1,s.txt,c.txt,copy,\n2,s.txt,u.txt,unrelated,\n3,s.txt,p.html,same_story,\n"
    )
    r = evaluate_pairs(tmp_path, extract_html=lambda html: story)
    assert r["pairs"] == 3 and r["recall"] == 1.0 and r["precision"] == 1.0
    assert r["by_label"]["same_story"] == {"n": 1, "flagged": 1, "rate": 1.0}
    assert [x["id"] for x in r["results"]] == ["1", "2", "3"]
    assert "copy" in format_pairs_table(r)
