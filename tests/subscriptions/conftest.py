"""A connection to the sandbox, the real receiver as the callback, and a service for that connection."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
import redis
from pydantic import SecretStr
from sqlalchemy.orm import Session, sessionmaker

from receiver.app import create_app
from runtime.settings import Settings, get_settings
from subscriptions.service import SubscriptionService
from tests.conftest import ServerThread
from tests.pipeline.connected import Connected, connect_to


@pytest.fixture
def receiver_url(settings: Settings) -> Iterator[str]:
    with ServerThread(create_app(settings)) as server:
        yield server.url


@pytest.fixture
def connected(
    settings: Settings, sandbox: ServerThread, receiver_url: str, session_factory: sessionmaker[Session]
) -> Connected:
    settings = settings.model_copy(update={"exact_base_url": sandbox.url, "public_url": receiver_url})
    return Connected(settings, connect_to(settings), session_factory)


@pytest.fixture
def service(connected: Connected, redis_client: redis.Redis) -> SubscriptionService:
    return SubscriptionService(
        connected.settings, connected.sessions, connected.client(), connected.connection_id, redis_client
    )


def settings_as_env(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The environment a user would set for `settings`, for commands run through the CLI (a fixture's body)."""
    for name, value in settings.model_dump().items():
        if value is not None:
            plain = value.get_secret_value() if isinstance(value, SecretStr) else value
            monkeypatch.setenv(name.upper(), str(plain))
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


@pytest.fixture
def cli_env(connected: Connected, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    yield from settings_as_env(connected.settings, monkeypatch)


def sandbox_subscriptions(sandbox: ServerThread) -> list[dict[str, object]]:
    return list(httpx.get(f"{sandbox.url}/_sandbox/webhooks/subscriptions").json()["subscriptions"])


def calls(sandbox: ServerThread) -> tuple[int, int]:
    """Calls on the WebhookSubscriptions endpoint the sandbox answered: (all, answered 200 — the list GETs)."""
    params = {"endpoint": "webhooks/WebhookSubscriptions"}
    every = httpx.get(f"{sandbox.url}/_sandbox/calls", params=params).json()["total"]
    listed = httpx.get(f"{sandbox.url}/_sandbox/calls", params={**params, "status": "200"}).json()["total"]
    return int(every), int(listed)


def plant(sandbox: ServerThread, division: int, topic: str, callback_url: str) -> str:
    """A subscription made behind our back (another tool, a colleague by hand); its Exact ID."""
    body = {"Division": division, "Topic": topic, "CallbackURL": callback_url}
    response = httpx.post(f"{sandbox.url}/_sandbox/webhooks/subscriptions", json=body)
    assert response.status_code == 201, response.text
    return str(response.json()["ID"])


def set_division(sandbox: ServerThread, code: int, **change: object) -> None:
    assert httpx.post(f"{sandbox.url}/_sandbox/divisions/{code}", json=change).status_code == 200


def held(sandbox: ServerThread) -> list[tuple[int, str, str]]:
    """(division, topic, CallbackURL) of every subscription the sandbox holds, sorted."""
    return sorted(
        (int(str(s["Division"])), str(s["Topic"]), str(s["CallbackURL"])) for s in sandbox_subscriptions(sandbox)
    )
