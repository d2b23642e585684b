from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx
import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from runtime.cli import _mount, app
from subscriptions.models import Subscription
from subscriptions.service import SubscriptionService, is_silent
from tests.conftest import ServerThread
from tests.exact.conftest import Connected
from tests.subscriptions.conftest import sandbox_subscriptions, writes

TOPICS = ["Accounts", "Contacts", "SalesInvoices"]
runner = CliRunner()


def rows(connected: Connected) -> list[Subscription]:
    with connected.sessions() as session:
        return list(session.scalars(select(Subscription).where(Subscription.connection_id == connected.connection_id)))


class TestRegisterAndReconcile:
    def test_three_topics_in_two_divisions_then_reconcile_twice(
        self, service: SubscriptionService, sandbox: ServerThread, connected: Connected
    ) -> None:
        service.register([101, 202], TOPICS)
        held = sandbox_subscriptions(sandbox)
        assert sorted((s["Division"], s["Topic"]) for s in held) == sorted((d, t) for d in (101, 202) for t in TOPICS)
        assert {s["CallbackURL"] for s in held} == {connected.settings.callback_url}
        assert {(r.state, bool(r.exact_id)) for r in rows(connected)} == {("active", True)}
        before = writes(sandbox)
        first = service.reconcile()
        second = service.reconcile()
        assert first.actions == second.actions == []
        assert writes(sandbox) == before
        assert len(sandbox_subscriptions(sandbox)) == 6

    def test_register_again_makes_no_write(self, service: SubscriptionService, sandbox: ServerThread) -> None:
        service.register([101], ["Accounts"])
        before = writes(sandbox)
        service.register([101], ["Accounts"])
        assert writes(sandbox) == before

    def test_stale_callback_and_archived_division_are_cleaned(
        self, service: SubscriptionService, sandbox: ServerThread, connected: Connected
    ) -> None:
        service.register([101], ["Accounts"])
        stale = {"Division": 101, "Topic": "Items", "CallbackURL": "https://old.example.nl/webhooks/exact"}
        archived = {"Division": 303, "Topic": "Accounts", "CallbackURL": connected.settings.callback_url}
        for planted in (stale, archived):
            assert httpx.post(f"{sandbox.url}/_sandbox/webhooks/subscriptions", json=planted).status_code == 201
        before = sorted(s["ID"] for s in sandbox_subscriptions(sandbox))

        dry = service.reconcile(dry_run=True)
        planned = {(a.kind, a.division, a.topic) for a in dry.actions}
        assert planned == {("delete", 101, "Items"), ("delete", 303, "Accounts")}
        assert sorted(s["ID"] for s in sandbox_subscriptions(sandbox)) == before

        service.reconcile()
        left = sandbox_subscriptions(sandbox)
        assert [(s["Division"], s["Topic"], s["CallbackURL"]) for s in left] == [
            (101, "Accounts", connected.settings.callback_url)
        ]

    def test_drifted_callback_is_recreated(
        self, service: SubscriptionService, sandbox: ServerThread, connected: Connected
    ) -> None:
        service.register([101], ["Accounts"])
        moved = connected.settings.model_copy(update={"public_url": connected.settings.public_url + "/v2"})
        service.settings = moved
        actions = service.reconcile(dry_run=True).actions
        assert [(a.kind, a.topic) for a in actions] == [("recreate", "Accounts")]
        assert "drifted" in actions[0].reason

    def test_remove_deletes_in_exact(
        self, service: SubscriptionService, sandbox: ServerThread, connected: Connected
    ) -> None:
        service.register([101], ["Accounts", "Contacts"])
        service.remove(101, ["Contacts"])
        assert [s["Topic"] for s in sandbox_subscriptions(sandbox)] == ["Accounts"]
        assert {r.topic: r.state for r in rows(connected)} == {"Accounts": "active", "Contacts": "removed"}

    def test_ungranted_division_is_reported(
        self, service: SubscriptionService, sandbox: ServerThread, connected: Connected
    ) -> None:
        service.register([202], ["Accounts"])
        httpx.post(f"{sandbox.url}/_sandbox/divisions/202", json={"granted": False})
        report = service.reconcile()
        assert [(a.kind, a.division) for a in report.actions] == [("unreachable", 202)]
        [row] = rows(connected)
        assert (row.state, row.last_error) == ("failed", "division no longer granted to the app (403)")


class TestLastWebhook:
    def test_webhooks_received_reach_the_table_and_silence_is_flagged(
        self, service: SubscriptionService, sandbox: ServerThread, connected: Connected
    ) -> None:
        service.register([101], ["Contacts", "Accounts"])
        httpx.post(f"{sandbox.url}/_sandbox/records/101/crm/Contacts", json={"FirstName": "Ann"})
        deadline = datetime.now(UTC) + timedelta(seconds=20)
        while not httpx.get(f"{sandbox.url}/_sandbox/webhooks/idle").json()["idle"]:
            assert datetime.now(UTC) < deadline
        service.reconcile()
        by_topic = {r.topic: r for r in rows(connected)}
        assert by_topic["Contacts"].last_webhook_at is not None
        assert by_topic["Accounts"].last_webhook_at is None
        later = datetime.now(UTC) + timedelta(hours=49)
        assert is_silent(by_topic["Accounts"], 48, now=later)
        assert not is_silent(by_topic["Accounts"], 48)


class TestCli:
    @pytest.fixture(autouse=True)
    def mounted(self, cli_env: None) -> None:
        _mount()

    def test_register_list_reconcile_remove(self, sandbox: ServerThread, connected: Connected) -> None:
        which = ["--connection", str(connected.connection_id)]
        result = runner.invoke(app, ["subscriptions", "register", "--division", "101", "--topic", "Accounts", *which])
        assert result.exit_code == 0, result.output
        assert "create" in result.output
        listed = runner.invoke(app, ["subscriptions", "list"])
        assert "Accounts" in listed.output
        assert "active" in listed.output
        assert "nothing to change" in runner.invoke(app, ["subscriptions", "reconcile", "--dry-run", *which]).output
        assert runner.invoke(app, ["subscriptions", "remove", "--division", "101", *which]).exit_code == 0
        assert sandbox_subscriptions(sandbox) == []

    def test_several_connections_need_a_choice(self, connected: Connected, session_factory: object) -> None:
        from tests.factories import create_connection

        with connected.sessions() as session, session.begin():
            create_connection(session)
        result = runner.invoke(app, ["subscriptions", "reconcile"])
        assert result.exit_code == 2
        assert "--connection" in result.output

    def test_all_divisions_with_default_topics(self, sandbox: ServerThread, connected: Connected) -> None:
        which = ["--connection", str(connected.connection_id)]
        result = runner.invoke(app, ["subscriptions", "register", "--all-divisions", *which])
        assert result.exit_code == 0, result.output
        held = {(s["Division"], s["Topic"]) for s in sandbox_subscriptions(sandbox)}
        assert held == {(d, t) for d in (101, 202) for t in ("Accounts", "Contacts", "Items", "SalesInvoices")}


class TestRefusedCallback:
    def test_register_fails_naming_the_callback_url(
        self, service: SubscriptionService, sandbox: ServerThread, connected: Connected
    ) -> None:
        with ServerThread(_refusing_app()) as refusing:
            service.settings = connected.settings.model_copy(update={"public_url": refusing.url})
            from subscriptions.service import RegistrationFailed

            with pytest.raises(RegistrationFailed) as info:
                service.register([101], ["Accounts"])
        message = str(info.value)
        assert f"{refusing.url}/webhooks/exact" in message
        assert "returns 503" in message
        assert sandbox_subscriptions(sandbox) == []
        [row] = rows(connected)
        assert row.state == "failed"


def _refusing_app() -> object:
    from starlette.applications import Starlette
    from starlette.responses import Response
    from starlette.routing import Route

    async def refuse(_request: object) -> Response:
        return Response(status_code=503)

    return Starlette(routes=[Route("/webhooks/exact", refuse, methods=["POST"])])
