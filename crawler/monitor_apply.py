"""Apply a validated monitor file to the database, idempotently.

Each holder and each story is its own short transaction: a story whose URL cannot
be fetched stops the run with its file position, and everything applied before it
stays applied; running the file again finishes the job without duplicating rows
(every save is an upsert on a unique key). Story pages are fetched before the
transaction opens, so no write lock is held across the network. Schedules are
written only when they differ from the stored one, so re-applying a file does not
push a story's next crawl further away.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from crawler.monitor_file import HolderSpec, MonitorConfig, StorySpec
from crawler.seeds import SeedText, register_story, text_from_file, text_from_url
from storage.alert_repositories import Destinations, Licences
from storage.config_repositories import SEARCH_SOURCE_URL, SourceAdmin
from storage.repositories import Holders


@dataclass
class ApplyReport:
    lines: list[str] = field(default_factory=list)
    stories: dict[int, str] = field(default_factory=dict)  # story id -> registered|updated|unchanged

    def add(self, line: str) -> None:
        self.lines.append(line)


def apply_monitor(
    config: MonitorConfig,
    db_url: str,
    factory,
    *,
    prune: bool = False,
    fetch_url: Callable[[str], SeedText] = text_from_url,
) -> ApplyReport:
    """Holders first (stories refer to them), then each story with its schedule."""
    report = ApplyReport()
    for holder in config.holders:
        with factory.begin() as session:
            report.add(_apply_holder(session, holder))
    for story in config.stories:
        _apply_story(story, db_url, factory, report, prune=prune, fetch_url=fetch_url)
    return report


def _apply_holder(session, spec: HolderSpec) -> str:
    holders = Holders(session)
    holder = holders.get_or_create(spec.name)
    destinations = Destinations(session)
    for alert in spec.alerts:
        row = holders.add_destination(holder, alert.channel, alert.target, secret_env=alert.secret_env,
                                      digest=alert.digest)
        if alert.events is not None and (row.events is None or sorted(row.events) != alert.events):
            destinations.set_events(row.id, alert.events)
    licences = Licences(session)
    for licence in spec.licences:
        licences.add(licence.domain, holder_id=holder.id, credit_line=licence.credit)
    return (f"holder {holder.name}: {len(spec.alerts)} alert destination(s), "
            f"{len(spec.licences)} licence(s)")


def _apply_story(spec: StorySpec, db_url: str, factory, report: ApplyReport, *, prune: bool,
                 fetch_url: Callable[[str], SeedText]) -> None:
    try:
        seed = fetch_url(spec.url) if spec.url else text_from_file(spec.file)
    except (OSError, ValueError) as err:
        raise ValueError(f"{spec.where}: cannot read the story: {err}") from err
    with factory.begin() as session:
        story, created = register_story(
            session, seed, title=spec.title, holder=spec.holder,
            canonical_url=spec.canonical_url or spec.url, sources=spec.sources,
            max_depth=spec.max_depth, max_pages=spec.max_pages,
        )
        state = "registered" if created else "unchanged"
        if not created and spec.title and story.title != spec.title:
            story.title = spec.title
            state = "updated"
        admin = SourceAdmin(session)
        keep = set(spec.sources)
        if spec.search is not None and spec.search.enabled:
            admin.add_search(story.id, options=spec.search.options(), max_pages=spec.max_pages)
            keep.add(("search", SEARCH_SOURCE_URL))
        elif spec.search is not None:  # search = false: switch it off
            for source in admin.list(story.id):
                if source.kind == "search":
                    admin.remove(source.id)
        else:  # the file says nothing about search: pruning leaves it alone
            keep.update((s.kind, s.url) for s in admin.list(story.id) if s.kind == "search")
        removed = admin.prune(story.id, keep) if prune else []
        licences = Licences(session)
        for licence in spec.licences:
            licences.add(licence.domain, story_id=story.id, credit_line=licence.credit)
        story_id, title = story.id, story.title
        source_count = len(admin.list(story.id))
    schedule_note = _apply_schedule(db_url, story_id, spec.schedule) if spec.schedule else "no schedule in the file"
    report.stories[story_id] = state
    pruned = f", {len(removed)} removed" if removed else ""
    report.add(f"story {story_id} ({state}): {title[:60]}; {source_count} source(s){pruned}; {schedule_note}")


def _apply_schedule(db_url: str, story_id: int, spec: dict) -> str:
    from crawler.scheduling import list_schedules, make_trigger, schedule_from_spec, set_schedule

    options = schedule_from_spec(spec)
    wanted = make_trigger(**options)
    for row in list_schedules(db_url):
        if row["story_id"] == story_id and row["trigger"] == str(wanted) and row["jitter"] == wanted.jitter:
            return f"schedule unchanged ({row['trigger']})"
    row = set_schedule(db_url, story_id, **options)
    return f"schedule set ({row['trigger']})"


__all__ = ["ApplyReport", "apply_monitor"]
