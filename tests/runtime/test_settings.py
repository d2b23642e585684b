from __future__ import annotations

import pytest

from runtime.settings import MissingSetting, Settings


class TestSettings:
    def test_sqlite_is_the_embedded_default(self, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.delenv("DATABASE_URL", raising=False)
        settings = Settings(_env_file=None)  # type: ignore[call-arg]
        assert settings.database_url == "sqlite:///./exact-pipeline.db"
        assert settings.is_sqlite

    def test_contract_names_come_from_the_environment(self, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setenv("DATABASE_URL", "postgresql+psycopg://u@h/db")
        monkeypatch.setenv("EXACT_WEBHOOK_SECRET", "hook-secret")
        monkeypatch.setenv("PUBLIC_URL", "https://sync.example.nl/")
        monkeypatch.setenv("SINKS", "sql, http")
        settings = Settings(_env_file=None)  # type: ignore[call-arg]
        assert settings.database_url == "postgresql+psycopg://u@h/db"
        assert settings.secret("exact_webhook_secret") == "hook-secret"
        assert settings.callback_url == "https://sync.example.nl/webhooks/exact"
        assert settings.sink_names == ["sql", "http"]

    def test_require_names_every_missing_variable(self) -> None:
        settings = Settings(_env_file=None, exact_client_id="abc")  # type: ignore[call-arg]
        with pytest.raises(MissingSetting) as info:
            settings.require("exact_client_id", "exact_client_secret", "token_encryption_key")
        assert info.value.variables == ("EXACT_CLIENT_SECRET", "TOKEN_ENCRYPTION_KEY")
        assert "EXACT_CLIENT_SECRET" in str(info.value)

    def test_secrets_do_not_show_in_repr(self) -> None:
        settings = Settings(_env_file=None, exact_client_secret="s3cret-value")  # type: ignore[call-arg]
        assert "s3cret-value" not in repr(settings)

    def test_secret_values_hold_each_key_of_a_list_and_url_passwords(self) -> None:
        settings = Settings(  # type: ignore[call-arg]
            _env_file=None,
            token_encryption_key="key-one-aaaa,key-two-bbbb",
            database_url="postgresql+psycopg://app:db%2Fpass@h/db",
            redis_url="redis://:redis-pass@h:6379/0",
            push_url="https://hook:push-pass@example.nl/in",
        )
        values = settings.secret_values()
        assert {"key-one-aaaa", "key-two-bbbb", "key-one-aaaa,key-two-bbbb"} <= set(values)
        assert {"db%2Fpass", "db/pass", "redis-pass", "push-pass"} <= set(values)
