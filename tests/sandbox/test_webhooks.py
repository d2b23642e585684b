from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from sandbox.config import SandboxConfig
from sandbox.signature import sign
from tests.conftest import ServerThread
from tests.sandbox.conftest import Api, error_message, results

SUBS = "101/webhooks/WebhookSubscriptions"


@dataclass
class Callback:
    """A webhook endpoint that records raw bodies and answers `status` (or fails the next `fail` calls)."""

    status: int = 200
    fail: int = 0
    bodies: list[bytes] = field(default_factory=list)
    url: str = ""

    async def endpoint(self, request: Request) -> Response:
        self.bodies.append(await request.body())
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


class TestSubscriptions:
    def test_create_posts_an_empty_body_first(self, api: Api, callback: Callback) -> None:
        response = subscribe(api, callback.url)
        assert response.status_code == 201
        assert callback.bodies == [b""]
        sub = response.json()["d"]
        assert (sub["Topic"], sub["Division"], sub["ClientID"]) == ("Contacts", 101, SandboxConfig.client_id)

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
        assert "An error occurred while sending the request." in error_message(response)

    def test_a_second_for_the_same_topic_is_data_already_exists(self, api: Api, callback: Callback) -> None:
        assert subscribe(api, callback.url).status_code == 201
        again = subscribe(api, callback.url + "?other")
        assert again.status_code == 500
        assert error_message(again) == "Data already exists"
        assert subscribe(api, callback.url, division=202).status_code == 201

    def test_list_get_delete_and_no_update(self, api: Api, callback: Callback) -> None:
        key = subscribe(api, callback.url).json()["d"]["ID"]
        assert [s["ID"] for s in results(api.get(SUBS))] == [key]
        keyed = f"{SUBS}(guid'{key}')"
        assert api.get(keyed).json()["d"]["CallbackURL"] == callback.url
        assert api.put(keyed, {"CallbackURL": "x"}).status_code == 400
        assert api.delete(keyed).status_code == 204
        assert results(api.get(SUBS)) == []

    def test_an_app_sees_only_its_own(self, api: Api, sandbox_http: httpx.Client, callback: Callback) -> None:
        other = {"Division": 101, "Topic": "Items", "CallbackURL": callback.url, "ClientID": "someone-else"}
        sandbox_http.post("/_sandbox/webhooks/subscriptions", json=other)
        assert results(api.get(SUBS)) == []

    def test_is_instant_only_for_goods_deliveries(self, api: Api, callback: Callback) -> None:
        body = {"Topic": "Contacts", "CallbackURL": callback.url, "IsInstant": True}
        assert api.post(SUBS, body).status_code == 400


class TestDelivery:
    def test_the_real_shape_signed_over_raw_content(
        self, api: Api, sandbox_http: httpx.Client, callback: Callback
    ) -> None:
        subscribe(api, callback.url)
        created = sandbox_http.post("/_sandbox/records/101/crm/Contacts", json={"FirstName": "Zoë", "LastName": "x"})
        key = created.json()["record"]["ID"]
        sandbox_http.delete(f"/_sandbox/records/101/crm/Contacts/{key}")
        wait_idle(sandbox_http)
        bodies = callback.events()
        assert len(bodies) == 2
        for body, action in zip(bodies, ("Update", "Delete"), strict=True):
            assert b" " not in body
            content = body[len(b'{"Content":') : body.index(b',"HashCode":')]
            payload = json.loads(body)
            assert payload["HashCode"] == sign(content, SandboxConfig.webhook_secret)
            assert list(payload["Content"]) == [
                "Topic", "ClientId", "Division", "Action", "Key", "ExactOnlineEndpoint", "EventCreatedOn",
            ]  # fmt: skip
            assert payload["Content"]["Action"] == action  # a create arrives as Update: there is no Create
            assert payload["Content"]["Key"] == key
            assert payload["Content"]["ExactOnlineEndpoint"].endswith(f"/api/v1/101/crm/Contacts(guid'{key}')")
            assert b"\\/" not in body

    def test_only_subscribed_division_and_topic(self, api: Api, sandbox_http: httpx.Client, callback: Callback) -> None:
        subscribe(api, callback.url)
        sandbox_http.post("/_sandbox/records/202/crm/Contacts", json={"FirstName": "a"})
        sandbox_http.post("/_sandbox/records/101/financial/GLAccounts", json={"Code": "9999"})
        wait_idle(sandbox_http)
        assert callback.events() == []

    def test_failed_deliveries_are_retried(self, api: Api, sandbox_http: httpx.Client, callback: Callback) -> None:
        subscribe(api, callback.url)
        callback.fail = 2
        sandbox_http.post("/_sandbox/records/101/crm/Contacts", json={"FirstName": "a"})
        wait_idle(sandbox_http)
        assert len(callback.events()) == 3
        stats = sandbox_http.get("/_sandbox/webhooks").json()["stats"]
        assert (stats["failed"], stats["delivered"]) == (2, 1)

    def test_delivery_off_loses_events(self, api: Api, sandbox_http: httpx.Client, callback: Callback) -> None:
        subscribe(api, callback.url)
        sandbox_http.post("/_sandbox/webhooks/config", json={"delivery": False})
        sandbox_http.post("/_sandbox/records/101/crm/Contacts", json={"FirstName": "a"})
        wait_idle(sandbox_http)
        assert callback.events() == []
        assert sandbox_http.get("/_sandbox/webhooks").json()["stats"]["suppressed"] == 1

    def test_duplicates_and_late_deliveries(self, api: Api, sandbox_http: httpx.Client, callback: Callback) -> None:
        subscribe(api, callback.url)
        sandbox_http.post("/_sandbox/webhooks/config", json={"duplicates": True, "late_seconds": 0.3})
        sandbox_http.post("/_sandbox/records/101/crm/Contacts", json={"FirstName": "a"})
        assert not sandbox_http.get("/_sandbox/webhooks/idle").json()["idle"]
        wait_idle(sandbox_http)
        first, second = callback.events()
        assert first == second


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
        assert sandbox_http.get("/_sandbox/webhooks").json()["stats"]["dropped"] == 1
