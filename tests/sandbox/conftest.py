"""An API session against the sandbox, logged in through its real OAuth flow."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from sandbox.config import SandboxConfig
from tests.conftest import ServerThread

REDIRECT = "http://127.0.0.1:9/callback"


def authorize(http: httpx.Client, config: SandboxConfig) -> dict[str, str]:
    """Run the authorization-code flow; returns the token response."""
    params = {"client_id": config.client_id, "redirect_uri": REDIRECT, "response_type": "code", "state": "s1"}
    redirect = http.get("/api/oauth2/auth", params=params)
    assert redirect.status_code == 302
    code = httpx.URL(redirect.headers["location"]).params["code"]
    response = http.post(
        "/api/oauth2/token",
        data={
            "grant_type": "authorization_code",
            "client_id": config.client_id,
            "client_secret": config.client_secret,
            "redirect_uri": REDIRECT,
            "code": code,
        },
    )
    assert response.status_code == 200, response.text
    return dict(response.json())


class Api:
    """Calls `/api/v1` with a bearer token and `Accept: application/json`, as a client must."""

    def __init__(self, http: httpx.Client, token: dict[str, str]) -> None:
        self.http = http
        self.token = token

    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token['access_token']}", "Accept": "application/json"}

    def get(self, path: str, **params: Any) -> httpx.Response:
        url = path if path.startswith("http") else f"/api/v1/{path}"
        return self.http.get(url, params=params or None, headers=self.headers())

    def post(self, path: str, body: Any) -> httpx.Response:
        return self.http.post(f"/api/v1/{path}", json=body, headers=self.headers())

    def put(self, path: str, body: Any) -> httpx.Response:
        return self.http.put(f"/api/v1/{path}", json=body, headers=self.headers())

    def delete(self, path: str) -> httpx.Response:
        return self.http.delete(f"/api/v1/{path}", headers=self.headers())

    def refresh(self, config: SandboxConfig) -> httpx.Response:
        return self.http.post(
            "/api/oauth2/token",
            data={
                "grant_type": "refresh_token",
                "refresh_token": self.token["refresh_token"],
                "client_id": config.client_id,
                "client_secret": config.client_secret,
            },
        )


@pytest.fixture
def api(sandbox: ServerThread, sandbox_http: httpx.Client, sandbox_config: SandboxConfig) -> Api:
    return Api(sandbox_http, authorize(sandbox_http, sandbox_config))


def results(response: httpx.Response) -> list[dict[str, Any]]:
    assert response.status_code == 200, response.text
    return list(response.json()["d"]["results"])


def error_message(response: httpx.Response) -> str:
    return str(response.json()["error"]["message"]["value"])
