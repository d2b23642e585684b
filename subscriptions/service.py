"""Register, remove and reconcile webhook subscriptions for one connection, through the Exact client.

Topics are the catalogue's (`exact.CATALOGUE`), stored in its spelling. A read-only lane (`webhook = false`:
GLAccounts, VATCodes, Currencies) is tracked `sync_only`: Exact sends no webhooks for it, so nothing is made in
Exact and reconcile leaves it out of the plan; the delta sync reads it. A connection with a follow rule
(`subscriptions.follow`) has its divisions followed at each full reconcile, before the plan.

Exceptions:
    RuntimeError
      └── RegistrationFailed   Exact refused a create (a refused validation POST names the callback and the fix)
    ValueError
      └── exact.UnsupportedTopic   a topic the catalogue has no entry for (raised before anything is written)
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import redis
from sqlalchemy.orm import Session, sessionmaker

from connections.models import DivisionStatus
from connections.store import save_divisions
from exact import CATALOGUE, CallbackRejected, DataAlreadyExists, ExactClient, ExactError, Forbidden, NotFound
from runtime.db import session_scope
from runtime.logging import log_event
from runtime.settings import Settings
from subscriptions import repository as repo
from subscriptions.follow import Backfill, FollowPlan, apply_follow, delta_sync_by_name, plan_follow
from subscriptions.models import SubscriptionState
from subscriptions.plan import Action, Observed, plan
from subscriptions.silence import last_webhooks

__all__ = ["PATH", "RegistrationFailed", "Report", "SubscriptionService", "resolve_topics"]

PATH = "webhooks/WebhookSubscriptions"
log = logging.getLogger(__name__)


class RegistrationFailed(RuntimeError):
    """Exact refused to create a subscription; the message says why and what to fix."""


@dataclass
class Report:
    actions: list[Action] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    sync_only: list[tuple[int, str]] = field(default_factory=list)  # (division, lane) registered for the delta sync
    follow: FollowPlan = field(default_factory=FollowPlan)  # divisions followed, suspended, resumed; lanes backfilled


def resolve_topics(topics: Sequence[str]) -> list[str]:
    """The catalogue's spelling of each topic, in order, without repeats; `UnsupportedTopic` (naming the supported
    ones) for any the catalogue lacks."""
    return list(dict.fromkeys(CATALOGUE.canonical(topic) for topic in topics))


def _lanes() -> frozenset[str]:
    """Lower-cased read-only lanes: topics Exact sends no webhooks for."""
    return frozenset(topic.lower() for topic in CATALOGUE.topics(webhook=False))


@dataclass(frozen=True)
class _Scope:
    divisions: list[int]
    inactive: set[int]
    ungranted: set[int]


class SubscriptionService:
    def __init__(
        self,
        settings: Settings,
        sessions: sessionmaker[Session],
        client: ExactClient,
        connection_id: int,
        redis_client: redis.Redis,
        backfill: Backfill | None = None,
    ) -> None:
        self.settings = settings
        self.sessions = sessions
        self._client = client
        self.connection_id = connection_id
        self._redis = redis_client
        self._backfill = backfill or delta_sync_by_name(settings)

    def register(self, divisions: Sequence[int], topics: Sequence[str]) -> Report:
        """Want these pairs, then make Exact match in those divisions; raises `UnsupportedTopic` before writing
        anything when a topic is not the catalogue's, and `RegistrationFailed` when Exact refused a create."""
        names, lanes = resolve_topics(topics), _lanes()
        with session_scope(self.sessions) as session:
            for division in divisions:
                for topic in names:
                    sync_only = topic.lower() in lanes
                    repo.want(
                        session, self.connection_id, division, topic, self.settings.callback_url, sync_only=sync_only
                    )
        registered = [(d, t) for d in divisions for t in names if t.lower() in lanes]
        if names and all(t.lower() in lanes for t in names):
            return Report(sync_only=registered)  # nothing to make in Exact, so not one call
        report = self.reconcile(divisions=divisions)
        if report.errors:
            raise RegistrationFailed("; ".join(report.errors))
        report.sync_only = registered
        return report

    def remove(self, division: int, topics: Sequence[str] | None = None) -> Report:
        """Stop tracking the division's pairs (all, or these topics) and delete them in Exact."""
        with session_scope(self.sessions) as session:
            repo.mark_removed(session, self.connection_id, division, topics)
        return self.reconcile(divisions=[division])

    def follow(self, topics: Sequence[str], divisions: Sequence[int]) -> None:
        """Follow the connection's divisions with these topics from the next full reconcile on; `divisions` (the ones
        just registered) count as met. Raises `UnsupportedTopic` for a topic the catalogue lacks."""
        names = resolve_topics(topics)
        with session_scope(self.sessions) as session:
            repo.set_follow(session, self.connection_id, names, divisions, datetime.now(UTC))

    def unfollow(self) -> bool:
        """Drop the follow rule (its subscriptions stay); True when there was one."""
        with session_scope(self.sessions) as session:
            return repo.unfollow(session, self.connection_id)

    def active_divisions(self) -> list[int]:
        """Refresh the connection's divisions from Exact; the codes that are active and granted."""
        self._refresh_divisions()
        with self.sessions() as session:
            states = repo.division_states(session, self.connection_id)
        return sorted(code for code, (status, granted) in states.items() if status == DivisionStatus.ACTIVE and granted)

    def reconcile(self, *, dry_run: bool = False, divisions: Sequence[int] | None = None) -> Report:
        """Follow the divisions (on a full reconcile; a partial one only resumes its own), GET Exact's list per
        division (every division the connection has or wants, or `divisions`) and plan; apply the plan and start the
        follow's backfills unless `dry_run`."""
        lanes = _lanes()
        if not dry_run:
            with session_scope(self.sessions) as session:
                repo.settle_sync_only(session, self.connection_id, lanes)
        self._refresh_divisions()
        follow = self._follow(dry_run=dry_run, only=divisions)
        scope = self._scope(divisions)
        observed: list[Observed] = []
        for division in scope.divisions:
            if division in scope.ungranted:
                continue  # a 403 would only spend the endpoint's error budget (ten 4xx an hour block the app)
            try:
                observed += [_observed(item, division) for item in self._client.iter_records(division, PATH)]
            except Forbidden:
                scope.ungranted.add(division)
        with self.sessions() as session:
            tracked = repo.rows(session, self.connection_id, scope.divisions)
            # A lane's row from before lanes were sync-only is left out here too, so a dry run plans what a run does.
            desired = [d for d in repo.desired(tracked, self.settings.callback_url) if d.topic.lower() not in lanes]
        report = Report(plan(desired, observed, inactive=scope.inactive, ungranted=scope.ungranted), follow=follow)
        if not dry_run:
            for action in report.actions:
                self._apply(action, report)
            self._copy_last_webhooks()
            self._start_backfills(follow)  # only now: Exact holds the new subscriptions, so no change falls between
        return report

    # -- the divisions in scope
    def _refresh_divisions(self) -> None:
        with self.sessions() as session:
            current = repo.current_division(session, self.connection_id)
        if current is None:
            return
        fresh = self._client.divisions(current)
        with session_scope(self.sessions) as session:
            save_divisions(session, self.connection_id, fresh)

    def _scope(self, only: Sequence[int] | None) -> _Scope:
        with self.sessions() as session:
            states = repo.division_states(session, self.connection_id)
            tracked = [r for r in repo.rows(session, self.connection_id) if r.state != SubscriptionState.REMOVED]
        wanted = {r.division for r in tracked}
        # What Exact holds in a division of suspended pairs is ours, to adopt on resuming, never to delete.
        suspended = {r.division for r in tracked if r.state == SubscriptionState.SUSPENDED}
        divisions = sorted(set(only) if only is not None else set(states) | wanted)
        inactive = {code for code in divisions if code in states and states[code][0] != DivisionStatus.ACTIVE}
        # A division Exact does not list for the user is one the app may not touch.
        ungranted = {code for code in divisions if code not in states or not states[code][1] or code in suspended}
        return _Scope(divisions, inactive, ungranted)

    # -- following divisions
    def _follow(self, *, dry_run: bool, only: Sequence[int] | None) -> FollowPlan:
        with self.sessions() as session:
            rule = repo.follow_rule(session, self.connection_id)
            rows = repo.rows(session, self.connection_id)
            found = plan_follow(rule, rows, repo.division_states(session, self.connection_id))
        if only is not None:
            found = FollowPlan(resumed=[d for d in found.resumed if d in only])
        if dry_run or found == FollowPlan():
            return found
        with session_scope(self.sessions) as session:
            url, now = self.settings.callback_url, datetime.now(UTC)
            apply_follow(session, self.connection_id, found, callback_url=url, lanes=_lanes(), now=now)
        self._delete_suspended(found.held)
        return found

    def _delete_suspended(self, held: Sequence[tuple[int, str]]) -> None:
        """Delete what Exact holds of newly suspended pairs while it allows it: the first refusal ends the try, since
        every 4xx spends the app's error budget (and Exact refuses a division no longer granted)."""
        for division, exact_id in held:
            try:
                self._client.delete(division, PATH, exact_id)
            except NotFound:
                pass  # gone already
            except ExactError as exc:
                log_event(log, "subscriptions.suspended_kept", division=division, exact_id=exact_id, error=exc.message)
                return
            with session_scope(self.sessions) as session:
                repo.forget(session, self.connection_id, division, exact_id, datetime.now(UTC))

    def _start_backfills(self, follow: FollowPlan) -> None:
        for division, topic, full in follow.backfill:
            log_event(log, "subscriptions.backfill", division=division, topic=topic, full=full)
            self._backfill(self.connection_id, division, topic, full)

    # -- applying one action
    def _apply(self, action: Action, report: Report) -> None:
        log_event(
            log,
            "subscriptions.apply",
            kind=action.kind,
            division=action.division,
            topic=action.topic,
            reason=action.reason,
            exact_id=action.exact_id,
        )
        try:
            if action.kind in ("delete", "recreate"):
                self._delete(action)
            if action.kind in ("create", "recreate"):
                self._record(action, SubscriptionState.ACTIVE, self._create(action), None)
            elif action.kind == "adopt":
                self._record(action, SubscriptionState.ACTIVE, action.exact_id, None)
            elif action.kind in ("suspend", "unreachable"):
                self._record(action, SubscriptionState.FAILED, None, action.reason)
        except CallbackRejected as exc:
            self._fail(action, report, self._callback_message(exc.message))
        except DataAlreadyExists as exc:
            unseen = "Exact holds one for this topic that this connection's user cannot list; delete it in Exact"
            self._fail(action, report, f"{exc.message}: {unseen}")
        except ExactError as exc:
            self._fail(action, report, exc.message)

    def _callback_message(self, exact_message: str) -> str:
        url = self.settings.callback_url
        return (
            f"Exact could not validate the callback URL {url}: {exact_message}. Fix: Exact first POSTs an empty body "
            f"to {url} and needs a 2xx; run `exact-pipeline receiver` there and set PUBLIC_URL to its public HTTPS "
            "address (on the same domain as the OAuth redirect URI)."
        )

    def _fail(self, action: Action, report: Report, message: str) -> None:
        self._record(action, SubscriptionState.FAILED, None, message)
        report.errors.append(f"division {action.division} {action.topic}: {message}")

    def _create(self, action: Action) -> str:
        body = {"Topic": action.topic, "CallbackURL": action.callback_url or self.settings.callback_url}
        try:
            return str(self._client.create(action.division, PATH, body)["ID"])
        except DataAlreadyExists:
            # One per app, division and topic: a create that raced ours, or our list was stale. Ours to adopt.
            for item in self._client.iter_records(action.division, PATH):
                if str(item.get("Topic", "")).lower() == action.topic.lower():
                    return str(item["ID"])
            raise

    def _delete(self, action: Action) -> None:
        if action.exact_id is None:
            return
        try:
            self._client.delete(action.division, PATH, action.exact_id)
        except NotFound:
            pass  # gone already: the goal is reached
        with session_scope(self.sessions) as session:
            repo.forget(session, self.connection_id, action.division, action.exact_id, datetime.now(UTC))

    def _record(self, action: Action, state: SubscriptionState, exact_id: str | None, error: str | None) -> None:
        with session_scope(self.sessions) as session:
            repo.record(
                session,
                self.connection_id,
                action.division,
                action.topic,
                state=state,
                exact_id=exact_id,
                error=error,
                callback_url=self.settings.callback_url,
                now=datetime.now(UTC),
            )

    def _copy_last_webhooks(self) -> None:
        """The receiver keeps the last-webhook times in Redis (off the database); copy them into the table."""
        seen = last_webhooks(self._redis, self.settings.redis_prefix)
        if seen:
            with session_scope(self.sessions) as session:
                repo.set_last_webhooks(session, seen)


def _observed(item: dict[str, Any], division: int) -> Observed:
    return Observed(
        str(item["ID"]), int(item.get("Division") or division), str(item["Topic"]), str(item["CallbackURL"])
    )
