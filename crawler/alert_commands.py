"""CLI for scheduling and alerts: `run`, `schedule`, `alerts`, `licences`, `matches mark`.

`add_commands(subparsers)` registers the top-level commands on copyhound's parser;
`add_matches_mark(matches_parser)` adds `mark` under the existing `matches` command.
`python -m crawler.alert_commands` runs these commands alone (used by the tests).
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from datetime import UTC, datetime

from rich.console import Console
from rich.table import Table
from rich.text import Text

from crawler import console
from crawler.alerts import policy
from crawler.cli_types import positive_int



class _Out:
    """stdout through rich; tables wide enough not to wrap when piped or captured."""

    def print(self, *objects) -> None:
        width = None if sys.stdout.isatty() else 200
        Console(highlight=False, width=width).print(*objects)


out = _Out()



def _duration(value: str):
    from crawler.scheduling import parse_duration

    try:
        return parse_duration(value)
    except ValueError as err:
        raise argparse.ArgumentTypeError(str(err)) from None


def _start(value: str) -> datetime:
    if value == "now":
        return datetime.now(UTC)
    try:
        when = datetime.fromisoformat(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected 'now' or an ISO date-time, got {value!r}") from None
    return when if when.tzinfo else when.replace(tzinfo=UTC)


def _event(value: str) -> str:
    if value not in policy.EVENTS:
        raise argparse.ArgumentTypeError(f"unknown alert type {value!r}: choose from {', '.join(policy.EVENTS)}")
    return value


def add_commands(sub: argparse._SubParsersAction) -> None:
    """Register run, schedule, alerts and licences on copyhound's subcommands."""
    p = sub.add_parser("run", help="run the scheduler service: scheduled crawls and alert delivery")
    p.set_defaults(func=cmd_run)

    schedule = sub.add_parser("schedule", help="per-story crawl schedules")
    ssub = schedule.add_subparsers(dest="schedule_command", required=True, metavar="SCHEDULE_COMMAND")
    p = ssub.add_parser("set", help="crawl a story every DURATION or on a cron expression")
    p.add_argument("story_id", type=positive_int, metavar="STORY")
    when = p.add_mutually_exclusive_group(required=True)
    when.add_argument("--every", type=_duration, metavar="DURATION", help="interval, e.g. 30m, 1h, 1d")
    when.add_argument("--cron", metavar="EXPR", help='crontab expression in UTC, e.g. "0 */6 * * *"')
    p.add_argument("--jitter", type=int, metavar="SECONDS",
                   help="random delay added to each run (default: 5%% of the interval up to 300, or 60 for cron)")
    p.add_argument("--start", type=_start, metavar="WHEN", help="first run of an interval: 'now' or an ISO time")
    p.set_defaults(func=cmd_schedule_set)
    p = ssub.add_parser("list", help="show schedules and their next run times")
    p.add_argument("--format", choices=["table", "json"], default="table")
    p.set_defaults(func=cmd_schedule_list)
    p = ssub.add_parser("remove", help="stop crawling a story on a schedule")
    p.add_argument("story_id", type=positive_int, metavar="STORY")
    p.set_defaults(func=cmd_schedule_remove)

    alerts = sub.add_parser("alerts", help="deliver, list and retry alerts")
    asub = alerts.add_subparsers(dest="alerts_command", required=True, metavar="ALERTS_COMMAND")
    p = asub.add_parser("send", help="deliver the alerts that are due now")
    p.set_defaults(func=cmd_alerts_send)
    p = asub.add_parser("list", help="list alerts (newest last)")
    which = p.add_mutually_exclusive_group()
    which.add_argument("--failed", action="store_true", help="only alerts that failed for good")
    which.add_argument("--status", choices=["pending", "sent", "failed", "suppressed"])
    p.add_argument("--limit", type=positive_int, default=200)
    p.add_argument("--format", choices=["table", "json"], default="table")
    p.set_defaults(func=cmd_alerts_list)
    p = asub.add_parser("retry", help="send failed alerts again (all, or the given ids)")
    p.add_argument("alert_ids", type=positive_int, nargs="*", metavar="ID")
    p.add_argument("--no-send", action="store_true", help="only re-queue; the service sends them")
    p.set_defaults(func=cmd_alerts_retry)
    p = asub.add_parser("destinations", help="list alert destinations with their digest and alert types")
    p.set_defaults(func=cmd_destinations)
    p = asub.add_parser("configure", help="switch alert types on or off, or set the digest, of a destination")
    p.add_argument("destination_id", type=positive_int, metavar="DESTINATION")
    p.add_argument("--on", type=_event, action="append", default=[], metavar="TYPE", help="receive this alert type")
    p.add_argument("--off", type=_event, action="append", default=[], metavar="TYPE", help="stop this alert type")
    p.add_argument("--defaults", action="store_true", help="back to the default alert types")
    p.add_argument("--digest", choices=["immediate", "hourly", "daily"])
    p.set_defaults(func=cmd_configure)
    p = asub.add_parser("new-secret", help="print a new webhook signing secret (whsec_...) to put in an env variable")
    p.set_defaults(func=cmd_new_secret)

    licences = sub.add_parser("licences", help="partner domains licensed to republish")
    lsub = licences.add_subparsers(dest="licences_command", required=True, metavar="LICENCES_COMMAND")
    p = lsub.add_parser("add", help="license a domain for a holder's stories or one story")
    p.add_argument("domain", metavar="DOMAIN")
    owner = p.add_mutually_exclusive_group(required=True)
    owner.add_argument("--holder", help="rights holder name")
    owner.add_argument("--story", type=positive_int, help="story id")
    p.add_argument("--credit", metavar="TEXT", help='credit line copies must carry, e.g. "(Reuters)"')
    p.set_defaults(func=cmd_licence_add)
    p = lsub.add_parser("list", help="list licences")
    p.set_defaults(func=cmd_licence_list)
    p = lsub.add_parser("remove", help="remove a licence")
    p.add_argument("licence_id", type=positive_int, metavar="ID")
    p.set_defaults(func=cmd_licence_remove)


def add_matches_mark(matches_parser: argparse.ArgumentParser) -> None:
    """`copyhound matches mark ID --false-positive|--licensed|--ignore-site`."""
    msub = matches_parser.add_subparsers(dest="matches_command", metavar="ACTION")
    p = msub.add_parser("mark", help="record your decision about a match; stops its alerts")
    p.add_argument("match_id", type=positive_int, metavar="ID")
    decision = p.add_mutually_exclusive_group(required=True)
    decision.add_argument("--false-positive", dest="decision", action="store_const", const="false_positive",
                          help="not a copy of the story")
    decision.add_argument("--licensed", dest="decision", action="store_const", const="licensed",
                          help="this copy is licensed")
    decision.add_argument("--ignore-site", dest="decision", action="store_const", const="ignore_site",
                          help="ignore this match and every copy on its site")
    p.set_defaults(func=cmd_matches_mark)


# --- commands -----------------------------------------------------------------------


def _open(args: argparse.Namespace):
    from crawler.commands import open_db

    return open_db(args)


def cmd_run(args: argparse.Namespace) -> int:
    from crawler.scheduling import ServiceSettings, serve

    settings = ServiceSettings.from_env()
    url, _ = _open(args)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    logging.getLogger("apscheduler").setLevel(logging.WARNING)
    return serve(url, settings=settings)


def cmd_schedule_set(args: argparse.Namespace) -> int:
    from crawler.scheduling import set_schedule

    url, _ = _open(args)
    row = set_schedule(url, args.story_id, every=args.every, cron=args.cron, jitter=args.jitter, start=args.start)
    out.print(Text(f"story {args.story_id}: {row['trigger']}, next run {_when(row['next_run'])}"))
    return 0


def cmd_schedule_list(args: argparse.Namespace) -> int:
    from crawler.scheduling import list_schedules

    url, _ = _open(args)
    rows = list_schedules(url)
    if args.format == "json":
        json.dump([{**r, "next_run": _iso(r["next_run"])} for r in rows], sys.stdout, indent=2, default=str)
        sys.stdout.write("\n")
        return 0
    if not rows:
        out.print("no schedules: add one with `copyhound schedule set STORY --every 1h`")
        return 0
    table = Table("job", "story", "schedule", "jitter", "next run (UTC)", "max at once", "coalesce")
    for r in rows:
        table.add_row(Text(r["id"]), str(r["story_id"] or "-"), Text(r["trigger"]), f"{r['jitter'] or 0} s",
                      _when(r["next_run"]), str(r["max_instances"]), "yes" if r["coalesce"] else "no")
    out.print(table)
    return 0


def cmd_schedule_remove(args: argparse.Namespace) -> int:
    from crawler.scheduling import remove_schedule

    url, _ = _open(args)
    if not remove_schedule(url, args.story_id):
        raise LookupError(f"story {args.story_id} has no schedule (see `copyhound schedule list`)")
    out.print(f"removed the schedule of story {args.story_id}")
    return 0


def _deliver_due(factory) -> int:
    """One dispatcher pass; exit status 1 if any delivery failed (each error printed once)."""
    from crawler.alerts.dispatcher import Dispatcher

    report = Dispatcher(factory).run_once()
    out.print(report.summary())
    for error in dict.fromkeys(report.errors):
        print(f"copyhound: delivery error: {error}", file=sys.stderr)
    return 1 if report.errors else 0


def cmd_alerts_send(args: argparse.Namespace) -> int:
    _, factory = _open(args)
    return _deliver_due(factory)


def cmd_alerts_list(args: argparse.Namespace) -> int:
    from storage.alert_repositories import Outbox

    _, factory = _open(args)
    status = "failed" if args.failed else args.status
    with factory.begin() as session:
        alerts = Outbox(session).list(status=status)[-args.limit:]
        rows = [
            {
                "id": a.id, "event": a.event, "channel": a.channel, "destination_id": a.destination_id,
                "status": a.status, "attempts": a.attempts, "match_id": a.match_id, "url": a.match.page.url,
                "created_at": _iso(a.created_at), "next_attempt_at": _iso(a.next_attempt_at),
                "sent_at": _iso(a.sent_at), "delivery_id": a.delivery_id, "last_error": a.last_error,
            }
            for a in alerts
        ]
    if args.format == "json":
        console.print_json(rows)
        return 0
    if not rows:
        out.print("no alerts" + (f" with status {status}" if status else ""))
        return 0
    table = Table("id", "event", "channel", "dest", "status", "tries", "match", "url", "next try / sent", "last error")
    for r in rows:
        when = r["sent_at"] or r["next_attempt_at"] or ""
        table.add_row(str(r["id"]), r["event"], r["channel"], str(r["destination_id"] or "-"), r["status"],
                      str(r["attempts"]), str(r["match_id"]), Text(r["url"]), when[:19].replace("T", " "),
                      Text(r["last_error"] or ""))
    out.print(table)
    return 0


def cmd_alerts_retry(args: argparse.Namespace) -> int:
    from storage.alert_repositories import Outbox
    from storage.models import utcnow

    _, factory = _open(args)
    with factory.begin() as session:
        count = Outbox(session).retry(args.alert_ids, now=utcnow())
    out.print(f"{count} failed alert(s) queued again")
    if not count or args.no_send:
        return 0
    return _deliver_due(factory)


def cmd_destinations(args: argparse.Namespace) -> int:
    from storage.alert_repositories import Destinations

    _, factory = _open(args)
    with factory.begin() as session:
        destinations = Destinations(session).list()
        if not destinations:
            out.print("no destinations: add them with `copyhound seed add --holder NAME --email/--webhook`")
            return 0
        table = Table("id", "holder", "channel", "target", "secret env", "digest", "alert types", "enabled")
        for d in destinations:
            events = sorted(d.events) if d.events is not None else sorted(policy.DEFAULT_EVENTS)
            table.add_row(str(d.id), Text(d.holder.name), d.channel, Text(d.target), Text(d.secret_env or "-"),
                          d.digest, ", ".join(events) + ("" if d.events is not None else " (default)"),
                          "yes" if d.enabled else "no")
        out.print(table)
    return 0


def cmd_configure(args: argparse.Namespace) -> int:
    from storage.alert_repositories import Destinations

    if not (args.on or args.off or args.defaults or args.digest):
        raise ValueError("nothing to change: give --on TYPE, --off TYPE, --defaults or --digest")
    if set(args.on) & set(args.off):
        raise ValueError(f"both --on and --off for {', '.join(sorted(set(args.on) & set(args.off)))}")
    _, factory = _open(args)
    with factory.begin() as session:
        repo = Destinations(session)
        destination = repo.get(args.destination_id)
        if args.defaults:
            repo.set_events(destination.id, None)
        if args.on or args.off:
            current = set(destination.events) if destination.events is not None else set(policy.DEFAULT_EVENTS)
            repo.set_events(destination.id, policy.validate_events((current | set(args.on)) - set(args.off)))
        if args.digest:
            repo.set_digest(destination.id, args.digest)
        events = destination.events if destination.events is not None else sorted(policy.DEFAULT_EVENTS)
        out.print(Text(f"destination {destination.id}: {destination.digest}, alert types {', '.join(events)}"))
    return 0


def cmd_new_secret(args: argparse.Namespace) -> int:
    from crawler.alerts.webhooks import new_secret

    print(new_secret())
    return 0


def cmd_licence_add(args: argparse.Namespace) -> int:
    from storage.alert_repositories import Licences
    from storage.repositories import Holders

    domain = policy.normalise_domain(args.domain)
    _, factory = _open(args)
    with factory.begin() as session:
        holder_id = None
        if args.holder:
            holder = Holders(session).by_name(args.holder)
            if holder is None:
                raise LookupError(f"no rights holder named {args.holder!r} (stories get one with `seed add --holder`)")
            holder_id = holder.id
        licence = Licences(session).add(domain, holder_id=holder_id, story_id=args.story, credit_line=args.credit)
        owner = f"holder {args.holder}" if args.holder else f"story {args.story}"
        credit = f", credit {licence.credit_line!r} required" if licence.credit_line else ""
        out.print(Text(f"licence {licence.id}: {domain} for {owner}{credit}"))
    return 0


def cmd_licence_list(args: argparse.Namespace) -> int:
    from storage.alert_repositories import Licences

    _, factory = _open(args)
    with factory.begin() as session:
        licences = Licences(session).list()
        if not licences:
            out.print("no licences: add one with `copyhound licences add DOMAIN --holder NAME`")
            return 0
        table = Table("id", "for", "domain", "credit line")
        for lic in licences:
            table.add_row(str(lic.id), lic.scope, Text(lic.domain), Text(lic.credit_line or "-"))
        out.print(table)
    return 0


def cmd_licence_remove(args: argparse.Namespace) -> int:
    from storage.alert_repositories import Licences

    _, factory = _open(args)
    with factory.begin() as session:
        if not Licences(session).remove(args.licence_id):
            raise LookupError(f"no licence with id {args.licence_id} (see `copyhound licences list`)")
    out.print(f"removed licence {args.licence_id}")
    return 0


def cmd_matches_mark(args: argparse.Namespace) -> int:
    from crawler.alerts.outbox import mark

    _, factory = _open(args)
    with factory.begin() as session:
        match, previous, withdrawn = mark(session, args.match_id, args.decision)
        what = {"false_positive": "a false positive", "licensed": "licensed", "ignore_site": "ignored, with its site"}
        site = policy.host_of(match.page.url)
        extra = f"; no more alerts from {site}" if args.decision == "ignore_site" else ""
        out.print(Text(f"match {match.id} ({match.page.url}) marked {what[args.decision]} (was {previous}); "
                       f"{withdrawn} queued alert(s) withdrawn{extra}"))
    return 0


# --- helpers and standalone entry point ---------------------------------------------


def _iso(value: datetime | None) -> str | None:
    return value.isoformat(timespec="seconds") if value else None


def _when(value: datetime | None) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S") if value else "paused"
