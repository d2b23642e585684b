"""Two Exact apps in one deployment: the sandbox serves both, and the settings name the second one `be`."""

from __future__ import annotations

import json

import httpx
from pydantic import SecretStr

from connections.consent import finish_connect
from connections.factory import oauth_from_settings
from runtime.settings import Settings
from sandbox.config import SandboxApp, SandboxConfig

# App 1 is the sandbox's own (SandboxConfig's client id and secrets), `default` through the EXACT_* settings.
BE = SandboxApp(
    client_id="7a6b5c4d-3e2f-4a1b-9c8d-7e6f5a4b3c2d",
    client_secret="sandbox-be-client-secret",
    webhook_secret="sandbox-be-webhook-secret",
)


def two_app_sandbox() -> SandboxConfig:
    return SandboxConfig(apps=(BE,))


def be_entry(base_url: str, **overrides: str) -> dict[str, str]:
    entry = {
        "base_url": base_url,
        "client_id": BE.client_id,
        "client_secret": BE.client_secret,
        "webhook_secret": BE.webhook_secret,
    }
    return entry | overrides


def with_apps(settings: Settings, apps: dict[str, dict[str, str]]) -> Settings:
    return settings.model_copy(update={"exact_apps": SecretStr(json.dumps(apps))})


def two_app_settings(settings: Settings, base_url: str) -> Settings:
    """`default` from EXACT_* (the sandbox's app 1), `be` from EXACT_APPS (app 2), both on the sandbox."""
    return with_apps(settings.model_copy(update={"exact_base_url": base_url}), {"be": be_entry(base_url)})


def connect_app(settings: Settings, app: str) -> int:
    """Authorize `app` against the sandbox, exchange the code and store the connection, as `connect --app` does."""
    oauth = oauth_from_settings(settings, app)
    url, state = oauth.authorize_url()
    location = httpx.URL(httpx.get(url, follow_redirects=False).headers["location"])
    assert location.params["state"] == state
    connection_id, _user, _divisions = finish_connect(settings, oauth.exchange_code(location.params["code"]), app=app)
    return connection_id
