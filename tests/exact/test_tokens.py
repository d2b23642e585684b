from __future__ import annotations

import json
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from pydantic import SecretStr
from sqlalchemy import update

from connections.factory import client_from_settings
from connections.models import Connection
from exact import NeedsConsent
from runtime.crypto import TokenCipher, generate_key
from runtime.settings import Settings
from tests.conftest import ServerThread
from tests.pipeline.connected import Connected


def oauth_stats(sandbox: ServerThread) -> dict[str, object]:
    return dict(httpx.get(f"{sandbox.url}/_sandbox/oauth").json())


def age_tokens(connected: Connected, sandbox: ServerThread, seconds: float) -> None:
    """Make the stored token `seconds` older, on our side and on the sandbox's clock."""
    with connected.sessions() as session, session.begin():
        row = session.get(Connection, connected.connection_id)
        assert row is not None
        session.execute(
            update(Connection)
            .where(Connection.id == row.id)
            .values(token_issued_at=row.token_issued_at - timedelta(seconds=seconds))
        )
    httpx.post(f"{sandbox.url}/_sandbox/clock/advance", json={"seconds": seconds})


def run(kind: str, settings_file: Path, connection_id: int, arg: float) -> subprocess.Popen[str]:
    command = [sys.executable, "-m", "tests.exact.processes", kind, str(settings_file), str(connection_id), str(arg)]
    return subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def settings_json(settings: Settings) -> str:
    """The settings for a child process, secrets included (model_dump_json would mask them)."""
    data = settings.model_dump()
    return json.dumps({k: v.get_secret_value() if isinstance(v, SecretStr) else v for k, v in data.items()})


class TestRefresh:
    def test_no_refresh_before_570_seconds(self, connected: Connected, sandbox: ServerThread) -> None:
        client = connected.client()
        client.me()
        age_tokens(connected, sandbox, 500)
        client.me()
        assert oauth_stats(sandbox)["refreshes"] == 0

    def test_refresh_from_570_seconds(self, connected: Connected, sandbox: ServerThread) -> None:
        age_tokens(connected, sandbox, 575)
        connected.client().me()
        assert oauth_stats(sandbox)["refreshes"] == 1

    def test_a_401_refreshes_once_and_retries(self, connected: Connected, sandbox: ServerThread) -> None:
        age_tokens(connected, sandbox, 575)
        client = connected.client(refresh_min_age=10_000)  # our clock does not say "due": only the 401 does
        httpx.post(f"{sandbox.url}/_sandbox/oauth/expire")
        assert client.me()["CurrentDivision"] == 101
        assert oauth_stats(sandbox)["refreshes"] == 1

    def test_twenty_processes_refresh_once(self, connected: Connected, sandbox: ServerThread, tmp_path: Path) -> None:
        age_tokens(connected, sandbox, 600)
        settings = tmp_path / "settings.json"
        settings.write_text(settings_json(connected.settings))
        start_at = time.time() + 4.0
        processes = [run("refresh_race", settings, connected.connection_id, start_at) for _ in range(20)]
        outputs = [p.communicate(timeout=120) for p in processes]
        assert [p.returncode for p in processes] == [0] * 20, [err[-500:] for _, err in outputs]
        assert all(json.loads(out)["ok"] for out, _ in outputs)
        stats = oauth_stats(sandbox)
        assert stats["refreshes"] == 1
        assert stats["token_calls"] == {"authorization_code:200": 1, "refresh_token:200": 1}
        assert stats["rotated_token_uses"] == 0


class TestNeedsConsent:
    def test_a_dead_refresh_token_ends_as_needs_consent_not_a_loop(
        self, connected: Connected, sandbox: ServerThread
    ) -> None:
        httpx.post(f"{sandbox.url}/_sandbox/oauth/revoke", json={})  # rotated by someone else
        age_tokens(connected, sandbox, 600)
        client = connected.client()
        with pytest.raises(NeedsConsent, match="Old refresh token used"):
            client.me()
        with pytest.raises(NeedsConsent):
            client.me()
        with connected.sessions() as session:
            row = session.get(Connection, connected.connection_id)
            assert row is not None
            assert row.needs_consent
            assert "Old refresh token used" in (row.consent_error or "")
        stats = oauth_stats(sandbox)
        assert stats["rotated_token_uses"] == 1  # one attempt, then no more calls


class TestEncryptionKeys:
    def test_tokens_no_key_opens_park_the_connection_instead_of_failing_every_call(self, connected: Connected) -> None:
        settings = connected.settings.model_copy(update={"token_encryption_key": SecretStr(generate_key())})
        client = client_from_settings(settings, connected.sessions, connected.connection_id)
        with pytest.raises(NeedsConsent, match="rotate-key"):
            client.me()
        with connected.sessions() as session:
            row = session.get(Connection, connected.connection_id)
            assert row is not None
            assert row.needs_consent
            assert "TOKEN_ENCRYPTION_KEY" in (row.consent_error or "")

    def test_a_key_list_opens_tokens_of_the_old_key_and_refreshes_under_the_new(
        self, connected: Connected, sandbox: ServerThread
    ) -> None:
        new, old = generate_key(), connected.settings.secret("token_encryption_key")
        settings = connected.settings.model_copy(update={"token_encryption_key": SecretStr(f"{new},{old}")})
        age_tokens(connected, sandbox, 575)
        assert (
            client_from_settings(settings, connected.sessions, connected.connection_id).me()["CurrentDivision"] == 101
        )
        assert oauth_stats(sandbox)["refreshes"] == 1
        with connected.sessions() as session:
            row = session.get(Connection, connected.connection_id)
            assert row is not None
            assert TokenCipher(new).decrypt(row.refresh_token_enc)  # the refreshed pair is under the new key
