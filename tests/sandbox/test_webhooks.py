from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from sandbox.clock import SandboxClock
from sandbox.config import SandboxConfig
from sandbox.entities import CONTACTS
from sandbox.signature import sign
from sandbox.store import Change, Store
from sandbox.webhooks import WebhookHub
from tests.conftest import ServerThread
from tests.sandbox.conftest import Api, error_message, results
from tests.sandbox.test_signature import SALES_ORDER

SUBS = "101/webhooks/WebhookSubscriptions"
CONTENT_KEYS = ["Topic", "ClientId", "Division", "Action", "Key", "ExactOnlineEndpoint", "EventCreatedOn"]


@dataclass
class Callback:
    """A webhook endpoint that records raw bodies and headers, answers `status` (or 503 for the next `fail`)."""

    status: int = 200
    fail: int = 0
    bodies: list[bytes] = field(default_factory=list)
    headers: list[dict[str, str]] = field(default_factory=list)
    url: str = ""

    async def endpoint(self, request: Request) -> Response:
        self.bodies.append(await request.body())
        self.headers.append(dict(request.headers))
        if self.fail > 0:
            self.fail -= 1
            return Response(status_code=503)
        return Response(status_code=self.status)

    def events(self) -> list[bytes]:
        return [b for b in self.bodies if b]


@pytest.fixture
def callback() -> Iterator[Callback]:
    cb = Callback()
    with ServerThread(Starlette(routes=[Route("/hook", cb.endpoint, methods=["POST"])])) as server:
        cb.url = f"{server.url}/hook"
        yield cb


def wait_idle(http: httpx.Client, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not http.get("/_sandbox/webhooks/idle").json()["idle"]:
        assert time.monotonic() < deadline, "webhook deliveries still pending"
        time.sleep(0.05)


def subscribe(api: Api, url: str, topic: str = "Contacts", division: int = 101) -> httpx.Response:
    return api.post(f"{division}/webhooks/WebhookSubscriptions", {"Topic": topic, "CallbackURL": url})


def content_bytes(body: bytes) -> bytes:
    """The signed bytes, cut out of the raw body as a receiver must (exact-api.md §1.2)."""
    match = re.fullmatch(rb'\{"Content":(.*),"HashCode":"([0-9A-F]{64})"\}', body, re.DOTALL)
    assert match is not None, body
    return match.group(1)


def stats(http: httpx.Client) -> dict[str, int]:
    return dict(http.get("/_sandbox/webhooks").json()["stats"])


class TestSubscriptions:
    def test_create_posts_an_empty_body_first(self, api: Api, callback: Callback) -> None:
        response = subscribe(api, callback.url)
        assert response.status_code == 201
        assert callback.bodies == [b""]
        assert callback.headers[0]["content-length"] == "0"
        sub = response.json()["d"]
        assert (sub["Topic"], sub["Division"], sub["ClientID"]) == ("Contacts", 101, SandboxConfig.client_id)
        assert set(sub) >= {
            "ID",
            "CallbackURL",
            "ClientID",
            "Created",
            "Creator",
            "Description",
            "Division",
            "IsInstant",
            "Topic",
            "UserID",
        }
        assert sub["IsInstant"] is False

    def test_create_fails_unless_the_callback_answers_2xx(self, api: Api, callback: Callback) -> None:
        callback.status = 503
        response = subscribe(api, callback.url)
        assert response.status_code == 500
        assert error_message(response) == (
            "Error 500: Invalid: Post to callback URL endpoint returns 503 Service Unavailable"
        )
        assert results(api.get(SUBS)) == []

    def test_unreachable_callback(self, api: Api) -> None:
        response = subscribe(api, "http://127.0.0.1:9/none")
        assert response.status_code == 500
        assert error_message(response) == (
            "Error 500: Invalid: Post to callback URL endpoint returns 500 An error occurred while sending the request."
        )
        assert results(api.get(SUBS)) == []

    def test_topic_and_callback_are_required(self, api: Api, callback: Callback) -> None:
        assert api.post(SUBS, {"Topic": "Contacts"}).status_code == 400
        assert api.post(SUBS, {"CallbackURL": callback.url}).status_code == 400
        assert callback.bodies == []

    def test_a_second_for_the_same_topic_is_data_already_exists(self, api: Api, callback: Callback) -> None:
        assert subscribe(api, callback.url).status_code == 201
        again = subscribe(api, callback.url + "?other")
        assert again.status_code == 500
        assert error_message(again) == "Data already exists"
        assert subscribe(api, callback.url, division=202).status_code == 201
        assert subscribe(api, callback.url, topic="Accounts").status_code == 201

    def test_list_get_delete_and_no_update(self, api: Api, callback: Callback) -> None:
        key = subscribe(api, callback.url).json()["d"]["ID"]
        assert [s["ID"] for s in results(api.get(SUBS))] == [key]
        keyed = f"{SUBS}(guid'{key}')"
        assert api.get(keyed).json()["d"]["CallbackURL"] == callback.url
        assert api.put(keyed, {"CallbackURL": "x"}).status_code == 400
        assert api.get(keyed).json()["d"]["CallbackURL"] == callback.url
        assert api.delete(keyed).status_code == 204
        assert results(api.get(SUBS)) == []
        assert api.get(keyed).status_code == 404

    def test_an_app_sees_only_its_own(self, api: Api, sandbox_http: httpx.Client, callback: Callback) -> None:
        other = {"Division": 101, "Topic": "Contacts", "CallbackURL": callback.url, "ClientID": "someone-else"}
        key = sandbox_http.post("/_sandbox/webhooks/subscriptions", json=other).json()["ID"]
        assert results(api.get(SUBS)) == []
        assert api.delete(f"{SUBS}(guid'{key}')").status_code == 404
        assert subscribe(api, callback.url).status_code == 201  # another app's subscription is no duplicate

    def test_is_instant_only_for_goods_deliveries(self, api: Api, callback: Callback) -> None:
        body = {"Topic": "Contacts", "CallbackURL": callback.url, "IsInstant": True}
        assert api.post(SUBS, body).status_code == 400
        instant = api.post(SUBS, {**body, "Topic": "GoodsDeliveries"})
        assert instant.status_code == 201
        assert instant.json()["d"]["IsInstant"] is True

    def test_an_ungranted_division_is_403(self, api: Api, sandbox_http: httpx.Client) -> None:
        sandbox_http.post("/_sandbox/divisions/202", json={"granted": False})
        assert api.get("202/webhooks/WebhookSubscriptions").status_code == 403

    def test_there_is_no_topics_resource(self, api: Api) -> None:
        assert api.get("101/webhooks/WebhookTopics").status_code == 404

    def test_planted_subscriptions_can_be_listed_and_removed(
        self, api: Api, sandbox_http: httpx.Client, callback: Callback
    ) -> None:
        stale = {"Division": 101, "Topic": "Items", "CallbackURL": "https://old.example.nl/hook"}
        planted = sandbox_http.post("/_sandbox/webhooks/subscriptions", json=stale)
        assert planted.status_code == 201
        assert callback.bodies == []  # no validation POST anywhere
        assert [s["CallbackURL"] for s in results(api.get(SUBS))] == ["https://old.example.nl/hook"]
        listed = sandbox_http.get("/_sandbox/webhooks/subscriptions").json()["subscriptions"]
        assert [s["ID"] for s in listed] == [planted.json()["ID"]]
        assert sandbox_http.delete(f"/_sandbox/webhooks/subscriptions/{planted.json()['ID']}").status_code == 204
        assert results(api.get(SUBS)) == []
        assert sandbox_http.post("/_sandbox/webhooks/subscriptions", json={"Topic": "Items"}).status_code == 400


class TestDelivery:
    def test_the_real_shape_signed_over_raw_content(
        self, api: Api, sandbox: ServerThread, sandbox_http: httpx.Client, callback: Callback
    ) -> None:
        subscribe(api, callback.url)
        created = sandbox_http.post("/_sandbox/records/101/crm/Contacts", json={"FirstName": "Zoë", "LastName": "x"})
        key = created.json()["record"]["ID"]
        sandbox_http.put(f"/_sandbox/records/101/crm/Contacts/{key}", json={"LastName": "y"})
        sandbox_http.delete(f"/_sandbox/records/101/crm/Contacts/{key}")
        wait_idle(sandbox_http)
        bodies = callback.events()
        assert len(bodies) == 3
        actions: list[str] = []
        for body in bodies:
            content = content_bytes(body)
            payload = json.loads(body)
            assert payload["HashCode"] == sign(content, SandboxConfig.webhook_secret)
            assert json.dumps(payload["Content"], separators=(",", ":")).encode() == content  # compact
            assert list(payload["Content"]) == CONTENT_KEYS
            assert list(payload) == ["Content", "HashCode"]
            got = payload["Content"]
            assert (got["Topic"], got["ClientId"], got["Division"]) == ("Contacts", SandboxConfig.client_id, 101)
            assert got["Key"] == key
            actions.append(got["Action"])
            assert got["ExactOnlineEndpoint"] == f"{sandbox.url}/api/v1/101/crm/Contacts(guid'{key}')"
            assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}", got["EventCreatedOn"])
            assert b"\\/" not in body
        # A create arrives as Update: Exact has no Create. Deliveries run concurrently, so order is not promised.
        assert sorted(actions) == ["Delete", "Update", "Update"]
        assert callback.headers[1]["content-type"] == "application/json"
        recent = sandbox_http.get("/_sandbox/webhooks", params={"last": 3}).json()["recent"]
        assert sorted(r["body"].encode() for r in recent) == sorted(bodies)

    def test_the_endpoint_in_the_payload_can_be_fetched(
        self, api: Api, sandbox_http: httpx.Client, callback: Callback
    ) -> None:
        subscribe(api, callback.url)
        key = sandbox_http.post("/_sandbox/records/101/crm/Contacts", json={"FirstName": "Ann"}).json()["record"]["ID"]
        wait_idle(sandbox_http)
        [body] = callback.events()
        fetched = api.get(json.loads(body)["Content"]["ExactOnlineEndpoint"])
        assert fetched.status_code == 200
        assert fetched.json()["d"]["ID"] == key

    def test_only_subscribed_division_and_topic(self, api: Api, sandbox_http: httpx.Client, callback: Callback) -> None:
        subscribe(api, callback.url)
        sandbox_http.post("/_sandbox/records/202/crm/Contacts", json={"FirstName": "a"})
        sandbox_http.post("/_sandbox/records/101/crm/Accounts", json={"Name": "a"})
        sandbox_http.post("/_sandbox/records/101/crm/Contacts", json={"FirstName": "b"})
        wait_idle(sandbox_http)
        [body] = callback.events()
        assert json.loads(body)["Content"]["Division"] == 101
        assert json.loads(body)["Content"]["Topic"] == "Contacts"

    def test_each_app_gets_its_own_client_id(self, api: Api, sandbox_http: httpx.Client, callback: Callback) -> None:
        subscribe(api, callback.url)
        other = {"Division": 101, "Topic": "Contacts", "CallbackURL": callback.url, "ClientID": "other-app"}
        sandbox_http.post("/_sandbox/webhooks/subscriptions", json=other)
        sandbox_http.post("/_sandbox/records/101/crm/Contacts", json={"FirstName": "a"})
        wait_idle(sandbox_http)
        client_ids = sorted(json.loads(b)["Content"]["ClientId"] for b in callback.events())
        assert client_ids == sorted([SandboxConfig.client_id, "other-app"])

    def test_failed_deliveries_are_retried(self, api: Api, sandbox_http: httpx.Client, callback: Callback) -> None:
        subscribe(api, callback.url)
        callback.fail = 2
        sandbox_http.post("/_sandbox/records/101/crm/Contacts", json={"FirstName": "a"})
        wait_idle(sandbox_http)
        first, *_, last = callback.events()
        assert len(callback.events()) == 3
        assert first == last  # a retry is the same bytes
        counts = stats(sandbox_http)
        assert (counts["sent"], counts["failed"], counts["delivered"], counts["dropped"]) == (3, 2, 1, 0)

    def test_delivery_off_loses_events(self, api: Api, sandbox_http: httpx.Client, callback: Callback) -> None:
        subscribe(api, callback.url)
        assert sandbox_http.post("/_sandbox/webhooks/config", json={"delivery": False}).json()["delivery"] is False
        sandbox_http.post("/_sandbox/records/101/crm/Contacts", json={"FirstName": "lost"})
        wait_idle(sandbox_http)
        assert callback.events() == []
        assert stats(sandbox_http)["suppressed"] == 1
        sandbox_http.post("/_sandbox/webhooks/config", json={"delivery": True})
        sandbox_http.post("/_sandbox/records/101/crm/Contacts", json={"FirstName": "kept"})
        wait_idle(sandbox_http)
        assert len(callback.events()) == 1  # the lost one never comes back

    def test_duplicates_send_each_event_twice(self, api: Api, sandbox_http: httpx.Client, callback: Callback) -> None:
        subscribe(api, callback.url)
        sandbox_http.post("/_sandbox/webhooks/config", json={"duplicates": True})
        sandbox_http.post("/_sandbox/records/101/crm/Contacts", json={"FirstName": "a"})
        wait_idle(sandbox_http)
        first, second = callback.events()
        assert first == second
        assert (stats(sandbox_http)["duplicated"], stats(sandbox_http)["delivered"]) == (1, 2)

    def test_late_deliveries_wait_for_the_sandbox_clock(
        self, api: Api, sandbox_http: httpx.Client, callback: Callback
    ) -> None:
        subscribe(api, callback.url)
        sandbox_http.post("/_sandbox/webhooks/config", json={"late_seconds": 3600})
        sandbox_http.post("/_sandbox/records/101/crm/Contacts", json={"FirstName": "a"})
        assert sandbox_http.get("/_sandbox/webhooks/idle").json() == {"idle": False, "pending": 1}
        assert callback.events() == []
        sandbox_http.post("/_sandbox/clock/advance", json={"seconds": 3600})
        wait_idle(sandbox_http)
        [body] = callback.events()
        assert json.loads(body)["Content"]["Action"] == "Update"
        assert stats(sandbox_http)["delayed"] == 1

    def test_bad_switches_are_refused(self, sandbox_http: httpx.Client) -> None:
        assert sandbox_http.post("/_sandbox/webhooks/config", json={"late_seconds": -1}).status_code == 400
        assert sandbox_http.post("/_sandbox/webhooks/config", json={"dupes": True}).status_code == 400


class TestRetriesGiveUp:
    @pytest.fixture
    def sandbox_config(self) -> SandboxConfig:
        return SandboxConfig(webhook_retry_delays=(0.05, 0.05))

    def test_dropped_after_the_last_retry(self, api: Api, sandbox_http: httpx.Client, callback: Callback) -> None:
        subscribe(api, callback.url)
        callback.status = 500
        sandbox_http.post("/_sandbox/records/101/crm/Contacts", json={"FirstName": "a"})
        wait_idle(sandbox_http)
        assert len(callback.events()) == 3
        counts = stats(sandbox_http)
        assert (counts["sent"], counts["failed"], counts["dropped"], counts["delivered"]) == (3, 3, 1, 0)

    def test_an_unreachable_callback_is_dropped_too(self, api: Api, sandbox_http: httpx.Client) -> None:
        planted = {"Division": 101, "Topic": "Contacts", "CallbackURL": "http://127.0.0.1:9/gone"}
        sandbox_http.post("/_sandbox/webhooks/subscriptions", json=planted)
        sandbox_http.post("/_sandbox/records/101/crm/Contacts", json={"FirstName": "a"})
        wait_idle(sandbox_http)
        assert stats(sandbox_http)["dropped"] == 1
        recent = sandbox_http.get("/_sandbox/webhooks").json()["recent"]
        assert [r["status"] for r in recent] == [None, None, None]


class TestHubUnit:
    def test_changes_while_the_loop_is_not_running_are_counted_not_queued(self) -> None:
        config, clock = SandboxConfig(), SandboxClock()
        store = Store(config, clock)
        hub = WebhookHub(config, clock, store)
        hub.add(101, "Contacts", "http://127.0.0.1:9/hook", config.client_id, store.default_user_id, "http://sb")
        store.create(101, CONTACTS, {"FirstName": "a"})
        store.create(202, CONTACTS, {"FirstName": "b"})  # no subscription: not counted at all
        assert (hub.stats["not_running"], hub.pending, hub.idle()) == (1, 0, True)

    def test_payload_bytes_for_a_known_change(self) -> None:
        config, clock = SandboxConfig(webhook_secret="webhook-secret"), SandboxClock()
        hub = WebhookHub(config, clock, Store(config, clock))
        sub = hub.add(
            441609,
            "SalesOrders",
            "http://x",
            "63824703-cf5c-4143-be7d-db3113b83b0e",
            "u",
            "https://start.exactonline.be",
        )
        key = "19cee073-095e-46d1-8d2d-f3fc97ba5bc1"
        # 2020-01-06T16:26:08.587 UTC
        change = Change(441609, "SalesOrders", key, "Update", "salesorder/SalesOrders", 1578327968.587)
        body = hub.payload(sub, change)
        # The real 2020 payload of exact-api.md §1.1, byte for byte, signed with the test secret (vector of §1.2).
        assert content_bytes(body) == SALES_ORDER
        assert body.endswith(b',"HashCode":"49ED6F39570998C4FC3259B7F27AC93A2E1FA4CF36B413C091CCF8D7CC287A48"}')
