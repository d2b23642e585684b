"""Two Exact apps with different webhook secrets: each app's webhooks verify under its own secret only, and a ClientId
of no configured app is refused. Real receiver, Redis and (for the end-to-end case) the sandbox serving both apps."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator

import httpx
import pytest
import redis

from receiver.app import create_app
from runtime.settings import MissingSetting, Settings
from sandbox.config import SandboxConfig
from tests.conftest import ServerThread
from tests.connections.two_apps import BE, be_entry, two_app_sandbox, two_app_settings, with_apps
from tests.receiver.builders import signed_webhook
from tests.receiver.conftest import Receiver

APP1, SECRET1 = SandboxConfig.client_id, SandboxConfig.webhook_secret


@pytest.fixture
def two_apps(settings: Settings) -> Settings:
    return two_app_settings(settings, "https://start.exactonline.be")


@pytest.fixture
def receiver2(two_apps: Settings, tracked: None, redis_client: redis.Redis) -> Iterator[Receiver]:
    with ServerThread(create_app(two_apps)) as server:
        yield Receiver(server.url, two_apps, redis_client)


class TestTwoApps:
    @pytest.mark.parametrize(
        ("client_id", "secret"),
        [
            pytest.param(APP1, SECRET1, id="app-1"),
            pytest.param(BE.client_id, BE.webhook_secret, id="app-2"),
            pytest.param("{" + BE.client_id.upper() + "}", BE.webhook_secret, id="app-2-braced-upper"),
        ],
    )
    def test_each_apps_webhook_verifies_under_its_secret(
        self, receiver2: Receiver, client_id: str, secret: str
    ) -> None:
        response = receiver2.post(signed_webhook(secret, ClientId=client_id))
        assert response.status_code == 200, response.text
        assert response.json()["outcome"] == "enqueued"
        [event] = receiver2.events()
        assert event["client_id"] == client_id

    @pytest.mark.parametrize(
        ("client_id", "secret"),
        [
            pytest.param(BE.client_id, SECRET1, id="app-2-under-app-1s-secret"),
            pytest.param(APP1, BE.webhook_secret, id="app-1-under-app-2s-secret"),
        ],
    )
    def test_another_apps_secret_is_forged(self, receiver2: Receiver, client_id: str, secret: str) -> None:
        response = receiver2.post(signed_webhook(secret, ClientId=client_id))
        assert response.status_code == 401
        assert response.json()["outcome"] == "forged"
        assert receiver2.queue() == []

    @pytest.mark.parametrize(
        "client_id",
        [pytest.param("00000000-0000-0000-0000-000000000000", id="unknown"), pytest.param(..., id="missing")],
    )
    def test_a_client_id_of_no_app_is_refused(self, receiver2: Receiver, client_id: object) -> None:
        response = receiver2.post(signed_webhook(SECRET1, ClientId=client_id))
        assert response.status_code == 403
        assert response.json()["outcome"] == "unknown_client"
        assert receiver2.queue() == []

    def test_an_app_without_a_webhook_secret_stops_the_app_at_start(self, settings: Settings) -> None:
        entry = {k: v for k, v in be_entry("https://start.exactonline.be").items() if k != "webhook_secret"}
        with pytest.raises(MissingSetting, match=re.escape("EXACT_APPS.be.webhook_secret")):
            create_app(with_apps(settings, {"be": entry}))

    def test_one_app_still_takes_any_client_id(self, receiver: Receiver) -> None:
        # Without EXACT_APPS nothing names the app's client id for sure (EXACT_CLIENT_ID is optional here).
        response = receiver.post(signed_webhook(ClientId="00000000-0000-0000-0000-000000000000"))
        assert response.json()["outcome"] == "enqueued"


@pytest.fixture
def sandbox_config() -> SandboxConfig:
    return two_app_sandbox()


def wait_idle(http: httpx.Client, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not http.get("/_sandbox/webhooks/idle").json()["idle"]:
        assert time.monotonic() < deadline, "webhook deliveries still pending"
        time.sleep(0.05)


class TestFromTheSandbox:
    def test_both_apps_webhooks_are_signed_with_their_own_secret_and_verified(
        self, receiver2: Receiver, sandbox_http: httpx.Client
    ) -> None:
        for client_id in (APP1, BE.client_id):
            planted = {"Division": 101, "Topic": "Accounts", "CallbackURL": f"{receiver2.url}/webhooks/exact"}
            assert sandbox_http.post(
                "/_sandbox/webhooks/subscriptions", json=planted | {"ClientID": client_id}
            ).is_success
        created = sandbox_http.post("/_sandbox/records/101/crm/Accounts", json={"Name": "Two apps BV"})
        assert created.is_success, created.text
        wait_idle(sandbox_http)
        sent = [d for d in sandbox_http.get("/_sandbox/webhooks", params={"last": 10}).json()["recent"]]
        assert sorted(json.loads(d["body"])["Content"]["ClientId"] for d in sent) == sorted([APP1, BE.client_id])
        assert [d["status"] for d in sent] == [200, 200]
        # One change seen through both apps: the first is enqueued, the second verified and answered as a duplicate.
        metrics = httpx.get(f"{receiver2.url}/metrics").text
        assert 'exact_webhook_requests_total{outcome="enqueued"} 1.0' in metrics
        assert 'exact_webhook_requests_total{outcome="duplicate"} 1.0' in metrics
        assert "forged" not in metrics
