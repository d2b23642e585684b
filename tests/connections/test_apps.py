"""Several Exact apps: EXACT_APPS beside the EXACT_* settings, and a connection of app 2 that is app 2's throughout
(real OAuth against a sandbox that serves both apps, and the budgets in Redis)."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from datetime import timedelta

import httpx
import pytest
import redis
from pydantic import SecretStr
from sqlalchemy.orm import Session, sessionmaker
from typer.testing import CliRunner

from cli.main import _mount, app
from connections.apps import DEFAULT_APP, UnknownApp, apps_from_settings
from connections.factory import client_from_settings, limiter_from_settings
from connections.models import Connection
from exact import ErrorBudget, NotFound
from runtime.settings import MissingSetting, Settings, get_settings
from sandbox.config import SandboxConfig
from tests.conftest import ServerThread
from tests.connections.two_apps import BE, be_entry, connect_app, two_app_sandbox, two_app_settings, with_apps

runner = CliRunner()


@pytest.fixture
def sandbox_config() -> SandboxConfig:
    return two_app_sandbox()


@pytest.fixture
def two_apps(settings: Settings, sandbox: ServerThread) -> Settings:
    return two_app_settings(settings, sandbox.url)


class TestAppsFromSettings:
    def test_the_exact_settings_alone_are_one_app_named_default(self, settings: Settings) -> None:
        apps = apps_from_settings(settings)
        assert apps.names == [DEFAULT_APP]
        assert not apps.several
        default = apps.get(DEFAULT_APP)
        assert (default.base_url, default.client_id) == (settings.exact_base_url, SandboxConfig.client_id)
        assert default.webhook_secret == SandboxConfig.webhook_secret

    def test_exact_apps_adds_to_default(self, settings: Settings) -> None:
        apps = apps_from_settings(with_apps(settings, {"be": be_entry("https://start.exactonline.be")}))
        assert apps.names == ["be", DEFAULT_APP]
        assert apps.several
        be = apps.get("be")
        assert (be.base_url, be.client_id, be.client_secret) == (
            "https://start.exactonline.be",
            BE.client_id,
            BE.client_secret,
        )
        assert be.redirect_uri == settings.exact_redirect_uri  # EXACT_REDIRECT_URI unless the entry names its own
        assert apps.by_client_id("{" + BE.client_id.upper() + "}") == be
        assert apps.by_client_id("00000000-0000-0000-0000-000000000000") is None

    def test_exact_apps_without_exact_client_id_has_no_default(self, settings: Settings) -> None:
        only = with_apps(settings.model_copy(update={"exact_client_id": None}), {"be": be_entry("https://x")})
        apps = apps_from_settings(only)
        assert apps.names == ["be"]
        with pytest.raises(UnknownApp, match="'default'"):
            apps.get(DEFAULT_APP)

    @pytest.mark.parametrize(
        ("table", "message"),
        [
            pytest.param({"default": be_entry("https://x")}, "keep one", id="default-twice"),
            pytest.param({"be": be_entry("https://x", client_id=SandboxConfig.client_id)}, "same client id", id="dup"),
        ],
    )
    def test_ambiguous_apps_are_refused(
        self, settings: Settings, table: dict[str, dict[str, str]], message: str
    ) -> None:
        with pytest.raises(ValueError, match=message):
            apps_from_settings(with_apps(settings, table))

    @pytest.mark.parametrize(
        "raw",
        [
            pytest.param('{"be": {"client_secret": "leaky-secret"}}', id="missing-fields"),
            pytest.param(
                '{"BE space": ' + json.dumps(be_entry("https://x", client_secret="leaky-secret")) + "}", id="name"
            ),
            pytest.param('["leaky-secret"]', id="not-an-object"),
            pytest.param("{leaky-secret", id="not-json"),
        ],
    )
    def test_a_malformed_table_is_named_without_its_secrets(self, settings: Settings, raw: str) -> None:
        with pytest.raises(ValueError, match="EXACT_APPS") as info:
            apps_from_settings(settings.model_copy(update={"exact_apps": SecretStr(raw)}))
        assert "leaky-secret" not in str(info.value)

    def test_app_secrets_are_redacted_and_reach_child_processes(self, settings: Settings) -> None:
        two = with_apps(settings, {"be": be_entry("https://start.exactonline.be")})
        assert {BE.client_secret, BE.webhook_secret} <= set(two.secret_values())
        assert BE.client_secret not in repr(two)
        child = Settings(_env_file=None, **{k.lower(): v for k, v in two.child_environment({}).items()})  # type: ignore[call-arg, arg-type]
        assert apps_from_settings(child) == apps_from_settings(two)

    def test_a_missing_default_credential_is_named(self, settings: Settings) -> None:
        bare = settings.model_copy(update={"exact_client_secret": None})
        with pytest.raises(MissingSetting, match="EXACT_CLIENT_SECRET"):
            apps_from_settings(bare).get(DEFAULT_APP).credentials()


class TestAConnectionOfApp2:
    def test_it_is_stored_as_app_2s(self, two_apps: Settings, session_factory: sessionmaker[Session]) -> None:
        connection_id = connect_app(two_apps, "be")
        with session_factory() as session:
            row = session.get(Connection, connection_id)
            assert row is not None
            assert (row.app, row.client_id, row.base_url) == ("be", BE.client_id, two_apps.exact_base_url)

    def test_one_user_through_both_apps_is_two_connections(
        self, two_apps: Settings, session_factory: sessionmaker[Session]
    ) -> None:
        ids = {name: connect_app(two_apps, name) for name in (DEFAULT_APP, "be")}
        assert ids[DEFAULT_APP] != ids["be"]
        assert connect_app(two_apps, "be") == ids["be"]  # a reconnect updates its own app's row

    def test_its_calls_count_in_app_2s_budget(
        self,
        two_apps: Settings,
        session_factory: sessionmaker[Session],
        sandbox_http: httpx.Client,
        redis_client: redis.Redis,
    ) -> None:
        connection_id = connect_app(two_apps, "be")
        client = client_from_settings(two_apps, session_factory, connection_id)
        client.divisions(101)
        with pytest.raises(NotFound):
            client.get_by_key(101, "crm/Accounts", "00000000-0000-0000-0000-00000000abcd")
        # The sandbox saw every call (consent's included) under app 2's client id.
        windows = sandbox_http.get("/_sandbox/limits").json()["minute"]
        assert {w["client_id"] for w in windows} == {BE.client_id}
        # And our budgets in Redis: app 2's spent, app 1's untouched.
        ours = {
            name: limiter_from_settings(two_apps, client_id=client_id).usage(101).minute_used
            for name, client_id in (("be", BE.client_id), (DEFAULT_APP, SandboxConfig.client_id))
        }
        assert ours[DEFAULT_APP] == 0
        assert ours["be"] >= 2
        errors = {
            name: ErrorBudget(redis_client, prefix=two_apps.redis_prefix, client_id=cid).count(101, "crm/Accounts")
            for name, cid in (("be", BE.client_id), (DEFAULT_APP, SandboxConfig.client_id))
        }
        assert errors == {"be": 1, DEFAULT_APP: 0}

    def test_its_tokens_are_refreshed_with_app_2s_credentials(
        self, two_apps: Settings, session_factory: sessionmaker[Session], sandbox_http: httpx.Client
    ) -> None:
        connection_id = connect_app(two_apps, "be")
        with session_factory() as session, session.begin():  # 600 s older, on our side and on the sandbox's clock
            row = session.get(Connection, connection_id)
            assert row is not None
            row.token_issued_at -= timedelta(seconds=600)
        sandbox_http.post("/_sandbox/clock/advance", json={"seconds": 600})
        client_from_settings(two_apps, session_factory, connection_id).divisions(101)
        # The sandbox binds a refresh token to its app: app 1's credentials would have been refused.
        assert sandbox_http.get("/_sandbox/oauth").json()["by_grant"]["refresh_token"] == {"ok": 1}


@pytest.fixture
def cli_env(two_apps: Settings, monkeypatch: pytest.MonkeyPatch) -> Iterator[Settings]:
    for name, value in two_apps.child_environment(os.environ).items():
        monkeypatch.setenv(name, value)
    get_settings.cache_clear()
    _mount()
    yield two_apps
    get_settings.cache_clear()


def a_code(settings: Settings, client_id: str) -> str:
    query = {"client_id": client_id, "redirect_uri": settings.exact_redirect_uri, "response_type": "code"}
    response = httpx.get(f"{settings.exact_base_url}/api/oauth2/auth", params=query)
    return httpx.URL(response.headers["location"]).params["code"]


class TestConnectCommand:
    def test_connect_app_2_then_list_its_divisions(self, cli_env: Settings) -> None:
        result = runner.invoke(app, ["connect", "--app", "be", "--code", a_code(cli_env, BE.client_id)])
        assert result.exit_code == 0, result.output
        assert "app be" in result.output
        listed = runner.invoke(app, ["divisions"])
        assert listed.exit_code == 0, listed.output
        assert "(be)" in listed.output

    def test_an_unknown_app_is_named(self, cli_env: Settings) -> None:
        result = runner.invoke(app, ["connect", "--app", "nope", "--code", "x"])
        assert result.exit_code != 0
        assert "nope" in result.output
