from __future__ import annotations

import httpx
import pytest

from sandbox.config import SandboxConfig
from tests.sandbox.conftest import REDIRECT, Api, authorize, error_message


class TestAuthorize:
    def test_auto_approves_and_redirects_with_code_and_state(self, sandbox_http: httpx.Client) -> None:
        params = {
            "client_id": SandboxConfig.client_id,
            "redirect_uri": REDIRECT,
            "response_type": "code",
            "state": "xyz",
        }
        response = sandbox_http.get("/api/oauth2/auth", params=params)
        assert response.status_code == 302
        location = httpx.URL(response.headers["location"])
        assert str(location).startswith(REDIRECT)
        assert location.params["state"] == "xyz"
        assert location.params["code"]

    def test_unknown_client_is_refused(self, sandbox_http: httpx.Client) -> None:
        params = {"client_id": "nope", "redirect_uri": REDIRECT, "response_type": "code"}
        assert sandbox_http.get("/api/oauth2/auth", params=params).status_code == 400


class TestToken:
    def test_expires_in_is_the_string_600(self, sandbox_http: httpx.Client) -> None:
        token = authorize(sandbox_http, SandboxConfig())
        assert token["expires_in"] == "600"
        assert token["token_type"] == "bearer"
        assert "!" in token["refresh_token"]

    def test_a_code_is_single_use(self, sandbox_http: httpx.Client) -> None:
        params = {"client_id": SandboxConfig.client_id, "redirect_uri": REDIRECT, "response_type": "code"}
        code = httpx.URL(sandbox_http.get("/api/oauth2/auth", params=params).headers["location"]).params["code"]
        form = {
            "grant_type": "authorization_code",
            "client_id": SandboxConfig.client_id,
            "client_secret": SandboxConfig.client_secret,
            "redirect_uri": REDIRECT,
            "code": code,
        }
        assert sandbox_http.post("/api/oauth2/token", data=form).status_code == 200
        assert sandbox_http.post("/api/oauth2/token", data=form).status_code == 400

    def test_wrong_client_secret_is_refused(self, sandbox_http: httpx.Client) -> None:
        form = {
            "grant_type": "refresh_token",
            "client_id": SandboxConfig.client_id,
            "client_secret": "wrong",
            "refresh_token": "x",
        }
        assert sandbox_http.post("/api/oauth2/token", data=form).status_code == 401


class TestRefresh:
    def test_refresh_before_570_seconds_is_refused_and_the_token_stays_valid(self, api: Api) -> None:
        response = api.refresh(SandboxConfig())
        assert response.status_code == 400
        assert "access_token not expired" in response.json()["error_description"]
        assert api.get("current/Me").status_code == 200

    def test_every_refresh_rotates_and_the_old_token_then_fails(self, api: Api, sandbox_http: httpx.Client) -> None:
        sandbox_http.post("/_sandbox/clock/advance", json={"seconds": 571})
        first = api.refresh(SandboxConfig())
        assert first.status_code == 200
        assert first.json()["refresh_token"] != api.token["refresh_token"]
        reused = api.refresh(SandboxConfig())
        assert reused.status_code == 401
        assert reused.json()["error_description"] == "Old refresh token used."
        stats = sandbox_http.get("/_sandbox/oauth").json()
        assert stats["rotated_token_uses"] == 1
        assert stats["refreshes"] == 1

    def test_access_token_expires_after_its_lifetime(self, api: Api, sandbox_http: httpx.Client) -> None:
        assert api.get("current/Me").status_code == 200
        sandbox_http.post("/_sandbox/clock/advance", json={"seconds": 601})
        response = api.get("current/Me")
        assert response.status_code == 401
        assert error_message(response) == "Unauthorized"

    def test_revoked_refresh_token_reads_as_old(self, api: Api, sandbox_http: httpx.Client) -> None:
        sandbox_http.post("/_sandbox/clock/advance", json={"seconds": 600})
        sandbox_http.post("/_sandbox/oauth/revoke", json={})
        assert api.refresh(SandboxConfig()).json()["error_description"] == "Old refresh token used."


def auth_code(http: httpx.Client, redirect_uri: str = REDIRECT) -> str:
    params = {"client_id": SandboxConfig.client_id, "redirect_uri": redirect_uri, "response_type": "code"}
    response = http.get("/api/oauth2/auth", params=params)
    assert response.status_code == 302, response.text
    return str(httpx.URL(response.headers["location"]).params["code"])


def exchange(
    http: httpx.Client, code: str, *, secret: str = SandboxConfig.client_secret, redirect_uri: str = REDIRECT
) -> httpx.Response:
    return http.post(
        "/api/oauth2/token",
        data={
            "grant_type": "authorization_code",
            "client_id": SandboxConfig.client_id,
            "client_secret": secret,
            "redirect_uri": redirect_uri,
            "code": code,
        },
    )


class TestCodes:
    def test_wrong_secret_gets_an_oauth_error_body(self, sandbox_http: httpx.Client) -> None:
        response = exchange(sandbox_http, auth_code(sandbox_http), secret="wrong")
        assert response.status_code == 401
        assert response.json()["error"] == "invalid_client"

    def test_a_code_dies_after_three_minutes(self, sandbox_http: httpx.Client) -> None:
        code = auth_code(sandbox_http)
        sandbox_http.post("/_sandbox/clock/advance", json={"seconds": 181})
        assert exchange(sandbox_http, code).status_code == 400

    def test_a_code_is_bound_to_its_redirect_uri(self, sandbox_http: httpx.Client) -> None:
        code = auth_code(sandbox_http)
        assert exchange(sandbox_http, code, redirect_uri="http://127.0.0.1:9/other").status_code == 400


class TestRegisteredRedirect:
    @pytest.fixture
    def sandbox_config(self) -> SandboxConfig:
        return SandboxConfig(redirect_uris=(REDIRECT,))

    def test_only_a_registered_redirect_uri_is_accepted(self, sandbox_http: httpx.Client) -> None:
        params = {
            "client_id": SandboxConfig.client_id,
            "redirect_uri": "http://evil.example/cb",
            "response_type": "code",
        }
        assert sandbox_http.get("/api/oauth2/auth", params=params).status_code == 400
        assert exchange(sandbox_http, auth_code(sandbox_http)).status_code == 200


class TestRefreshLifecycle:
    def test_early_then_on_time_then_reused_are_counted_by_outcome(self, api: Api, sandbox_http: httpx.Client) -> None:
        early = api.refresh(SandboxConfig())
        assert early.status_code == 400
        sandbox_http.post("/_sandbox/clock/advance", json={"seconds": 570})
        fresh = api.refresh(SandboxConfig())  # the refused early call left the refresh token valid
        assert fresh.status_code == 200
        assert api.refresh(SandboxConfig()).status_code == 401
        api.token = fresh.json()
        assert api.get("current/Me").status_code == 200
        stats = sandbox_http.get("/_sandbox/oauth").json()
        assert stats["by_grant"] == {
            "authorization_code": {"ok": 1},
            "refresh_token": {"ok": 1, "rotated": 1, "too_early": 1},
        }
        assert stats["token_calls"] == {
            "authorization_code:200": 1,
            "refresh_token:400": 1,
            "refresh_token:200": 1,
            "refresh_token:401": 1,
        }
        assert (stats["refreshes"], stats["rotated_token_uses"], stats["live_refresh_tokens"]) == (1, 1, 1)

    def test_an_idle_refresh_token_expires(self, api: Api, sandbox_http: httpx.Client) -> None:
        sandbox_http.post("/_sandbox/clock/advance", json={"seconds": 30 * 86400 + 1})
        response = api.refresh(SandboxConfig())
        assert response.status_code == 400
        assert response.json()["error"] == "invalid_request"
        assert response.json()["error_description"].startswith("The refresh token expired at ")
        assert " and it is now " in response.json()["error_description"]
        assert api.refresh(SandboxConfig()).json()["error_description"].startswith("The refresh token expired")

    def test_revoke_touches_only_the_named_user(self, api: Api, sandbox_http: httpx.Client) -> None:
        assert sandbox_http.post("/_sandbox/oauth/revoke", json={"user_id": "someone-else"}).json() == {"revoked": 0}
        sandbox_http.post("/_sandbox/clock/advance", json={"seconds": 600})
        assert api.refresh(SandboxConfig()).status_code == 200


class TestLimits:
    @pytest.fixture
    def sandbox_config(self) -> SandboxConfig:
        return SandboxConfig(token_calls_per_day=2, access_token_lifetime=120, refresh_min_age=0)

    def test_lifetime_is_configurable(self, sandbox_http: httpx.Client, sandbox_config: SandboxConfig) -> None:
        assert authorize(sandbox_http, sandbox_config)["expires_in"] == "120"

    def test_token_calls_a_day_are_capped(self, api: Api, sandbox_config: SandboxConfig) -> None:
        second = api.refresh(sandbox_config)
        assert second.status_code == 200
        api.token = second.json()
        third = api.refresh(sandbox_config)
        assert third.status_code == 400
        assert "token calls per day" in third.json()["error_description"]
