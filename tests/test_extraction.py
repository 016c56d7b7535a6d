"""Extraction on hostile input: wrong charsets, broken and gigantic markup,
binary files, noisy news pages; and the benchmark figure on real pages."""

from __future__ import annotations

import gzip
import logging
import json
import random
from pathlib import Path

import pytest

from crawler.evaluation.extraction import evaluate_extraction, format_extraction_table, shingle_counts
from crawler.extraction import (
    MAX_ELEMENTS_FOR_FALLBACKS,
    MAX_INPUT_BYTES,
    ExtractionError,
    Extracted,
    content_hash,
    decode_html,
    extract,
    extract_text,
)

ARTICLE_PARAGRAPHS = [
    "The harbour authority in Portmere approved a 40 million pound redevelopment of the old fish "
    "market on Tuesday, ending three years of argument over the future of the waterfront.",
    "Under the plan, the Victorian market hall will be restored as a covered food market, while the "
    "derelict ice house next to it becomes a small museum of the town's fishing fleet.",
    "Councillor Ada Brennan, who chairs the authority, said the vote was close but the scheme had been "
    "changed enough to win over the fishermen who had opposed it since 2021.",
    "Skippers had feared that the new quay would leave no berths for working boats. The final design "
    "keeps twelve berths for the fleet and moves the visitor pontoon to the eastern arm.",
    "Construction is due to start in the spring and should take about two years, the authority said, "
    "with the market hall reopening first in the summer of the following year.",
    "Local traders were more cautious. Several said they welcomed the investment but worried about "
    "rents once the restored hall opens, and asked for a cap on pitch fees for five years.",
]
COMMENTS = [
    "GreatDebater99 wrote: This is a total waste of money, nobody asked for a museum of ice.",
    "Reply from Marjorie: I remember buying crabs at the old market every Saturday with my grandmother.",
]
TEASERS = [
    "Celebrity chef opens pop-up bakery in disused lighthouse",
    "Ten reasons why the bypass traffic lights keep failing",
    "Local football club signs goalkeeper from rivals",
]
COOKIE = "We use cookies to improve your experience. By continuing to browse you accept our cookie policy."
FOOTER = "Copyright 2024 Portmere Gazette Ltd. All rights reserved. Registered in England."


def noisy_page(*, canonical: bool = True, extra_after_article: str = "") -> str:
    """A news page the way a crawler meets it: cookie banner, navigation,
    the article, a most-read sidebar of teasers, reader comments, footer."""
    body = "".join(f"<p>{p}</p>" for p in ARTICLE_PARAGRAPHS)
    teasers = "".join(
        f'<li><a href="/news/{i}">{t}</a><p>{t} - read the full story in our news section.</p></li>'
        for i, t in enumerate(TEASERS)
    )
    comments = "".join(f'<div class="comment"><p class="comment-body">{c}</p></div>' for c in COMMENTS)
    link = '<link rel="canonical" href="/news/harbour-redevelopment-approved">' if canonical else ""
    return f"""<!DOCTYPE html>
<html lang="en-GB"><head>
<meta charset="utf-8">
<title>Harbour redevelopment approved | Portmere Gazette</title>
<meta property="og:site_name" content="Portmere Gazette">
<meta property="og:url" content="https://gazette.example/og/harbour">
<meta property="article:published_time" content="2024-03-12T09:30:00Z">
{link}
<script>window.dataLayer = [{{"page": "article"}}];</script>
<style>.cookie {{ position: fixed; }}</style>
</head><body>
<div id="cookie-banner" class="cookie consent">{COOKIE} <button>Accept all</button></div>
<header><nav><ul><li><a href="/">Home</a></li><li><a href="/news">News</a></li>
<li><a href="/sport">Sport</a></li><li><a href="/whats-on">What's on</a></li></ul></nav></header>
<main>
<article>
<h1>Harbour redevelopment approved after three-year row</h1>
<p class="byline">By Tom Hale, Maritime Correspondent</p>
{body}
</article>{extra_after_article}
<aside class="sidebar"><h2>Most read</h2><ul>{teasers}</ul></aside>
<section id="comments" class="comments"><h2>Comments (2)</h2>{comments}
<form><textarea name="c"></textarea><button>Post comment</button></form></section>
</main>
<footer><p>{FOOTER}</p></footer>
</body></html>"""


def assert_article(text: str) -> None:
    for paragraph in ARTICLE_PARAGRAPHS:
        assert paragraph in text


# ---------------------------------------------------------------- decoding

FRENCH = "<p>Le café de la gare a fermé ses portes après quarante années, à la déception générale.</p>"
RUSSIAN = "<p>Это текст на русском языке, который нужно правильно декодировать без ошибок.</p>"
JAPANESE = "<p>日本語のテキストです。これは正しくデコードされるべきです。港の再開発が承認された。</p>"


def test_cp1252_bytes_declared_as_utf8_still_decode() -> None:
    assert decode_html(FRENCH.encode("cp1252"), declared="utf-8") == FRENCH


def test_utf8_bytes_declared_as_latin1_decode_as_utf8() -> None:
    text = decode_html(FRENCH.encode("utf-8"), declared="iso-8859-1")
    assert text == FRENCH
    assert "Ã©" not in text  # the classic mojibake


def test_shift_jis_with_meta_charset() -> None:
    page = f'<html><head><meta charset="Shift_JIS"></head><body>{JAPANESE}</body></html>'
    assert JAPANESE in decode_html(page.encode("shift_jis"))


def test_meta_charset_beats_a_wrong_http_charset_that_cannot_decode() -> None:
    page = f'<html><head><meta http-equiv="Content-Type" content="text/html; charset=shift_jis"></head><body>{JAPANESE}</body></html>'
    assert JAPANESE in decode_html(page.encode("shift_jis"), declared="utf-8")


@pytest.mark.parametrize(("text", "encoding"), [(FRENCH, "cp1252"), (RUSSIAN, "cp1251"), (JAPANESE, "shift_jis")])
def test_missing_charset_is_detected(text: str, encoding: str) -> None:
    assert decode_html(text.encode(encoding)) == text


def test_byte_order_mark_wins() -> None:
    assert decode_html("\ufeff".encode("utf-8") + FRENCH.encode("utf-8"), declared="latin-1") == FRENCH
    assert decode_html(FRENCH.encode("utf-16"), declared="utf-8") == FRENCH


def test_unknown_declared_charset_is_ignored() -> None:
    assert decode_html(FRENCH.encode("utf-8"), declared="no-such-charset") == FRENCH


def test_empty_bytes_decode_to_empty_text() -> None:
    assert decode_html(b"") == ""


def test_extract_reads_bytes_in_a_legacy_charset() -> None:
    page = f'<html><head><meta charset="shift_jis"><title>港</title></head><body>{JAPANESE}</body></html>'
    assert "港の再開発が承認された" in extract(page.encode("shift_jis")).text


# ---------------------------------------------------------------- noisy pages


def test_noisy_news_page_reduces_to_its_story() -> None:
    page = extract(noisy_page(), url="https://gazette.example/news/harbour?utm_source=x")
    assert_article(page.text)
    for noise in [*COMMENTS, *TEASERS, COOKIE, FOOTER, "Post comment", "Most read"]:
        assert noise not in page.text
    assert page.title == "Harbour redevelopment approved after three-year row"
    assert page.published == "2024-03-12"
    assert page.site_name == "Portmere Gazette"
    assert page.canonical_url == "https://gazette.example/news/harbour-redevelopment-approved"
    assert page.language == "en"
    assert page.truncated is False


def test_og_url_is_the_canonical_url_without_link_rel() -> None:
    page = extract(noisy_page(canonical=False), url="https://gazette.example/x")
    assert page.canonical_url == "https://gazette.example/og/harbour"


def test_extracted_is_frozen() -> None:
    page = extract(noisy_page())
    assert isinstance(page, Extracted)
    with pytest.raises(AttributeError):
        page.text = "changed"  # type: ignore[misc]


def test_extract_text_is_the_main_text() -> None:
    assert extract_text(noisy_page()) == extract(noisy_page()).text


# ---------------------------------------------------------------- malformed and short


def test_unclosed_tags_and_truncated_markup() -> None:
    paragraphs = "".join(f"<p><b><i>{p}</b></i>" for p in ARTICLE_PARAGRAPHS)  # misnested, no </p>
    html = f"<html><head><title>Broken</title><body><div><article>{paragraphs}<p>Last paragraph cut mid-tag <a hr"
    text = extract(html).text
    assert_article(text)


def test_page_cut_in_half_keeps_its_first_half() -> None:
    html = noisy_page()
    cut = html[: html.index(ARTICLE_PARAGRAPHS[3])]
    text = extract(cut).text
    for paragraph in ARTICLE_PARAGRAPHS[:3]:
        assert paragraph in text


def test_short_excerpt_is_not_lost() -> None:
    quote = "Councillor Ada Brennan said the vote was close."
    assert extract(f"<html><body><p>{quote}</p></body></html>").text == quote
    assert extract(f"<blockquote>{quote}</blockquote>").text == quote  # bare fragment


def test_fallback_keeps_text_trafilatura_drops() -> None:
    # trafilatura returns nothing for a page whose only text is in a footer
    quote = "Councillor Ada Brennan said the vote was close."
    assert extract(f"<html><body><footer><p>{quote}</p></footer></body></html>").text == quote


def test_plain_text_input_is_kept() -> None:
    assert extract("First line of a story.\nSecond line.").text == "First line of a story.\nSecond line."


# ---------------------------------------------------------------- refused input


@pytest.mark.parametrize("empty", [b"", ""])
def test_empty_input_is_refused(empty: str | bytes) -> None:
    with pytest.raises(ExtractionError, match="empty input"):
        extract(empty)


@pytest.mark.parametrize("blank", ["   \n\t ", b"  \r\n"])
def test_whitespace_input_is_refused(blank: str | bytes) -> None:
    with pytest.raises(ExtractionError, match="only whitespace"):
        extract(blank)


@pytest.mark.parametrize(
    ("data", "what"),
    [
        (b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj", "a PDF document"),
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "a PNG image"),
        (gzip.compress(b"<html><body><p>x</p></body></html>"), "gzip-compressed"),
        (random.Random(7).randbytes(20_000), "binary data"),
        (b"<html><body>\x00\x00\x00\x01\x02</body></html>", "NUL bytes"),
    ],
)
def test_binary_input_is_refused(data: bytes, what: str) -> None:
    with pytest.raises(ExtractionError, match=what):
        extract(data, url="https://example.org/file")


def test_control_character_soup_is_refused() -> None:
    with pytest.raises(ExtractionError, match="control characters"):
        extract("".join(chr(c) for c in range(1, 9)) * 100)


def test_page_without_any_text_is_refused() -> None:
    html = "<html><head><title></title><script>track()</script></head><body><script>x()</script><img src=a.png></body></html>"
    with pytest.raises(ExtractionError, match="no readable text"):
        extract(html, url="https://example.org/empty")


def test_extraction_error_is_a_value_error() -> None:
    assert issubclass(ExtractionError, ValueError)


# ---------------------------------------------------------------- huge input


def test_huge_input_is_truncated_explicitly() -> None:
    padding = "<script>" + "x" * (MAX_INPUT_BYTES + 1_000_000) + "</script>"
    html = noisy_page(extra_after_article=padding)
    page = extract(html)
    assert page.truncated is True
    assert_article(page.text)


def test_truncation_never_splits_a_character() -> None:
    head = noisy_page().split("</article>")[0].replace(ARTICLE_PARAGRAPHS[0], ARTICLE_PARAGRAPHS[0] + " Café.")
    prefix = (head + "</article><script>").encode("utf-8")
    if (MAX_INPUT_BYTES - len(prefix)) % 2 == 0:  # make the cap fall inside a two-byte é
        prefix = b" " + prefix
    raw = prefix + ("é" * (MAX_INPUT_BYTES // 2)).encode("utf-8") + b"</script>"
    with pytest.raises(UnicodeDecodeError):
        raw[:MAX_INPUT_BYTES].decode("utf-8")  # a naive byte cut would break strict UTF-8
    page = extract(raw)
    assert page.truncated is True
    assert "Café." in page.text
    assert "\ufffd" not in page.text and "Ã" not in page.text


def test_pages_with_very_many_elements_are_extracted_without_fallbacks(caplog: pytest.LogCaptureFixture) -> None:
    filler = '<div class="grid"><span>tile</span></div>' * (MAX_ELEMENTS_FOR_FALLBACKS // 2 + 100)
    with caplog.at_level(logging.INFO, logger="crawler.extraction"):
        page = extract(noisy_page(extra_after_article=filler))
    assert "extracting without fallbacks" in caplog.text
    assert page.truncated is False
    assert_article(page.text)


# ---------------------------------------------------------------- content hash


def test_content_hash_ignores_whitespace_only_changes() -> None:
    a = "The harbour plan was approved.\n\nTraders were cautious."
    b = "  The harbour   plan was approved. Traders\twere cautious.\n"
    assert content_hash(a) == content_hash(b)
    assert len(content_hash(a)) == 64 and all(c in "0123456789abcdef" for c in content_hash(a))


def test_content_hash_changes_with_the_words() -> None:
    assert content_hash("The harbour plan was approved.") != content_hash("The harbour plan was rejected.")


def test_content_hash_normalises_unicode_composition() -> None:
    assert content_hash("cafe\u0301") == content_hash("caf\u00e9")


# ---------------------------------------------------------------- evaluation


def test_shingles_are_lowercase_word_4grams() -> None:
    assert shingle_counts("The cat, the CAT sat") == {
        ("the", "cat", "the", "cat"): 1,
        ("cat", "the", "cat", "sat"): 1,
    }
    assert shingle_counts("two words") == {("two", "words"): 1}


def _write_benchmark(directory: Path, pages: dict[str, tuple[str | None, str]]) -> None:
    (directory / "html").mkdir(parents=True)
    truth = {}
    for doc_id, (html, gold) in pages.items():
        truth[doc_id] = {"articleBody": gold, "url": f"https://example.org/{doc_id}"}
        if html is not None:
            (directory / "html" / f"{doc_id}.html.gz").write_bytes(gzip.compress(html.encode("utf-8")))
    (directory / "ground-truth.json").write_text(json.dumps(truth), encoding="utf-8")


def test_evaluation_scores_like_the_benchmark(tmp_path: Path) -> None:
    html = noisy_page()
    _write_benchmark(
        tmp_path,
        {
            "exact": (html, extract_text(html)),  # gold == output: P = R = 1
            "missing": (None, "A gold body whose page was never saved."),  # counts as empty output
            "junk": ("<html><body><script>x()</script></body></html>", "Some gold text here."),
        },
    )
    result = evaluate_extraction(tmp_path)
    assert result["documents"] == 3
    # precision averages only documents that produced text; recall averages all
    assert result["precision"] == pytest.approx(1.0)
    assert result["recall"] == pytest.approx(1 / 3)
    assert result["f1"] == pytest.approx(2 * 1 * (1 / 3) / (1 + 1 / 3))
    assert {f["id"] for f in result["failures"]} == {"missing", "junk"}
    table = format_extraction_table(result)
    assert "3 documents" in table and "F1" in table and "missing" in table


def test_evaluation_penalises_leaked_noise(tmp_path: Path) -> None:
    # gold is the story alone; output of the teaser-free story plus noise would lower precision
    _write_benchmark(tmp_path, {"story": (noisy_page(), " ".join(ARTICLE_PARAGRAPHS[:3]))})
    result = evaluate_extraction(tmp_path)
    assert result["recall"] == pytest.approx(1.0)
    assert result["precision"] < 0.7  # the page has twice the gold text


def test_evaluation_needs_ground_truth(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="ground-truth.json"):
        evaluate_extraction(tmp_path)


@pytest.mark.corpus
def test_extraction_f1_on_article_extraction_benchmark(corpus_dir: Path) -> None:
    result = evaluate_extraction(corpus_dir / "extraction_aeb")
    print(format_extraction_table(result))
    assert result["documents"] == 181
    assert not result["failures"], result["failures"]
    assert result["f1"] >= 0.93
    assert result["token"]["f1"] >= 0.93
