"""Search discovery: phrase selection, the SearXNG and Bing clients against a real local
server speaking their formats, provider failures, and discovery end to end."""

from __future__ import annotations

import socket

import pytest

from crawler.alerts.errors import ConfigError
from crawler.matching.text import normalize, words
from crawler.search.discovery import discover, search_plan_entries
from crawler.search.fake_server import FakeSearchServer
from crawler.search.phrases import distinctive_phrases
from crawler.search.providers import (
    BingProvider,
    SearchAuthError,
    SearchError,
    SearxngProvider,
    provider_from_env,
)

STORY = """Ferry yard to close its dry dock
PORT ALDOUS, March 3 (Estuary Post) - The Lindqvist ferry yard in Port Aldous will close its dry dock in March, ending 112 years of shipbuilding on the estuary, according to a letter seen by this newspaper.
The letter, signed by managing director Ines Farrow, tells the 340 remaining workers that the company could not find a buyer for the dock after the loss of a naval maintenance contract worth 48 million pounds.
"We have exhausted every option that would keep the cranes turning and the welders working through the winter," Farrow wrote.
Union organiser Tomas Keel said members had been told nothing before the letter arrived and would ask the regional council for an emergency meeting.
The yard did not respond to a request for comment on Tuesday evening or on Wednesday morning.
Reporting by Anna Berg; Editing by Carl Holm and the whole estuary desk team
"""

QUOTE = "We have exhausted every option that would keep the cranes turning"


def _fresh(phrase: str, text: str) -> bool:
    """The phrase occurs word for word in the text."""
    needle, hay = words(phrase), words(text)
    return any(hay[i : i + len(needle)] == needle for i in range(len(hay) - len(needle) + 1))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# --- phrase selection ----------------------------------------------------------------


def test_phrases_are_verbatim_runs_of_the_story_within_the_length_range() -> None:
    phrases = distinctive_phrases(STORY)
    assert 1 <= len(phrases) <= 5
    for phrase in phrases:
        assert 8 <= len(words(phrase)) <= 12, phrase
        assert _fresh(phrase, STORY), phrase
        assert '"' not in phrase


def test_phrases_skip_quotes_boilerplate_datelines_and_headlines() -> None:
    phrases = distinctive_phrases(STORY, max_phrases=10)
    joined = " | ".join(phrases).lower()
    for word in ("exhausted", "cranes", "welders"):  # the quoted statement
        assert word not in joined
    for word in ("reporting", "editing", "request for comment", "estuary post"):
        assert word not in joined
    assert not any(p.lower().startswith("ferry yard to close") for p in phrases)  # headline
    assert "port aldous, march 3" not in joined  # dateline


def test_phrases_prefer_names_and_figures_over_generic_prose() -> None:
    text = (
        "The weather was very nice and many people went outside to enjoy the long afternoon in the park.\n\n"
        "The Lindqvist ferry yard in Port Aldous will close its dry dock after 112 years of shipbuilding.\n\n"
        "Everyone agreed that it had been a pleasant and rather quiet day for the whole neighbourhood.\n"
    )
    [best] = distinctive_phrases(text, max_phrases=1)
    assert "Port Aldous" in best and "112" in best


def test_a_text_of_only_quotes_gives_no_phrase() -> None:
    text = (
        '"We will keep every job at the plant and invest in new machinery this year," the minister said.\n'
        '"Nobody should doubt our commitment to the workers of this town and their families."\n'
    )
    phrases = distinctive_phrases(text)
    assert all("machinery" not in p and "commitment" not in p for p in phrases)
    assert phrases == [] or all(len(words(p)) >= 8 for p in phrases)
    assert distinctive_phrases('"' + "one two three four five six seven eight nine ten." + '"') == []


def test_attribution_frames_rank_below_the_story_s_own_reporting() -> None:
    text = (
        '"This changes everything for the market," said Vijayasimha Alilughatta, chief operating officer of Zensar Technologies in Pune.\n\n'
        "Zensar quietly moved 1,200 engineers from its Pune campus to a new cloud unit last quarter, internal memos show.\n"
    )
    [best] = distinctive_phrases(text, max_phrases=1)
    assert "1,200 engineers" in best


def test_phrases_are_deterministic_and_respect_limits() -> None:
    assert distinctive_phrases(STORY) == distinctive_phrases(STORY)
    assert len(distinctive_phrases(STORY, max_phrases=2)) == 2
    for phrase in distinctive_phrases(STORY, words_per_phrase=6):
        assert len(words(phrase)) == 6
    assert distinctive_phrases("") == []
    with pytest.raises(ValueError, match="words_per_phrase"):
        distinctive_phrases(STORY, words_per_phrase=(12, 8))
    with pytest.raises(ValueError, match="max_phrases"):
        distinctive_phrases(STORY, max_phrases=0)


def test_phrases_of_a_real_aggregator_page_avoid_the_analyst_quote(shared_dir) -> None:
    seed = next((shared_dir / "seeds").glob("000_*"))
    text = seed.read_text(encoding="utf-8")
    phrases = distinctive_phrases(text)
    assert len(phrases) == 5
    norm = normalize(text)
    for phrase in phrases:
        assert _fresh(phrase, norm)
    # The quote of the analyst is shared by every report of it: never a query.
    assert not any("pivotal moment" in p for p in phrases)


# --- providers against the local server --------------------------------------------

DOCS = {
    "http://copy.example/ferry": "Copied ferry story\n" + STORY,
    "http://other.example/weather": "Weather\nThe weather was nice and people enjoyed the park all afternoon.",
}


def test_searxng_client_finds_the_document_with_the_exact_phrase() -> None:
    with FakeSearchServer(DOCS) as engine:
        provider = SearxngProvider(engine.base_url, backoff=0)
        results = provider.search('"managing director Ines Farrow, tells the 340 remaining workers"', count=10)
        assert [r.url for r in results] == ["http://copy.example/ferry"]
        assert results[0].title == "Copied ferry story"
        assert "Lindqvist" in results[0].snippet
        assert provider.search('"Ines Farrow tells the 341 remaining workers"', count=10) == []
        assert engine.requests[0]["params"]["format"] == "json"


def test_searxng_pages_until_count_and_stops_on_an_empty_page() -> None:
    docs = {f"http://site{i}.example/a": f"page {i} mentions the Lindqvist ferry yard" for i in range(25)}
    with FakeSearchServer(docs) as engine:
        results = SearxngProvider(engine.base_url, backoff=0).search('"Lindqvist ferry yard"', count=15)
        assert len(results) == 15 and len({r.url for r in results}) == 15
        assert [r["params"]["pageno"] for r in engine.requests] == ["1", "2"]
        engine.requests.clear()
        assert len(SearxngProvider(engine.base_url, backoff=0, max_pages=5).search('"Lindqvist"', count=100)) == 25
        assert [r["params"]["pageno"] for r in engine.requests] == ["1", "2", "3", "4"]  # 4th is empty


def test_bing_client_sends_the_key_and_reads_web_pages() -> None:
    with FakeSearchServer(DOCS, key="k-123") as engine:
        provider = BingProvider("k-123", endpoint=engine.base_url, backoff=0)
        results = provider.search('"ferry yard in Port Aldous will close its dry dock"', count=5)
        assert [r.url for r in results] == ["http://copy.example/ferry"]
        request = engine.requests[-1]
        assert request["path"] == "/v7.0/search" and request["params"]["count"] == "5"
        assert request["headers"]["Ocp-Apim-Subscription-Key"] == "k-123"
        assert "k-123" not in repr(provider)
        assert provider.search('"no such words anywhere at all"', count=5) == []


def test_bing_rejected_key_names_the_setting_and_never_shows_the_key() -> None:
    with FakeSearchServer(DOCS, key="right-key") as engine:
        provider = BingProvider("wrong-secret-key", endpoint=engine.base_url, backoff=0)
        with pytest.raises(SearchAuthError) as caught:
            provider.search('"Lindqvist"', count=5)
        assert "COPYHOUND_SEARCH_KEY rejected" in str(caught.value)
        assert "wrong-secret-key" not in str(caught.value)
        assert len(engine.requests) == 1  # a rejected key is not retried


def test_a_server_error_is_retried_then_succeeds() -> None:
    waits: list[float] = []
    with FakeSearchServer(DOCS) as engine:
        engine.fail_next.extend([500, 503])
        provider = SearxngProvider(engine.base_url, retries=3, backoff=0.5, sleep=waits.append)
        results = provider.search('"Lindqvist ferry yard in Port Aldous"', count=5)
        assert [r.url for r in results] == ["http://copy.example/ferry"]
        assert [r["params"]["pageno"] for r in engine.requests] == ["1", "1", "1", "2"]  # 2 failures, then pages
        assert waits == [0.5, 1.0]  # exponential backoff, no real sleeping


def test_rate_limit_honours_retry_after_and_errors_stop_after_the_retry_budget() -> None:
    waits: list[float] = []
    with FakeSearchServer(DOCS) as engine:
        engine.fail_next.append(429)  # with Retry-After: 0
        provider = SearxngProvider(engine.base_url, retries=2, backoff=5, sleep=waits.append)
        assert provider.search('"Lindqvist"', count=5)
        assert waits == [0.0]
        engine.fail_next.extend([500, 500, 500])
        with pytest.raises(SearchError, match=r"HTTP 500 3 times"):
            provider.search('"Lindqvist"', count=5)


def test_bad_json_and_a_forbidden_format_give_clear_errors() -> None:
    with FakeSearchServer(DOCS) as engine:
        engine.fail_next.append("bad-json")
        provider = SearxngProvider(engine.base_url, backoff=0)
        with pytest.raises(SearchError, match="did not answer with JSON"):
            provider.search('"Lindqvist"', count=5)
        engine.fail_next.append(403)
        with pytest.raises(SearchAuthError, match="search.formats"):
            provider.search('"Lindqvist"', count=5)


def test_a_provider_that_is_down_is_reported_after_bounded_retries() -> None:
    waits: list[float] = []
    provider = SearxngProvider(f"http://127.0.0.1:{_free_port()}", retries=2, backoff=0.1, sleep=waits.append,
                               timeout=2)
    with pytest.raises(SearchError, match="unreachable"):
        provider.search('"Lindqvist"', count=5)
    assert waits == [0.1, 0.2]


def test_provider_settings_from_the_environment() -> None:
    assert isinstance(provider_from_env({"COPYHOUND_SEARCH_PROVIDER": "searxng",
                                         "COPYHOUND_SEARCH_URL": "http://127.0.0.1:9"}), SearxngProvider)
    bing = provider_from_env({"COPYHOUND_SEARCH_PROVIDER": "Bing", "COPYHOUND_SEARCH_KEY": "s3cret"})
    assert isinstance(bing, BingProvider) and bing.endpoint == "https://api.bing.microsoft.com"
    for env, setting in [
        ({}, "COPYHOUND_SEARCH_PROVIDER"),
        ({"COPYHOUND_SEARCH_PROVIDER": "google"}, "COPYHOUND_SEARCH_PROVIDER"),
        ({"COPYHOUND_SEARCH_PROVIDER": "searxng"}, "COPYHOUND_SEARCH_URL"),
        ({"COPYHOUND_SEARCH_PROVIDER": "bing"}, "COPYHOUND_SEARCH_KEY"),
        ({"COPYHOUND_SEARCH_PROVIDER": "searxng", "COPYHOUND_SEARCH_URL": "http://x", "COPYHOUND_SEARCH_TIMEOUT": "soon"},
         "COPYHOUND_SEARCH_TIMEOUT"),
    ]:
        with pytest.raises(ConfigError, match=setting):
            provider_from_env(env)


# --- discovery end to end ----------------------------------------------------------


def test_discover_finds_copies_and_drops_the_story_s_own_site_and_unrelated_pages() -> None:
    excerpt = STORY.splitlines()[2]  # one paragraph taken word for word
    documents = {
        "http://copycat.example/news/ferry?utm_source=feed": "Republished\nSome intro of their own.\n" + STORY,
        "http://excerpt.example/blog/1": "A blog quoting a paragraph\n" + excerpt + "\nWhat do you think?",
        "http://estuarypost.example/news/ferry-yard": STORY,  # the story itself
        "http://estuarypost.example/amp/ferry-yard": STORY,  # its own AMP page
        "http://unrelated.example/weather": DOCS["http://other.example/weather"],
        # Independent report: the same quote and the same facts, its own wording.
        "http://independent.example/yard": (
            "Port Aldous yard to shut\nShipbuilder Lindqvist confirmed the closure of its Port Aldous dock, "
            'which employs 340 people. "We have exhausted every option that would keep the cranes turning '
            'and the welders working through the winter," Farrow wrote.'
        ),
    }
    with FakeSearchServer(documents) as engine:
        urls = discover(STORY, provider=SearxngProvider(engine.base_url, backoff=0),
                        own_url="https://www.estuarypost.example/news/ferry-yard")
    assert urls[0] == "http://copycat.example/news/ferry"  # canonical: tracking parameter gone
    assert "http://excerpt.example/blog/1" in urls
    assert not any("estuarypost.example" in u or "unrelated" in u or "independent" in u for u in urls)
    assert len(urls) == len(set(urls)) == 2


def test_discover_caps_results_and_fails_loudly_when_every_query_fails() -> None:
    documents = {f"http://copy{i}.example/a": STORY for i in range(8)}
    with FakeSearchServer(documents) as engine:
        provider = BingProvider("k", endpoint=engine.base_url, backoff=0, retries=0)
        assert len(discover(STORY, provider=provider, max_results=3)) == 3
        engine.fail_next.extend([500] * 20)
        with pytest.raises(SearchError):
            discover(STORY, provider=provider, max_phrases=2)
        engine.fail_next.clear()
        engine.fail_next.append(500)  # one phrase fails, the others still find the copies
        assert len(discover(STORY, provider=provider, max_phrases=3)) == 8


def test_search_plan_entries_are_fetch_only_entries_from_the_environment_settings() -> None:
    with FakeSearchServer({"http://copy.example/x": STORY}) as engine:
        env = {"COPYHOUND_SEARCH_PROVIDER": "searxng", "COPYHOUND_SEARCH_URL": engine.base_url}
        entries = search_plan_entries(STORY, own_url=None, options={"max_results": 10, "max_phrases": 2}, env=env)
        assert entries == [{"kind": "search", "url": "http://copy.example/x", "max_depth": 0}]
        assert len({r["params"]["q"] for r in engine.requests}) == 2  # one query per phrase
        assert all(r["params"]["q"].startswith('"') and r["params"]["q"].endswith('"') for r in engine.requests)
