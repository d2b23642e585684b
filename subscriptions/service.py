"""Register, remove and reconcile webhook subscriptions for one connection, through the Exact client."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import redis
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from exact import CallbackRejected, DataAlreadyExists, ExactClient, ExactError, Forbidden, NotFound, save_divisions
from exact._models import Connection, Division
from receiver.handoff import LAST_WEBHOOK_KEY
from runtime.db import session_scope
from runtime.logging import log_event
from runtime.settings import Settings
from subscriptions.models import Subscription
from subscriptions.plan import Action, Desired, Observed, plan

__all__ = ["PATH", "RegistrationFailed", "Report", "SubscriptionService", "is_silent"]

PATH = "webhooks/WebhookSubscriptions"
log = logging.getLogger(__name__)


class RegistrationFailed(RuntimeError):
    """Exact refused to create a subscription; the message says why and what to fix."""


@dataclass
class Report:
    actions: list[Action] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


def is_silent(row: Subscription, hours: float, now: datetime | None = None) -> bool:
    """No webhook for longer than `hours`: Exact sends no heartbeat, so silence is all there is to see."""
    if row.state != "active":
        return False
    last = row.last_webhook_at or row.created_at
    last = last if last.tzinfo else last.replace(tzinfo=UTC)
    return (now or datetime.now(UTC)) - last > timedelta(hours=hours)


class SubscriptionService:
    def __init__(
        self,
        settings: Settings,
        sessions: sessionmaker[Session],
        client: ExactClient,
        connection_id: int,
        redis_client: redis.Redis,
    ) -> None:
        self.settings = settings
        self.sessions = sessions
        self._client = client
        self.connection_id = connection_id
        self._redis = redis_client

    def register(self, divisions: Sequence[int], topics: Sequence[str]) -> Report:
        """Want these pairs, then make Exact match for those divisions; raises when Exact refused a create."""
        with session_scope(self.sessions) as session:
            for division in divisions:
                for topic in topics:
                    self._want(session, division, topic)
        report = self.reconcile(divisions=divisions)
        if report.errors:
            raise RegistrationFailed("; ".join(report.errors))
        return report

    def remove(self, division: int, topics: Sequence[str] | None = None) -> Report:
        with session_scope(self.sessions) as session:
            for row in self._rows(session, [division]):
                if topics is None or row.topic.lower() in {t.lower() for t in topics}:
                    row.state = "removed"
        return self.reconcile(divisions=[division])

    def _want(self, session: Session, division: int, topic: str) -> None:
        query = select(Subscription).where(Subscription.connection_id == self.connection_id,
                                           Subscription.division == division, Subscription.topic == topic)  # fmt: skip
        row = session.scalar(query)
        if row is None:
            session.add(Subscription(connection_id=self.connection_id, division=division, topic=topic,
                                     callback_url=self.settings.callback_url, state="pending"))  # fmt: skip
        elif row.state == "removed":
            row.state = "pending"

    def _rows(self, session: Session, divisions: Iterable[int] | None = None) -> list[Subscription]:
        query = select(Subscription).where(Subscription.connection_id == self.connection_id)
        if divisions is not None:
            query = query.where(Subscription.division.in_(list(divisions)))
        return list(session.scalars(query.order_by(Subscription.division, Subscription.topic)))

    def reconcile(self, *, dry_run: bool = False, divisions: Sequence[int] | None = None) -> Report:
        """GET Exact's list per division and plan; apply the plan unless `dry_run`."""
        scope, inactive, ungranted = self._divisions(divisions)
        observed: list[Observed] = []
        for division in scope:
            if division in ungranted:
                continue
            try:
                observed += [_observed(item) for item in self._client.iter_records(division, PATH)]
            except Forbidden:
                ungranted.add(division)
        with self.sessions() as session:
            rows = [r for r in self._rows(session, scope) if r.division in scope]
        desired = [Desired(r.division, r.topic, self.settings.callback_url) for r in rows if r.state != "removed"]
        known = [(r.division, r.topic, r.exact_id) for r in rows if r.state == "active"]
        known += [(r.division, r.topic, None) for r in rows if r.state == "failed" and r.division in ungranted]
        actions = plan(desired, observed, inactive=inactive, ungranted=ungranted, known=known)
        report = Report(actions=actions)
        if not dry_run:
            for action in actions:
                self._apply(action, report)
            self._sync_last_webhooks()
        return report

    def _divisions(self, only: Sequence[int] | None) -> tuple[list[int], set[int], set[int]]:
        """Refresh the connection's divisions; the scope is every division it has or had, or `only`."""
        with self.sessions() as session:
            connection = session.get(Connection, self.connection_id)
            current = connection.current_division if connection else None
        if current is not None:
            fresh = self._client.divisions(current)
            with session_scope(self.sessions) as session:
                save_divisions(session, self.connection_id, fresh)
        with self.sessions() as session:
            rows = list(session.scalars(select(Division).where(Division.connection_id == self.connection_id)))
            wanted = {r.division for r in self._rows(session)}
        inactive = {d.code for d in rows if d.status != 1}
        ungranted = {d.code for d in rows if not d.granted}
        scope = sorted(set(only) if only is not None else {d.code for d in rows} | wanted)
        return scope, inactive, ungranted | (set(scope) - {d.code for d in rows})

    def _apply(self, action: Action, report: Report) -> None:
        log_event(log, "subscriptions.apply", kind=action.kind, division=action.division, topic=action.topic,
                  reason=action.reason)  # fmt: skip
        try:
            if action.kind in ("delete", "recreate") and action.exact_id:
                self._delete(action)
            if action.kind in ("create", "recreate"):
                self._record(action, *self._create(action))
            elif action.kind == "adopt":
                self._record(action, action.exact_id, None)
            elif action.kind == "unreachable":
                self._record(action, None, action.reason, state="failed")
            elif action.kind == "delete":
                self._forget(action)
        except CallbackRejected as exc:
            message = (
                f"{exc.message}. Fix: Exact must reach {self.settings.callback_url} and get a 2xx for an empty "
                "POST; run `exact-pipeline receiver` there and set PUBLIC_URL to its public HTTPS address."
            )
            self._record(action, None, message, state="failed")
            report.errors.append(f"division {action.division} {action.topic}: {message}")
        except ExactError as exc:
            self._record(action, None, exc.message, state="failed")
            report.errors.append(f"division {action.division} {action.topic}: {exc.message}")

    def _create(self, action: Action) -> tuple[str | None, str | None]:
        body = {"Topic": action.topic, "CallbackURL": action.callback_url or self.settings.callback_url}
        try:
            created = self._client.create(action.division, PATH, body)
            return str(created["ID"]), None
        except DataAlreadyExists:
            # Another user of the same app subscribed already: that subscription is ours to adopt.
            for item in self._client.iter_records(action.division, PATH):
                if str(item.get("Topic", "")).lower() == action.topic.lower():
                    return str(item["ID"]), None
            return None, "Exact says it exists but does not list it"

    def _delete(self, action: Action) -> None:
        try:
            self._client.delete(action.division, PATH, str(action.exact_id))
        except NotFound:
            pass  # gone already: the goal is reached

    def _record(self, action: Action, exact_id: str | None, error: str | None, *, state: str = "active") -> None:
        with session_scope(self.sessions) as session:
            for row in self._rows(session, [action.division]):
                if row.topic.lower() == action.topic.lower() and row.state != "removed":
                    row.state, row.exact_id, row.last_error = state, exact_id or row.exact_id, error
                    row.callback_url = self.settings.callback_url
                    row.last_reconciled_at = datetime.now(UTC)

    def _forget(self, action: Action) -> None:
        with session_scope(self.sessions) as session:
            for row in self._rows(session, [action.division]):
                if row.topic.lower() == action.topic.lower() and row.exact_id == action.exact_id:
                    row.exact_id = None
                    row.last_reconciled_at = datetime.now(UTC)
                    if row.state != "removed":
                        row.state, row.last_error = "removed", action.reason

    def _sync_last_webhooks(self) -> None:
        """Copy the receiver's last-webhook times (kept in Redis, off the database) into the table."""
        seen = self._redis.hgetall(self.settings.redis_prefix + LAST_WEBHOOK_KEY)
        if not seen:
            return
        with session_scope(self.sessions) as session:
            for row in self._rows(session):
                stamp = seen.get(f"{row.division}:{row.topic.lower()}".encode())
                if stamp is not None:
                    row.last_webhook_at = datetime.fromtimestamp(int(stamp), UTC)


def _observed(item: dict[str, object]) -> Observed:
    return Observed(str(item["ID"]), int(str(item["Division"])), str(item["Topic"]), str(item["CallbackURL"]))
