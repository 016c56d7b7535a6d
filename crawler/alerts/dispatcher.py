"""Deliver the outbox: immediate alerts one by one, digests per finished time window.

Each delivery is three short steps: claim (commit the attempt and a lease), send
(no transaction open), record the outcome (commit). A crash after the claim leaves
the row pending; it is sent again once the lease runs out, with the same delivery
id, which receivers use to drop the repeat. A row recorded as sent is never sent
again. Nothing is ever deleted: a row that keeps failing ends as `failed`, visible
in `copyhound alerts list --failed` and resent by `copyhound alerts retry`.
"""

from __future__ import annotations

import logging
import os
import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from crawler.alerts import policy, render, webhooks
from crawler.alerts.email import SmtpSettings, build_message, send_email
from crawler.alerts.errors import ConfigError, DeliveryError, env_number
from crawler.alerts.payload import digest_envelope, envelope
from storage.alert_repositories import Outbox, Suppressions
from storage.engine import make_engine, session_factory
from storage.models import Alert, AlertDigest, Destination, Match, utcnow

logger = logging.getLogger("copyhound.alerts")

MAX_PER_RUN = 1000  # bound on one run; the next run carries on


@dataclass(frozen=True)
class DispatchSettings:
    max_attempts: int = 8
    backoff: float = 30.0  # first retry after about this many seconds, doubling
    backoff_max: float = 6 * 3600.0
    lease: float = 300.0  # a claimed alert is not picked again for this long
    webhook_timeout: float = 10.0

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> DispatchSettings:
        env = os.environ if env is None else env
        attempts_text = env.get("COPYHOUND_ALERT_MAX_ATTEMPTS", "").strip() or "8"
        if not attempts_text.isdigit() or int(attempts_text) < 1:
            raise ConfigError(f"COPYHOUND_ALERT_MAX_ATTEMPTS must be a whole number >= 1, not {attempts_text!r}")
        return cls(
            max_attempts=int(attempts_text),
            backoff=env_number(env, "COPYHOUND_ALERT_BACKOFF", cls.backoff),
            backoff_max=env_number(env, "COPYHOUND_ALERT_BACKOFF_MAX", cls.backoff_max),
            lease=env_number(env, "COPYHOUND_ALERT_LEASE", cls.lease),
            webhook_timeout=env_number(env, "COPYHOUND_WEBHOOK_TIMEOUT", cls.webhook_timeout, minimum=0.1),
        )


def backoff_delay(attempt: int, settings: DispatchSettings, rng: random.Random, retry_after: float | None = None) -> float:
    """Exponential backoff with jitter: half fixed, half random, so retries spread out
    but never come back at once; a receiver's Retry-After is respected up to the cap."""
    ceiling = min(settings.backoff_max, settings.backoff * 2 ** max(0, attempt - 1))
    delay = ceiling / 2 + rng.uniform(0, ceiling / 2)
    if retry_after is not None:
        delay = max(delay, retry_after)
    return min(delay, settings.backoff_max)


def window_start(period: str, now: datetime) -> datetime:
    """Start of the current digest window (UTC hours or days); earlier alerts are due."""
    if period == "hourly":
        return now.replace(minute=0, second=0, microsecond=0)
    if period == "daily":
        return now.replace(hour=0, minute=0, second=0, microsecond=0)
    raise ValueError(f"unknown digest period {period!r}: use hourly or daily")


@dataclass
class DispatchReport:
    sent: int = 0
    retrying: int = 0
    failed: int = 0
    suppressed: int = 0
    digests_sent: int = 0
    errors: list[str] = field(default_factory=list)

    def summary(self) -> str:
        return (
            f"{self.sent} alerts sent ({self.digests_sent} digests), {self.retrying} to retry, "
            f"{self.failed} failed, {self.suppressed} withdrawn"
        )


@dataclass(frozen=True)
class _Job:
    """What one delivery needs, read inside the claim transaction."""

    kind: str  # "alert" | "digest"
    row_id: int
    attempts: int
    delivery_id: str
    channel: str
    target: str
    secret_env: str | None
    body: dict[str, Any]
    payloads: list[dict[str, Any]]
    period: str | None = None


class Dispatcher:
    def __init__(
        self,
        factory: sessionmaker[Session],
        settings: DispatchSettings | None = None,
        *,
        env: Mapping[str, str] | None = None,
        rng: random.Random | None = None,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.factory = factory
        self.settings = settings or DispatchSettings.from_env(env)
        self.env = os.environ if env is None else env
        self.rng = rng or random.Random()
        self.clock = clock

    def run_once(self) -> DispatchReport:
        """Deliver everything due now: cut finished digest windows, then send."""
        report = DispatchReport()
        with self.factory.begin() as session:
            Outbox(session).cut_digests(now=self.clock(), window_start=window_start)
        done: list[int] = []
        for _ in range(MAX_PER_RUN):
            job = self._claim_alert(report, done)
            if job is None:
                break
            done.append(job.row_id)
            if job.kind != "skip":
                self._deliver(job, report)
        digests_done: list[int] = []
        for _ in range(MAX_PER_RUN):
            job = self._claim_digest(report, digests_done)
            if job is None:
                break
            digests_done.append(job.row_id)
            if job.kind != "skip":
                self._deliver(job, report)
        return report

    # --- claiming -----------------------------------------------------------------

    def _claim_alert(self, report: DispatchReport, done: list[int]) -> _Job | None:
        now = self.clock()
        with self.factory.begin() as session:
            outbox = Outbox(session)
            claimed = outbox.claim(now=now, lease=timedelta(seconds=self.settings.lease), limit=1, exclude=done)
            if not claimed:
                return None
            alert = claimed[0]
            destination = session.get(Destination, alert.destination_id) if alert.destination_id else None
            if destination is None:
                outbox.mark_failed_attempt(alert.id, error="its destination was removed", retry_at=None)
                report.failed += 1
                return _skip(alert.id)
            reason = _withdrawn(session, alert, destination)
            if reason:
                outbox.mark_suppressed(alert.id, reason)
                report.suppressed += 1
                return _skip(alert.id)
            assert alert.delivery_id is not None
            return _Job(
                kind="alert", row_id=alert.id, attempts=alert.attempts, delivery_id=alert.delivery_id,
                channel=destination.channel, target=destination.target, secret_env=destination.secret_env,
                body=envelope(alert.payload, delivery_id=alert.delivery_id, created_at=alert.created_at),
                payloads=[alert.payload],
            )

    def _claim_digest(self, report: DispatchReport, done: list[int]) -> _Job | None:
        now = self.clock()
        with self.factory.begin() as session:
            outbox = Outbox(session)
            claimed = outbox.claim_digests(now=now, lease=timedelta(seconds=self.settings.lease), limit=1, exclude=done)
            if not claimed:
                return None
            digest: AlertDigest = claimed[0]
            destination = session.get(Destination, digest.destination_id) if digest.destination_id else None
            if destination is None:
                outbox.mark_digest(digest.id, now=now, error="its destination was removed", retry_at=None)
                report.failed += 1
                return _skip(digest.id)
            payloads = []
            for alert in outbox.digest_alerts(digest.id):
                reason = _withdrawn(session, alert, destination)
                if reason:
                    outbox.mark_suppressed(alert.id, reason)
                    report.suppressed += 1
                else:
                    payloads.append(alert.payload)
            if not payloads:
                outbox.mark_digest(digest.id, now=now)
                return _skip(digest.id)
            return _Job(
                kind="digest", row_id=digest.id, attempts=digest.attempts, delivery_id=digest.delivery_id,
                channel=destination.channel, target=destination.target, secret_env=destination.secret_env,
                body=digest_envelope(
                    payloads, delivery_id=digest.delivery_id, period=digest.period,
                    window_end=digest.window_end, created_at=digest.created_at,
                ),
                payloads=payloads, period=digest.period,
            )

    # --- sending --------------------------------------------------------------------

    def _deliver(self, job: _Job, report: DispatchReport) -> None:
        label = f"{job.kind} {job.row_id} ({job.delivery_id}) to {job.channel} destination"
        try:
            if job.channel == "webhook":
                self._send_webhook(job)
            elif job.channel == "email":
                self._send_email(job)
            else:
                raise DeliveryError(f"unknown channel {job.channel!r}", retry=False)
        except (DeliveryError, ConfigError) as err:
            self._record_failure(job, err, report, label)
            return
        now = self.clock()
        with self.factory.begin() as session:
            if job.kind == "digest":
                Outbox(session).mark_digest(job.row_id, now=now)
            else:
                Outbox(session).mark_sent(job.row_id, now=now)
        report.sent += len(job.payloads)
        report.digests_sent += job.kind == "digest"
        logger.info("sent %s", label)

    def _record_failure(self, job: _Job, err: Exception, report: DispatchReport, label: str) -> None:
        retry = getattr(err, "retry", True)  # a ConfigError can be fixed and retried
        retry_after = getattr(err, "retry_after", None)
        now = self.clock()
        final = not retry or job.attempts >= self.settings.max_attempts
        retry_at = None if final else now + timedelta(
            seconds=backoff_delay(job.attempts, self.settings, self.rng, retry_after)
        )
        message = str(err)
        with self.factory.begin() as session:
            if job.kind == "digest":
                Outbox(session).mark_digest(job.row_id, now=now, error=message, retry_at=retry_at)
            else:
                Outbox(session).mark_failed_attempt(job.row_id, error=message, retry_at=retry_at)
        report.errors.append(message)
        if final:
            report.failed += len(job.payloads)
            logger.error("%s failed for good after %d attempts: %s", label, job.attempts, message)
        else:
            report.retrying += len(job.payloads)
            logger.warning("%s failed (attempt %d), retrying at %s: %s", label, job.attempts,
                           retry_at.isoformat(timespec="seconds"), message)

    def _send_webhook(self, job: _Job) -> None:
        target = webhooks.target_for(job.target, job.secret_env, self.env)
        webhooks.post(target, job.delivery_id, webhooks.encode_body(job.body), timeout=self.settings.webhook_timeout)

    def _send_email(self, job: _Job) -> None:
        settings = SmtpSettings.from_env(self.env)
        if job.kind == "digest":
            subject, text, html = render.render_digest(job.payloads, period=job.period or "digest")
        else:
            subject, text, html = render.render_alert(job.payloads[0])
        message = build_message(
            sender=settings.sender, to=job.target, subject=subject, text=text, html=html,
            message_id=job.delivery_id, alert_ref=f"{job.kind}-{job.row_id}",
        )
        send_email(settings, message)


def _skip(row_id: int) -> _Job:
    return _Job("skip", row_id, 0, "", "", "", None, {}, [])


def _withdrawn(session: Session, alert: Alert, destination: Destination) -> str | None:
    """Why an alert queued earlier should no longer go out, or None.

    Decisions made after queueing win: a person marking the copy a false positive,
    ignoring its site, or licensing it (which keeps only credit alerts).
    """
    if not destination.enabled:
        return "destination disabled"
    match = session.get(Match, alert.match_id)
    if match is None:
        return "match removed"
    if match.status in policy.SILENCED_STATUSES:
        return f"match marked {match.status}"
    if match.status == "licensed" and alert.event != policy.CREDIT_MISSING:
        return "match marked licensed"
    if policy.suppressed_site(match.page.url, Suppressions(session).sites_for_story(match.story_id)):
        return "site ignored"
    return None


def dispatch_job(db_url: str) -> str:
    """Scheduler entry point (`crawler.alerts.dispatcher:dispatch_job`): plain args only."""
    engine = make_engine(db_url)
    try:
        report = Dispatcher(session_factory(engine)).run_once()
    finally:
        engine.dispose()
    if report.sent or report.failed or report.retrying:
        logger.info("alert dispatch: %s", report.summary())
    return report.summary()
