from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import select
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from subscriptions.models import Subscription
from subscriptions.plan import INACTIVE, UNGRANTED, Action
from subscriptions.service import RegistrationFailed, Report, SubscriptionService
from tests.conftest import ServerThread
from tests.pipeline.connected import Connected
from tests.subscriptions.conftest import calls, held, plant, set_division

TOPICS = ["Accounts", "Contacts", "SalesInvoices"]
OLD = "https://old.example.nl/webhooks/exact"


def rows(connected: Connected) -> dict[tuple[int, str], Subscription]:
    with connected.sessions() as session:
        query = select(Subscription).where(Subscription.connection_id == connected.connection_id)
        return {(r.division, r.topic): r for r in session.scalars(query)}


def refusing_app() -> Starlette:
    async def refuse(_request: Request) -> Response:
        return Response(status_code=503)

    return Starlette(routes=[Route("/webhooks/exact", refuse, methods=["POST"])])


@pytest.fixture
def refusing() -> Iterator[ServerThread]:
    with ServerThread(refusing_app()) as server:
        yield server


class TestRegisterAndReconcile:
    def test_three_topics_in_two_divisions_then_reconcile_twice(
        self, service: SubscriptionService, sandbox: ServerThread, connected: Connected
    ) -> None:
        url = connected.settings.callback_url
        report = service.register([101, 202], TOPICS)
        assert sorted((a.kind, a.division, a.topic) for a in report.actions) == sorted(
            ("create", d, t) for d in (101, 202) for t in TOPICS
        )
        assert held(sandbox) == sorted((d, t, url) for d in (101, 202) for t in TOPICS)
        assert {(r.state, r.last_error) for r in rows(connected).values()} == {("active", None)}
        by_id = {s: r.exact_id for s, r in rows(connected).items()}
        assert len(set(by_id.values())) == 6

        for _ in range(2):
            every, listed = calls(sandbox)
            assert service.reconcile().actions == []
            after_every, after_listed = calls(sandbox)
            # Only the list GETs, one per division the connection has (101, 202 and archived 303).
            assert (after_every - every, after_listed - listed) == (3, 3)
        assert held(sandbox) == sorted((d, t, url) for d in (101, 202) for t in TOPICS)
        assert {s: r.exact_id for s, r in rows(connected).items()} == by_id

    def test_register_again_only_lists(self, service: SubscriptionService, sandbox: ServerThread) -> None:
        service.register([101, 202], ["Accounts"])
        every, listed = calls(sandbox)
        assert service.register([101, 202], ["Accounts"]).actions == []
        assert calls(sandbox) == (every + 2, listed + 2)

    def test_an_existing_one_is_adopted_not_duplicated(
        self, service: SubscriptionService, sandbox: ServerThread, connected: Connected
    ) -> None:
        exact_id = plant(sandbox, 101, "Accounts", connected.settings.callback_url)
        [action] = service.register([101], ["Accounts"]).actions
        assert (action.kind, action.exact_id) == ("adopt", exact_id)
        assert rows(connected)[(101, "Accounts")].exact_id == exact_id
        assert len(held(sandbox)) == 1

    def test_data_already_exists_is_adoption(
        self, service: SubscriptionService, sandbox: ServerThread, connected: Connected
    ) -> None:
        # A create that collides with one Exact holds ("Data already exists"), as when another process made it
        # between our list GET and our POST: simulated by a stale plan.
        url = connected.settings.callback_url
        with connected.sessions() as session, session.begin():
            session.add(
                Subscription(connection_id=connected.connection_id, division=101, topic="Accounts", callback_url=url)
            )
        theirs = plant(sandbox, 101, "Accounts", url)
        report = Report()
        service._apply(Action("create", 101, "Accounts", "missing in Exact", callback_url=url), report)
        assert report.errors == []
        row = rows(connected)[(101, "Accounts")]
        assert (row.state, row.exact_id, row.last_error) == ("active", theirs, None)
        assert held(sandbox) == [(101, "Accounts", url)]
        assert calls(sandbox)[0] - calls(sandbox)[1] == 1  # the one refused POST; no retry of it

    def test_stale_callback_and_archived_division_are_cleaned(
        self, service: SubscriptionService, sandbox: ServerThread, connected: Connected
    ) -> None:
        url = connected.settings.callback_url
        service.register([101], ["Accounts"])
        stale = plant(sandbox, 101, "Items", OLD)
        archived = plant(sandbox, 303, "Accounts", url)
        before = held(sandbox)

        dry = service.reconcile(dry_run=True)
        assert {(a.kind, a.division, a.topic, a.exact_id) for a in dry.actions} == {
            ("delete", 101, "Items", stale),
            ("delete", 303, "Accounts", archived),
        }
        assert held(sandbox) == before

        service.reconcile()
        assert held(sandbox) == [(101, "Accounts", url)]
        assert service.reconcile().actions == []

    def test_drifted_callback_is_recreated(
        self, service: SubscriptionService, sandbox: ServerThread, connected: Connected, receiver_url: str
    ) -> None:
        service.register([101], ["Accounts"])
        old_id = rows(connected)[(101, "Accounts")].exact_id
        # PUBLIC_URL moved: the receiver now answers at another address.
        with ServerThread(_receiver(connected)) as moved:
            new_url = f"{moved.url}/webhooks/exact"
            service.settings = connected.settings.model_copy(update={"public_url": moved.url})
            [action] = service.reconcile(dry_run=True).actions
            assert (action.kind, action.exact_id) == ("recreate", old_id)
            assert action.reason == f"CallbackURL drifted from {new_url}: {connected.settings.callback_url}"
            service.reconcile()
            assert held(sandbox) == [(101, "Accounts", new_url)]
            row = rows(connected)[(101, "Accounts")]
            assert (row.state, row.callback_url) == ("active", new_url)
            assert row.exact_id not in (None, old_id)
            assert service.reconcile().actions == []

    def test_remove_deletes_in_exact(
        self, service: SubscriptionService, sandbox: ServerThread, connected: Connected
    ) -> None:
        service.register([101], ["Accounts", "Contacts"])
        service.remove(101, ["contacts"])
        assert [t for _d, t, _u in held(sandbox)] == ["Accounts"]
        assert {t: r.state for (_d, t), r in rows(connected).items()} == {"Accounts": "active", "Contacts": "removed"}
        assert rows(connected)[(101, "Contacts")].exact_id is None
        service.register([101], ["Contacts"])
        assert [t for _d, t, _u in held(sandbox)] == ["Accounts", "Contacts"]


class TestDivisionsGoingAway:
    def test_ungranted_division_is_reported_once_and_not_called(
        self, service: SubscriptionService, sandbox: ServerThread, connected: Connected
    ) -> None:
        service.register([202], ["Accounts"])
        original = rows(connected)[(202, "Accounts")].exact_id
        set_division(sandbox, 202, granted=False)
        every, _ = calls(sandbox)
        report = service.reconcile()
        assert [(a.kind, a.division) for a in report.actions] == [("unreachable", 202)]
        row = rows(connected)[(202, "Accounts")]
        assert (row.state, row.last_error, row.exact_id) == ("failed", UNGRANTED, None)
        assert service.reconcile().actions == []
        # 101 and 303 listed twice; 202 never asked (a 403 would spend the endpoint's error budget).
        assert calls(sandbox)[0] - every == 4

        set_division(sandbox, 202, granted=True)
        [action] = service.reconcile().actions
        assert (action.kind, action.exact_id) == ("adopt", original)
        assert rows(connected)[(202, "Accounts")].state == "active"

    def test_archived_division_loses_ours_and_gets_it_back_when_active(
        self, service: SubscriptionService, sandbox: ServerThread, connected: Connected
    ) -> None:
        service.register([202], ["Accounts"])
        set_division(sandbox, 202, Status=2)
        assert [a.kind for a in service.reconcile().actions] == ["delete", "suspend"]
        assert held(sandbox) == []
        row = rows(connected)[(202, "Accounts")]
        assert (row.state, row.last_error, row.exact_id) == ("failed", INACTIVE, None)
        assert service.reconcile().actions == []

        set_division(sandbox, 202, Status=1)
        assert [a.kind for a in service.reconcile().actions] == ["create"]
        assert held(sandbox) == [(202, "Accounts", connected.settings.callback_url)]


class TestRefusedCallback:
    def test_register_fails_naming_the_callback_url_and_the_fix(
        self, service: SubscriptionService, sandbox: ServerThread, connected: Connected, refusing: ServerThread
    ) -> None:
        service.settings = connected.settings.model_copy(update={"public_url": refusing.url})
        with pytest.raises(RegistrationFailed) as info:
            service.register([101], ["Accounts"])
        message = str(info.value)
        assert f"{refusing.url}/webhooks/exact" in message
        assert "returns 503" in message  # Exact's own message
        assert "PUBLIC_URL" in message
        assert held(sandbox) == []
        row = rows(connected)[(101, "Accounts")]
        assert (row.state, row.exact_id) == ("failed", None)
        assert "returns 503" in str(row.last_error)

    def test_a_failed_create_is_retried_once_the_callback_answers(
        self, service: SubscriptionService, sandbox: ServerThread, connected: Connected, refusing: ServerThread
    ) -> None:
        service.settings = connected.settings.model_copy(update={"public_url": refusing.url})
        with pytest.raises(RegistrationFailed):
            service.register([101], ["Accounts"])
        service.settings = connected.settings
        assert [a.kind for a in service.reconcile().actions] == ["create"]
        assert rows(connected)[(101, "Accounts")].state == "active"


def _receiver(connected: Connected) -> Starlette:
    from receiver.app import create_app

    return create_app(connected.settings)
