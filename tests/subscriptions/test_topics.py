"""Topics against the catalogue: an unsupported one is refused before anything is made, a read-only lane is tracked
for the delta sync only, and topics are stored in the catalogue's spelling."""

from __future__ import annotations

import httpx
import pytest
from sqlalchemy import select
from typer.testing import CliRunner, Result

from exact import CATALOGUE, UnsupportedTopic
from runtime.db import session_scope
from subscriptions.cli import app
from subscriptions.models import Subscription, SubscriptionState
from subscriptions.queries import live_lanes, synced_lanes, tracked_pairs
from subscriptions.service import SubscriptionService
from tests.conftest import ServerThread
from tests.pipeline import fresh_db
from tests.pipeline.connected import Connected
from tests.subscriptions.conftest import held

# A database of its own: `--all-topics` tracks every topic, which would make pairs other tests expect untracked
# tracked; and "our table is unchanged" is then the whole table.
database_url, engine, session_factory = fresh_db.database_url, fresh_db.engine, fresh_db.session_factory
runner = CliRunner()


def rows(connected: Connected) -> list[tuple[int, str, str, str | None]]:
    """(division, topic, state, Exact ID) of every row of the table, sorted."""
    with connected.sessions() as session:
        return sorted((r.division, r.topic, r.state, r.exact_id) for r in session.scalars(select(Subscription)))


def plant(connected: Connected, division: int, topic: str, state: str, last_error: str | None = None) -> None:
    """A row as an earlier version (or a hand edit) left it, behind the service's back."""
    with session_scope(connected.sessions) as session:
        session.add(
            Subscription(
                connection_id=connected.connection_id,
                division=division,
                topic=topic,
                callback_url=connected.settings.callback_url,
                state=state,
                last_error=last_error,
            )
        )


def exact_calls(sandbox: ServerThread) -> int:
    """Every API call the sandbox answered, on any endpoint."""
    return int(httpx.get(f"{sandbox.url}/_sandbox/calls").json()["total"])


def register(connected: Connected, *args: str) -> Result:
    return runner.invoke(app, ["register", "--connection", str(connected.connection_id), *args])


class TestUnsupportedTopic:
    def test_cli_refuses_nonsense_naming_the_supported_topics_and_makes_nothing(
        self, cli_env: None, connected: Connected, sandbox: ServerThread
    ) -> None:
        before_rows, before_held, before_calls = rows(connected), held(sandbox), exact_calls(sandbox)
        result = register(connected, "--division", "101", "--topic", "Accounts", "--topic", "Nonsense")
        assert result.exit_code != 0
        assert "Nonsense" in result.output
        for topic in CATALOGUE.topics():
            assert topic in result.output
        assert held(sandbox) == before_held
        assert exact_calls(sandbox) == before_calls
        assert rows(connected) == before_rows

    def test_a_bad_default_topics_is_named(
        self, cli_env: None, connected: Connected, sandbox: ServerThread, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        from runtime.settings import get_settings

        monkeypatch.setenv("DEFAULT_TOPICS", "Accounts,Bogus")
        get_settings.cache_clear()
        result = register(connected, "--division", "101")
        assert result.exit_code != 0
        assert "DEFAULT_TOPICS" in result.output
        assert "Bogus" in result.output
        assert held(sandbox) == []
        assert rows(connected) == []

    def test_the_service_refuses_before_any_write(
        self, service: SubscriptionService, connected: Connected, sandbox: ServerThread
    ) -> None:
        before = exact_calls(sandbox)
        with pytest.raises(UnsupportedTopic) as caught:
            service.register([101, 202], ["Accounts", "Nonsense"])
        assert caught.value.topic == "Nonsense"
        assert caught.value.supported == CATALOGUE.topics()
        assert rows(connected) == []
        assert held(sandbox) == []
        assert exact_calls(sandbox) == before

    def test_topics_are_stored_in_the_catalogues_spelling(
        self, service: SubscriptionService, connected: Connected, sandbox: ServerThread
    ) -> None:
        service.register([101], ["accounts", "ACCOUNTS", "salesInvoices"])
        assert [(d, t, s) for d, t, s, _ in rows(connected)] == [
            (101, "Accounts", "active"),
            (101, "SalesInvoices", "active"),
        ]
        assert [t for _, t, _ in held(sandbox)] == ["Accounts", "SalesInvoices"]


class TestReadOnlyLanes:
    def test_a_lane_is_tracked_for_the_delta_sync_with_no_exact_call(
        self, service: SubscriptionService, connected: Connected, sandbox: ServerThread
    ) -> None:
        before = exact_calls(sandbox)
        report = service.register([101, 202], ["GLAccounts", "vatcodes"])
        assert exact_calls(sandbox) == before
        assert report.actions == []
        assert report.sync_only == [(101, "GLAccounts"), (101, "VATCodes"), (202, "GLAccounts"), (202, "VATCodes")]
        assert {(d, t, s, e) for d, t, s, e in rows(connected)} == {
            (d, t, SubscriptionState.SYNC_ONLY, None) for d in (101, 202) for t in ("GLAccounts", "VATCodes")
        }
        with connected.sessions() as session:
            lanes = [(connected.connection_id, d, t) for d in (101, 202) for t in ("GLAccounts", "VATCodes")]
            assert synced_lanes(session) == lanes
            assert live_lanes(session) == {}
            assert tracked_pairs(session) == frozenset()

    def test_reconcile_leaves_lanes_out_of_exact(
        self, service: SubscriptionService, connected: Connected, sandbox: ServerThread
    ) -> None:
        url = connected.settings.callback_url
        report = service.register([101], ["Accounts", "Currencies"])
        assert [(a.kind, a.topic) for a in report.actions] == [("create", "Accounts")]
        assert report.sync_only == [(101, "Currencies")]
        assert held(sandbox) == [(101, "Accounts", url)]
        assert service.reconcile().actions == []
        assert held(sandbox) == [(101, "Accounts", url)]
        assert ("Currencies", SubscriptionState.SYNC_ONLY) in {(t, s) for _, t, s, _ in rows(connected)}

    def test_a_lanes_row_from_before_becomes_sync_only_and_is_never_created(
        self, service: SubscriptionService, connected: Connected, sandbox: ServerThread
    ) -> None:
        service.register([101], ["Accounts"])
        plant(connected, 101, "GLAccounts", SubscriptionState.FAILED, last_error="Exact refused the topic")
        dry = service.reconcile(dry_run=True)
        assert dry.actions == []
        report = service.reconcile()
        assert report.actions == []
        assert report.errors == []
        assert (101, "GLAccounts", SubscriptionState.SYNC_ONLY, None) in rows(connected)
        assert [t for _, t, _ in held(sandbox)] == ["Accounts"]

    def test_list_shows_a_lane_as_sync_only_and_an_unsupported_pair(
        self, cli_env: None, service: SubscriptionService, connected: Connected
    ) -> None:
        service.register([101], ["GLAccounts"])
        plant(connected, 202, "Nonsense", SubscriptionState.ACTIVE)
        result = runner.invoke(app, ["list", "--connection", str(connected.connection_id)])
        assert result.exit_code == 0, result.output
        line = {row.split("│")[3].strip(): row for row in result.output.splitlines() if row.count("│") > 5}
        assert "sync only" in line["GLAccounts"]
        assert "unsupported topic: remove it" in line["Nonsense"]

    def test_an_unsupported_pair_from_before_can_be_removed(
        self, service: SubscriptionService, connected: Connected, sandbox: ServerThread
    ) -> None:
        plant(connected, 202, "Nonsense", SubscriptionState.FAILED)
        report = service.remove(202, ["nonsense"])
        assert report.errors == []
        assert rows(connected) == [(202, "Nonsense", SubscriptionState.REMOVED, None)]


def test_all_topics_registers_every_webhook_topic_and_no_lane(
    cli_env: None, connected: Connected, sandbox: ServerThread
) -> None:
    result = register(connected, "--division", "101", "--all-topics")
    assert result.exit_code == 0, result.output
    assert sorted(t for _, t, _ in held(sandbox)) == sorted(CATALOGUE.topics(webhook=True))
    assert sorted(t for _, t, _, _ in rows(connected)) == sorted(CATALOGUE.topics(webhook=True))
