"""The console served for real on a loopback port, and an httpx client logged in to it."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager

import httpx
from pydantic import SecretStr

from console.app import create_app
from runtime.settings import Settings
from tests.conftest import ServerThread

TOKEN = "console-token-for-tests-0123456789"


def console_settings(settings: Settings) -> Settings:
    return settings.model_copy(update={"console_token": SecretStr(TOKEN)})


@contextmanager
def serve_console(settings: Settings) -> Iterator[ServerThread]:
    with ServerThread(create_app(settings)) as server:
        yield server


@contextmanager
def logged_in(server: ServerThread) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, timeout=30) as client:
        response = client.post("/console/login", data={"token": TOKEN})
        assert response.status_code == 303, response.text
        yield client


def csrf_of(page: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', page)
    assert found, "no CSRF field on the page"
    return found.group(1)
