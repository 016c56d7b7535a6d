"""The alert policy's pure rules: same-copy keys, licences, decisions, rendering."""

from __future__ import annotations

import pytest

from crawler.alerts import policy, render
from crawler.alerts.errors import redact
from crawler.alerts.policy import LicenceRule, copy_keys, decide, decide_removed, variant_free_url


@pytest.mark.parametrize(
    "variant",
    [
        "https://www.example.com/news/fish-market/amp",
        "https://amp.example.com/news/fish-market",
        "https://example.com/amp/news/fish-market",
        "https://m.example.com/news/fish-market/",
        "https://example.com/news/fish-market?amp=1",
        "https://example.com/news/fish-market?outputType=amp&utm_source=x",
        "https://example.com/news/fish-market/print",
        "https://example.com/news/fish-market?print=1#top",
        "http://EXAMPLE.com/news/fish-market",
    ],
)
def test_amp_print_and_mobile_variants_have_the_article_url(variant: str) -> None:
    assert variant_free_url(variant) == variant_free_url("https://example.com/news/fish-market")


def test_different_articles_keep_different_urls() -> None:
    assert variant_free_url("https://example.com/news/fish-market") != variant_free_url("https://example.com/news/fish-farm")
    assert variant_free_url("https://example.com/a?id=1") != variant_free_url("https://example.com/a?id=2")
    # "m." is only a mobile prefix on a longer host name, not a whole domain.
    assert variant_free_url("https://m.com/a") != variant_free_url("https://com/a")


def test_copy_keys_share_a_key_for_variants_and_mirrors() -> None:
    article = set(copy_keys("https://example.com/a", None, "h1"))
    amp = set(copy_keys("https://example.com/a/amp", None, "h2"))
    amp_with_canonical = set(copy_keys("https://cdn.ampproject.org/c/example.com/a", "https://example.com/a", "h3"))
    mirror = set(copy_keys("https://mirror.example.net/x/y", None, "h1"))
    unrelated = set(copy_keys("https://other.example.org/b", None, "h9"))
    assert article & amp
    assert article & amp_with_canonical
    assert article & mirror  # same text, other site
    assert not article & unrelated
    assert all(len(k) <= 80 for k in article)


def test_domain_covers_subdomains_not_lookalikes() -> None:
    assert policy.domain_covers("reuters.com", "https://www.reuters.com/x")
    assert policy.domain_covers("reuters.com", "https://uk.reuters.com/x")
    assert not policy.domain_covers("reuters.com", "https://notreuters.com/x")
    assert not policy.domain_covers("reuters.com", "https://reuters.com.evil.example/x")
    with pytest.raises(ValueError, match="not a domain"):
        policy.normalise_domain("   ")


def test_credit_check_ignores_case_spacing_and_unicode_forms() -> None:
    assert policy.carries_credit("(Reuters)", None, "LONDON (REUTERS) - The market ...")
    assert policy.carries_credit("(Reuters)", "LONDON  ( Reuters)".replace("( ", "("))
    assert policy.carries_credit("Reuters", "ＲＥＵＴＥＲＳ reports")  # full-width letters (NFKC)
    assert not policy.carries_credit("(Reuters)", "LONDON - The market ...", None)


def _decide(url: str = "https://copier.example/a", **kw):
    args = {"page_texts": ("title", "body"), "status": "active", "is_new": True, "page_changed": True}
    args.update(kw)
    return decide(page_url=url, **args)


def test_decide_new_copy_and_later_events() -> None:
    assert _decide().events == (policy.COPY_NEW,)
    assert _decide(is_new=False).events == (policy.COPY_CHANGED,)
    assert _decide(is_new=False, page_changed=False).events == ()
    reappeared = _decide(is_new=False, status="removed")
    assert (reappeared.status, reappeared.events) == ("active", (policy.COPY_REAPPEARED,))
    assert decide_removed("active") == policy.Decision("removed", (policy.COPY_REMOVED,), "copy removed")
    assert decide_removed("removed").events == ()
    assert decide_removed("false_positive").status == "false_positive"


def test_decide_licensed_partner_with_and_without_credit() -> None:
    licences = [LicenceRule("partner.example", "(Harbour Wire)")]
    credited = _decide("https://www.partner.example/a", page_texts=("t", "text (Harbour Wire)"), licences=licences)
    assert (credited.status, credited.events) == ("licensed", ())
    uncredited = _decide("https://partner.example/a", page_texts=("t", "text without it"), licences=licences)
    assert (uncredited.status, uncredited.events) == ("licensed", (policy.CREDIT_MISSING,))
    # A licence without a required credit never alerts.
    free = _decide("https://partner.example/a", licences=[LicenceRule("partner.example")])
    assert (free.status, free.events) == ("licensed", ())
    # Not the partner: an ordinary new copy.
    assert _decide("https://other.example/a", licences=licences).events == (policy.COPY_NEW,)


def test_decide_respects_decisions_and_ignored_sites() -> None:
    for status in ("false_positive", "ignored"):
        assert _decide(status=status).events == ()
        assert _decide(status=status, is_new=False).status == status
    ignored = _decide("https://spam.example/x", suppressions=["spam.example"])
    assert (ignored.status, ignored.events) == ("ignored", ())
    assert _decide(is_new=False, status="licensed").events == ()


def test_highlight_marks_the_shared_words_on_both_sides() -> None:
    story, page = render.highlight("The old fish market will close in March.", "Sadly the old fish market will shut in March.")
    shared_story = "".join(s.text for s in story if s.shared)
    shared_page = "".join(s.text for s in page if s.shared)
    assert "old fish market will" in shared_story and "old fish market will" in shared_page
    assert "close" not in shared_story and "Sadly" not in shared_page
    assert "".join(s.text for s in story) == "The old fish market will close in March."


def _payload(**overrides):
    payload = {
        "schema": "copyhound.alert/1", "type": "copy.new",
        "story": {"id": 1, "title": "Fish <b>market</b>\r\nBcc: victim@example.com", "url": None},
        "page": {"id": 2, "url": "https://copier.example/a?x=1&y=2", "canonical_url": None, "site": "copier.example",
                 "title": "<script>alert(1)</script>", "fetched_at": None},
        "match": {"id": 3, "kind": "rewrite", "confidence": 0.9, "story_coverage": 0.42, "page_coverage": 0.5,
                  "first_seen": "2026-11-25T10:00:00+00:00"},
        "evidence": [{"story_text": "old fish market", "page_text": "old fish market <img src=x onerror=alert(1)>",
                      "similarity": 0.8}],
    }
    payload.update(overrides)
    return payload


def test_render_escapes_scraped_content_and_keeps_subject_on_one_line() -> None:
    subject, text, html = render.render_alert(_payload())
    assert "\n" not in subject and "\r" not in subject
    assert subject.startswith("New rewrite of “Fish <b>market</b> Bcc:") and subject.endswith("on copier.example")
    assert "<script>" not in html and "&lt;script&gt;" in html
    assert "<img" not in html and "&lt;img" in html
    assert "<mark>old fish market</mark>" in html
    assert "42%" in html and "42%" in text
    assert "https://copier.example/a?x=1&y=2" in text  # the text part is not HTML-escaped
    assert "2026-11-25 10:00 UTC" in text


def test_redact_hides_a_secret_and_its_base64_form() -> None:
    text = redact("auth failed for hunter2 (aHVudGVyMg==)", ["hunter2"])
    assert "hunter2" not in text and "aHVudGVyMg==" not in text
