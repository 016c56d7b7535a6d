"""Apply the alert policy inside the crawler's unit of work, and a person's decisions.

`on_match` is the one call the PageProcessor makes per saved match, in the same
transaction as the match: the status change and the outbox rows commit together
with it or not at all. Nothing here sends anything (see `dispatcher`).
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from crawler.alerts import policy
from crawler.alerts.payload import build_payload
from storage.alert_repositories import CopyKeys, Decisions, Licences, Outbox, Suppressions
from storage.models import Alert, Match, Page

# `copyhound matches mark` flags -> match status.
DECISIONS = {"false_positive": "false_positive", "licensed": "licensed", "ignore_site": "ignored"}


def on_match(session: Session, match: Match, *, is_new: bool, page_changed: bool = True) -> list[Alert]:
    """Record the policy's status for a just-saved match and queue its alerts.

    A new match whose page is a variant (AMP, print, mirror) of a copy already known
    for the story is the same copy: it gets no `copy.new` of its own.
    """
    page: Page = match.page
    status = match.status
    if is_new:
        keys = policy.copy_keys(page.url, page.canonical_url, page.content_hash)
        owner = CopyKeys(session).claim(match.story_id, match.id, keys)
        if owner != match.id:
            original = session.get(Match, owner)
            # A variant of a settled copy inherits the person's decision.
            if original is not None and original.status in ("false_positive", "ignored", "licensed"):
                match.status = original.status
            session.flush()
            return []
    licences = [policy.LicenceRule(l.domain, l.credit_line) for l in Licences(session).for_story(match.story_id)]
    decision = policy.decide(
        page_url=page.url,
        page_texts=(page.title, page.text),
        status=status,
        is_new=is_new,
        page_changed=page_changed,
        licences=licences,
        suppressions=Suppressions(session).sites_for_story(match.story_id),
    )
    if decision.status != match.status:
        match.status = decision.status
        session.flush()
    return _queue(session, match, decision.events)


def on_page_gone(session: Session, page_id: int) -> list[Alert]:
    """A page that held copies answered 404/410: mark them removed, queue `copy.removed`."""
    queued: list[Alert] = []
    for match in session.scalars(select(Match).where(Match.page_id == page_id)):
        decision = policy.decide_removed(match.status)
        if decision.status != match.status:
            match.status = decision.status
        queued += _queue(session, match, decision.events)
    session.flush()
    return queued


def on_page_seen(session: Session, page_id: int) -> list[Alert]:
    """A page answered 2xx again with unchanged text: copies marked removed reappeared.

    (Changed text goes through the matcher and `on_match`, which handles this too.)
    """
    queued: list[Alert] = []
    for match in session.scalars(select(Match).where(Match.page_id == page_id, Match.status == "removed")):
        queued += on_match(session, match, is_new=False, page_changed=False)
    return queued


def _queue(session: Session, match: Match, events: tuple[str, ...]) -> list[Alert]:
    queued: list[Alert] = []
    outbox = Outbox(session)
    for event in events:
        queued += outbox.enqueue(
            match, event=event, payload=build_payload(match, event=event),
            default_events=policy.DEFAULT_EVENTS,
        )
    return queued


def mark(session: Session, match_id: int, decision: str) -> tuple[Match, str, int]:
    """A person's verdict: store it, withdraw undelivered alerts, ignore the site if asked.

    Returns the match, its previous status and how many queued alerts were withdrawn.
    A licensed copy keeps its `credit.missing` alerts: the licence is not a waiver of
    the credit.
    """
    if decision not in DECISIONS:
        raise ValueError(f"decision must be one of {sorted(DECISIONS)}, not {decision!r}")
    match, previous = Decisions(session).record(match_id, DECISIONS[decision])
    if decision == "ignore_site":
        site = policy.host_of(match.page.url)
        holder_id = match.story.holder_id
        if holder_id is not None:
            Suppressions(session).add(site, holder_id=holder_id, match_id=match.id)
        else:
            Suppressions(session).add(site, story_id=match.story_id, match_id=match.id)
    keep = (policy.CREDIT_MISSING,) if decision == "licensed" else ()
    withdrawn = Outbox(session).suppress_for_match(match.id, keep_events=keep)
    return match, previous, withdrawn
