"""The CLI's settings for tests of `schema`: the test run's, through the environment `get_settings` reads."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from pydantic import SecretStr

from runtime.settings import Settings, get_settings


def _export(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> Iterator[Settings]:
    for name, value in settings.model_dump().items():
        if value is not None:
            monkeypatch.setenv(name.upper(), value.get_secret_value() if isinstance(value, SecretStr) else str(value))
    get_settings.cache_clear()
    yield settings
    get_settings.cache_clear()


@pytest.fixture
def cli_env(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> Iterator[Settings]:
    """The run's settings (its Redis prefix) for a command that records a sandbox: no key outside the prefix."""
    yield from _export(settings, monkeypatch)


@pytest.fixture
def cli_settings(exact_settings: Settings, monkeypatch: pytest.MonkeyPatch) -> Iterator[Settings]:
    """The run's settings pointing at the `sandbox` fixture, for `schema record` through a stored connection."""
    yield from _export(exact_settings, monkeypatch)
