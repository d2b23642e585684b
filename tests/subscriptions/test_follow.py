"""Following divisions: `register --all-divisions --follow`, then the reconcile subscribes and backfills a division
granted later, suspends a revoked one and resumes it when granted again."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from connections.models import Connection
from runtime.broker import producer
from runtime.contracts import EVENTS_QUEUE, RECONCILE
from subscriptions.cli import app
from subscriptions.follow import REVOKED, FollowPlan, plan_follow
from subscriptions.models import FollowRule, Subscription, SubscriptionState
from subscriptions.queries import live_lanes, synced_lanes, tracked_pairs
from tests.pipeline import fresh_db
from tests.pipeline.harness import Pipeline
from tests.subscriptions.conftest import held, settings_as_env

# A database of its own: the test compares the mirror with this sandbox.
database_url, engine, session_factory = fresh_db.database_url, fresh_db.engine, fresh_db.session_factory
runner = CliRunner()
TOPICS = ("Accounts", "Contacts")
ACTIVE, ARCHIVED = 1, 2


def row(division: int, topic: str = "Accounts", state: str = SubscriptionState.ACTIVE) -> Subscription:
    return Subscription(connection_id=1, division=division, topic=topic, state=state, exact_id="e1")


class TestPlanFollow:
    RULE = FollowRule(connection_id=1, topics=["Accounts"], divisions=[101, 202])

    def test_a_division_granted_since_is_followed_once(self) -> None:
        states = {101: (ACTIVE, True), 202: (ACTIVE, True), 404: (ACTIVE, True)}
        assert plan_follow(self.RULE, [row(101)], states) == FollowPlan(followed=[404])
        met = FollowRule(connection_id=1, topics=["Accounts"], divisions=[101, 202, 404])
        assert plan_follow(met, [row(101)], states) == FollowPlan()

    def test_an_archived_or_ungranted_division_is_not_followed(self) -> None:
        states = {101: (ACTIVE, True), 404: (ARCHIVED, True), 505: (ACTIVE, False)}
        assert plan_follow(self.RULE, [row(101)], states).followed == []

    def test_a_revoked_division_is_suspended_and_resumed_when_granted_again(self) -> None:
        rows = [row(101), row(202), row(202, "Contacts", SubscriptionState.REMOVED)]
        assert plan_follow(self.RULE, rows, {101: (ACTIVE, True), 202: (ACTIVE, False)}).suspended == [202]
        assert plan_follow(self.RULE, rows, {101: (ACTIVE, True)}).suspended == [202]  # not listed at all
        suspended = [row(101), row(202, state=SubscriptionState.SUSPENDED)]
        again = {101: (ACTIVE, True), 202: (ACTIVE, True)}
        assert plan_follow(self.RULE, suspended, again) == FollowPlan(resumed=[202])
        assert plan_follow(None, suspended, again) == FollowPlan(resumed=[202])  # the rule dropped since

    def test_no_rule_suspends_nothing_and_an_empty_grant_is_not_a_revocation(self) -> None:
        assert plan_follow(None, [row(202)], {101: (ACTIVE, True)}) == FollowPlan()
        assert plan_follow(self.RULE, [row(101), row(202)], {101: (ACTIVE, False), 202: (ACTIVE, False)}) == (
            FollowPlan()
        )


@pytest.fixture
def env(pipeline: Pipeline, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    yield from settings_as_env(pipeline.settings, monkeypatch)


def follow(pipeline: Pipeline) -> None:
    result = runner.invoke(app, ["register", "--all-divisions", "--follow", *(f"--topic={t}" for t in TOPICS)])
    assert result.exit_code == 0, result.output
    assert {(d, t) for d, t, _ in held(pipeline.sandbox)} == {(d, t) for d in (101, 202) for t in TOPICS}


def states(pipeline: Pipeline, division: int) -> dict[str, tuple[str, str | None]]:
    with pipeline.sessions() as session:
        query = select(Subscription).where(Subscription.division == division)
        return {r.topic: (r.state, r.exact_id) for r in session.scalars(query)}


def user_id(pipeline: Pipeline) -> str:
    with pipeline.sessions() as session:
        connection = session.get(Connection, pipeline.connection_id)
        assert connection is not None
        return connection.user_id


class TestFollow:
    def test_a_division_granted_later_is_subscribed_and_backfilled(self, pipeline: Pipeline, env: None) -> None:
        follow(pipeline)
        pipeline.start_worker()
        added = pipeline.control("POST", "divisions", json={"code": 404, "granted_to": user_id(pipeline)})
        assert added.status_code == 201, added.text

        report = pipeline.service.reconcile()
        assert (report.follow.followed, report.errors) == ([404], [])
        assert sorted(report.follow.backfill) == [(404, t, True) for t in TOPICS]
        assert {(d, t) for d, t, _ in held(pipeline.sandbox) if d == 404} == {(404, t) for t in TOPICS}
        assert {state for state, _ in states(pipeline, 404).values()} == {SubscriptionState.ACTIVE}
        pipeline.await_level([(404, t) for t in TOPICS])
        assert pipeline.mirror(404, "Accounts")  # the seeded records, not two empty sides

        again = pipeline.service.reconcile()
        assert (again.follow, again.actions) == (FollowPlan(), [])

    def test_the_daily_reconcile_task_follows_in_the_worker(self, pipeline: Pipeline, env: None) -> None:
        follow(pipeline)
        pipeline.control("POST", "divisions", json={"code": 404, "granted_to": user_id(pipeline)})
        pipeline.start_worker()
        producer(pipeline.settings).send_task(RECONCILE, queue=EVENTS_QUEUE)  # what beat sends once a day
        pipeline.await_level([(404, t) for t in TOPICS])
        assert {(d, t) for d, t, _ in held(pipeline.sandbox) if d == 404} == {(404, t) for t in TOPICS}
        assert {state for state, _ in states(pipeline, 404).values()} == {SubscriptionState.ACTIVE}

    def test_a_revoked_division_is_suspended_then_resumed(self, pipeline: Pipeline, env: None) -> None:
        follow(pipeline)
        before = states(pipeline, 202)
        pipeline.control("POST", "divisions/202", json={"granted": False})

        report = pipeline.service.reconcile()
        assert (report.follow.suspended, report.errors) == ([202], [])
        assert {state for state, _ in states(pipeline, 202).values()} == {SubscriptionState.SUSPENDED}
        with pipeline.sessions() as session:
            assert {d for _, d, _ in synced_lanes(session)} == {101}
            assert {d for d, _ in live_lanes(session)} == {101}
            assert {d for d, _ in tracked_pairs(session)} == {101}
            errors = {r.last_error for r in session.scalars(select(Subscription).where(Subscription.division == 202))}
            assert errors == {REVOKED}
        # Exact refuses the delete in a division no longer granted: one try, and its subscriptions wait to be adopted.
        assert pipeline.calls(division=202, status=403) == 1
        assert pipeline.service.reconcile().follow == FollowPlan()
        assert pipeline.calls(division=202, status=403) == 1

        pipeline.control("POST", "divisions/202", json={"granted": True})
        resumed = pipeline.service.reconcile()
        assert resumed.follow.resumed == [202]
        assert sorted(resumed.follow.backfill) == [(202, t, False) for t in TOPICS]
        assert {(a.kind, a.division) for a in resumed.actions} == {("adopt", 202)}
        assert states(pipeline, 202) == before

    def test_list_shows_the_rule_and_follow_needs_all_divisions(self, pipeline: Pipeline, env: None) -> None:
        refused = runner.invoke(app, ["register", "--division", "101", "--follow"])
        assert refused.exit_code == 2
        with pipeline.sessions() as session:
            assert session.scalars(select(FollowRule)).all() == []
        follow(pipeline)
        pipeline.control("POST", "divisions", json={"code": 404, "granted_to": user_id(pipeline)})
        planned = runner.invoke(app, ["reconcile", "--dry-run"])
        assert planned.exit_code == 0, planned.output
        assert "division 404: to be followed" in planned.output
        assert states(pipeline, 404) == {}
        listed = runner.invoke(app, ["list"])
        assert listed.exit_code == 0, listed.output
        assert "follows new divisions" in listed.output
        assert "Accounts, Contacts" in listed.output
        unfollowed = runner.invoke(app, ["unfollow"])
        assert unfollowed.exit_code == 0, unfollowed.output
        assert "follows new divisions" not in runner.invoke(app, ["list"]).output
