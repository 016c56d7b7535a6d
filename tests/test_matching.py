"""The verifier on small hand-written cases, one per kind, plus its contracts:
offsets slice back to the texts, the Background round-trips, numbers live in
thresholds.py only."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from crawler.matching import thresholds
from crawler.matching.background import Background, BackgroundFormatError
from crawler.matching.compare import compare, prepare
from crawler.matching.text import normalize, sentences, stem, words

# A made-up story: a port authority in a fictional town and its new ferry terminal.
STORY = """Harbourview approves $48 million ferry terminal after three-year fight
KESTRELMOUTH, March 3 - The Kestrelmouth Port Authority voted 5-2 on Tuesday to build a $48 million ferry terminal on the old cannery site, ending a three-year dispute with residents of the Saltmarsh district.
The terminal will handle up to 1,200 passengers an hour and replace the wooden pier that has served the island crossing since 1957, according to planning documents seen by the Coastal Ledger.
Opponents had argued that the cannery site floods twice a year and that construction lorries would choke the narrow lanes of Saltmarsh.
"We have listened to every objection and redesigned the access road twice," authority chair Miriam Okonkwo said in a statement after the vote.
Engineers will raise the quay by 1.4 metres and build a tidal barrier, a change that added $6 million to the original budget.
Local fisherman Tobias Wren, whose family has moored at the pier for four generations, said the decision felt rushed. "They counted the ferries but they never counted the boats that will have nowhere to go," he told the Ledger.
Construction is due to start in September and finish before the summer season of 2027.
The authority expects the terminal to double weekend visitor numbers to the island within five years.
Two members who voted against, Piet Halvorsen and Sunita Rao, said they would ask the regional auditor to review the cost estimates.
"""

CHROME = """Home | News | Sport | Weather | Sign in
Subscribe to our newsletter for the day's top stories
Advertisement
"""
TEASERS = """More from around the web
Ten gardening mistakes that ruin tomatoes every summer, according to experts
Why the price of olive oil doubled in two years and what shoppers can do about it
Cookie settings | Privacy policy | Terms of use | Contact us
"""

# Same event, written independently: shares names, figures and the public statement.
INDEPENDENT = """Port board backs new ferry hub
The Kestrelmouth Port Authority on Tuesday gave the go-ahead to a $48 million ferry terminal, in a 5-2 vote held in the town hall.
Chair Miriam Okonkwo defended the scheme. "We have listened to every objection and redesigned the access road twice," she said.
The new hub will sit on the former cannery land by the harbour wall.
Campaigners from Saltmarsh, who packed the public gallery, booed as the result was announced and vowed to keep fighting.
Council leader Ade Brennan welcomed the investment, saying the town had waited too long for a modern crossing.
Ticket prices for the crossing are not expected to change when the terminal opens.
"""

REWRITE = """Ferry terminal gets green light in Kestrelmouth
After a three-year battle with people living in Saltmarsh, the Kestrelmouth Port Authority has approved a $48 million ferry terminal on the site of the former cannery, with five members in favour and two against.
Planning papers obtained by the Coastal Ledger show the terminal is designed for as many as 1,200 passengers each hour, taking over from the wooden pier in use for the island crossing since 1957.
Critics said the cannery land is flooded twice every year and that building lorries would block the small lanes of Saltmarsh.
To deal with flooding, engineers plan to lift the quay 1.4 metres and add a tidal barrier, raising the budget by $6 million.
Tobias Wren, a fisherman whose family has tied up at the pier for four generations, called the decision rushed and said boats would be left with nowhere to go.
Work is set to begin in September, with completion planned ahead of the 2027 summer season.
Piet Halvorsen and Sunita Rao, the two members who opposed the plan, want the regional auditor to check the cost estimates.
"""

SPUN = """Harborview endorses $48 million boat terminal after three-year battle
KESTRELMOUTH, March 3 - The Kestrelmuth Port Authorities polled 5-2 on Tuesday to construct a $48 million boat terminal on the aged cannary location, finishing a three-year conflict with occupants of the Saltmarch region.
The terminal shall manage up to 1,200 travelers an hour and substitute the timber jetty that has served the isle crossing since 1957, as per planning papers viewed by the Coastel Ledger.
Adversaries had contended that the cannary location floods two times a year and that building trucks would strangle the slim lanes of Saltmarch.
"We have heard every complaint and rearranged the entry road two times," authority chairwoman Miriam Okonkwu stated in a declaration following the poll.
Engineers shall lift the quay by 1.4 metres and construct a tidal wall, a modification that included $6 million to the initial budget.
Regional angler Tobias Wrenn, whose household has anchored at the jetty for four generations, stated the choice felt hurried. "They tallied the ferries but they never tallied the vessels that will have nowhere to go," he informed the Ledger.
Building is scheduled to begin in September and end before the summer time of 2027.
The authorities anticipates the terminal to increase weekend guest numbers to the isle within five years.
"""

OTHER_ARTICLE = """Island tourism booms as new walking trails open
Visitor numbers on the island rose sharply last year as three coastal walking trails opened to the public, the tourism board said.
The trails link the lighthouse, the bird reserve and the old smugglers' caves, and local cafes report their busiest season on record.
Transport to the island has become a talking point for businesses. The latest news from the mainland:
The terminal will handle up to 1,200 passengers an hour and replace the wooden pier that has served the island crossing since 1957, according to planning documents seen by the Coastal Ledger.
Opponents had argued that the cannery site floods twice a year and that construction lorries would choke the narrow lanes of Saltmarsh.
Café owner Lena Fischer said she hoped the better crossing would bring day-trippers in the spring as well as the summer.
The tourism board plans to add waymarks and benches along all three trails before Easter, and volunteers will run guided walks every Saturday.
A survey of visitors found that most came for the scenery and the seafood, while one in five said they had visited the caves.
"""

UNRELATED = """Quarterly results: a chipmaker beats expectations
Shares in a European semiconductor maker rose 7% after it reported record quarterly revenue on strong demand from carmakers and data centres.
The company raised its full-year outlook and said supply constraints on older production lines were easing.
Analysts had expected weaker margins because of higher energy prices in its main factories.
"""


@pytest.fixture(scope="module")
def story():
    return prepare(STORY)


def test_copy_inside_noisy_page(story):
    page = CHROME + STORY + TEASERS
    v = compare(story, page)
    assert v.kind == "copy"
    assert v.story_coverage > 0.9
    assert v.page_coverage < 0.95  # the chrome is not from the story


def test_excerpt_inside_other_article(story):
    v = compare(story, OTHER_ARTICLE)
    assert v.kind == "excerpt"
    assert v.story_coverage < 0.5
    assert any("1,200 passengers" in p.page_text for p in v.passages)


def test_rewrite_same_order(story):
    v = compare(story, REWRITE)
    assert v.kind == "rewrite"
    js = [p.story_start for p in v.passages]
    assert js == sorted(js) and len(v.passages) >= 1


def test_spun_synonyms_and_garbled_names(story):
    v = compare(story, SPUN)
    assert v.kind == "spun"
    assert v.scores["fuzzy_share"] > 0


def test_independent_same_event_not_derived(story):
    v = compare(story, INDEPENDENT)
    assert v.kind == "not_derived"
    assert not v.derived


def test_unrelated_not_derived(story):
    v = compare(story, UNRELATED)
    assert v.kind == "not_derived"
    assert v.story_coverage < 0.1


@pytest.mark.parametrize("page", [CHROME + STORY + TEASERS, OTHER_ARTICLE, REWRITE, SPUN])
def test_passage_offsets_slice_back_to_original_texts(page):
    v = compare(STORY, page)
    assert v.passages
    for p in v.passages:
        assert STORY[p.story_start : p.story_end] == p.story_text
        assert page[p.page_start : p.page_end] == p.page_text
        assert 0.0 <= p.similarity <= 1.0


def test_prepared_and_plain_story_agree(story):
    assert compare(story, REWRITE) == compare(STORY, REWRITE)


def test_empty_and_whitespace_pages_are_not_derived(story):
    assert compare(story, "").kind == "not_derived"
    assert compare(story, " \n\t ").kind == "not_derived"


def test_background_discounts_boilerplate():
    """A site footer shared by every page of a crawl is not evidence of copying."""
    footer = (
        "\nSupport local journalism and subscribe today to read every story without limits."
        "\nYour subscription funds reporting and investigations that keep the community informed."
        "\nThank you for reading and for supporting the newsroom that serves this town every day."
    )
    story = STORY + footer
    page = UNRELATED + OTHER_ARTICLE.split("Transport to the island")[0] + footer
    crawl = [
        f"Item {k}: the council discussed road repairs, library hours and budget line {k * 7}." + footer
        for k in range(40)
    ]
    plain = compare(story, page)
    with_bg = compare(story, page, background=Background.from_texts(crawl + [page]))
    assert plain.scores["verbatim_tokens"] > 0  # without a background the footer is shared wording
    assert with_bg.scores["verbatim_tokens"] < plain.scores["verbatim_tokens"]
    assert with_bg.kind == "not_derived"
    # and the background does not hide a real copy carrying the same footer
    assert compare(story, CHROME + story, background=Background.from_texts(crawl)).kind == "copy"


def test_background_roundtrip_and_bad_bytes():
    bg = Background.from_texts([STORY, REWRITE, UNRELATED])
    again = Background.from_bytes(bg.to_bytes())
    assert len(again) == 3
    assert again.stem_df("terminal") == bg.stem_df("terminal") == 2
    assert compare(STORY, SPUN, background=again) == compare(STORY, SPUN, background=bg)
    with pytest.raises(BackgroundFormatError):
        Background.from_bytes(b"not a background")
    with pytest.raises(BackgroundFormatError):
        Background.from_bytes(bg.to_bytes()[:-4])


def test_text_functions():
    assert words("DeepSeek\u2019s \u201cR2\u201d state-owned 1,200") == ["deepseek", "r2", "state", "owned", "1,200"]
    assert normalize("a\u00a0 b\n\n\n c") == "a b\n\nc"
    assert stem("launched") == stem("launches") == "launch"
    text = "Mr. Smith arrived. He said hello!\nHEADLINE\nIt was late."
    spans = sentences(text)
    assert [text[s.start : s.end] for s in spans] == ["Mr. Smith arrived.", "He said hello!", "HEADLINE", "It was late."]


def test_hard_wrapped_text_keeps_sentences_whole():
    text = (
        "Inheritance is a basic concept of programming where the basic\n"
        "idea is to create new classes that add extra detail to existing\n"
        "classes of the program. This is done by allowing the new classes\n"
        "to reuse the methods and variables of the existing classes.\n"
    )
    assert len(sentences(text)) == 2


def test_thresholds_module_is_the_only_place_numbers_live():
    """Matcher modules other than thresholds.py contain no float literals and no int
    literals beyond small structural ones (0, 1, 2, 3 for indices and n-gram shapes)."""
    root = Path(thresholds.__file__).parent
    allowed_ints = {0, 1, 2, 3}
    offenders = []
    for name in ("align.py", "compare.py"):
        tree = ast.parse((root / name).read_text())
        rounding = {
            id(call.args[1])
            for call in ast.walk(tree)
            if isinstance(call, ast.Call) and getattr(call.func, "id", "") == "round" and len(call.args) == 2
        }
        for node in ast.walk(tree):
            if id(node) in rounding:
                continue  # round(x, 4): display precision, not a threshold
            if isinstance(node, ast.Constant) and type(node.value) in (int, float):
                if isinstance(node.value, float) and node.value not in (0.0, 1.0, 0.5, 2.0):
                    offenders.append(f"{name}:{node.lineno} {node.value}")
                elif isinstance(node.value, int) and node.value not in allowed_ints:
                    offenders.append(f"{name}:{node.lineno} {node.value}")
    assert not offenders, offenders
    # and every threshold is documented by a comment block above it
    src = (root / "thresholds.py").read_text()
    names = re.findall(r"^([A-Z_]+) = ", src, flags=re.M)
    assert len(names) >= 15


def test_every_word_of_a_sentence_is_a_token():
    """The first word of a sentence is often its subject, a name ("Mohanlal said ...");
    an earlier tokeniser dropped it."""
    p = prepare("Kestrelmouth voted. Okonkwo said yes.\nHalvorsen objected")
    assert p.tokens == ["kestrelmouth", "voted", "okonkwo", "said", "yes", "halvorsen", "objected"]
    # a sentence-initial capital is not evidence of a name; one mid-sentence is
    assert prepare("Okonkwo voted.").rare == set()
    assert prepare("Yesterday Okonkwo voted.").rare == {stem("okonkwo")}


def test_verdicts_do_not_depend_on_the_hash_seed(corpus_dir):
    """Fuzzy near-miss matching and the alignment iterate over stems; with Python's
    per-process string hashing, set order once changed the confidence and passages of
    mission m-001, m-003 and m-004 from one run to the next. Processes with different
    seeds must agree exactly."""
    import json
    import os
    import subprocess
    import sys

    outs = []
    for seed in ("1", "2", "3", "4"):
        proc = subprocess.run(
            [sys.executable, "-m", "crawler.cli", "eval", str(corpus_dir / "mission"), "--json"],
            cwd=Path(__file__).resolve().parent.parent, env={**os.environ, "PYTHONHASHSEED": seed},
            capture_output=True, text=True, timeout=300,
        )
        assert proc.returncode == 0, proc.stderr[-2000:]
        outs.append(json.loads(proc.stdout)["results"])
    assert outs[0] == outs[1] == outs[2] == outs[3]
