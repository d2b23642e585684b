"""A connection to the sandbox made through the real OAuth flow, and clients for it."""

from __future__ import annotations

from dataclasses import dataclass

import httpx
import pytest
from sqlalchemy.orm import Session, sessionmaker

from connections.consent import finish_connect
from connections.factory import client_from_settings
from exact import ExactClient, OAuthApp
from runtime.settings import Settings
from tests.conftest import ServerThread


@dataclass
class Connected:
    settings: Settings
    connection_id: int
    sessions: sessionmaker[Session]

    def client(self, **overrides: float) -> ExactClient:
        return client_from_settings(self.settings, self.sessions, self.connection_id, **overrides)


def connect_to(settings: Settings) -> int:
    """Authorize against the sandbox, exchange the code and store the connection, as `exact-pipeline connect` does."""
    oauth = OAuthApp(
        settings.exact_base_url,
        str(settings.exact_client_id),
        settings.secret("exact_client_secret"),
        settings.exact_redirect_uri,
    )
    url, state = oauth.authorize_url()
    redirect = httpx.get(url, follow_redirects=False)
    location = httpx.URL(redirect.headers["location"])
    assert location.params["state"] == state
    connection_id, _user, _divisions = finish_connect(settings, oauth.exchange_code(location.params["code"]))
    return connection_id


@pytest.fixture
def exact_settings(settings: Settings, sandbox: ServerThread) -> Settings:
    return settings.model_copy(update={"exact_base_url": sandbox.url})


@pytest.fixture
def connected(exact_settings: Settings, session_factory: sessionmaker[Session]) -> Connected:
    return Connected(exact_settings, connect_to(exact_settings), session_factory)
