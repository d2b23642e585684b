from __future__ import annotations

import time

import httpx
import pytest

from sandbox.config import SandboxConfig
from tests.sandbox.conftest import Api, error_message

MINUTE = {"x-ratelimit-minutely-limit", "x-ratelimit-minutely-remaining", "x-ratelimit-minutely-reset"}
DAY = {"x-ratelimit-limit", "x-ratelimit-remaining", "x-ratelimit-reset"}


def rate_headers(response: httpx.Response) -> set[str]:
    return {k.lower() for k in response.headers if k.lower().startswith("x-ratelimit")}


class TestHeaders:
    def test_every_answer_carries_six_headers_with_ms_resets(self, api: Api) -> None:
        response = api.get("101/crm/Contacts")
        assert rate_headers(response) == MINUTE | DAY
        now_ms = time.time() * 1000
        assert now_ms < int(response.headers["x-ratelimit-minutely-reset"]) <= now_ms + 61_000
        assert int(response.headers["x-ratelimit-reset"]) > now_ms
        assert response.headers["x-ratelimit-minutely-remaining"] == "59"


class TestMinuteLimit:
    @pytest.fixture
    def sandbox_config(self) -> SandboxConfig:
        return SandboxConfig(minute_limit=5, minute_window_seconds=300)

    def test_429_carries_only_the_minutely_headers(self, api: Api, sandbox_http: httpx.Client) -> None:
        statuses = [api.get("101/crm/Contacts").status_code for _ in range(7)]
        assert statuses == [200] * 5 + [429] * 2
        refused = api.get("101/crm/Contacts")
        assert rate_headers(refused) == MINUTE
        assert refused.headers["x-ratelimit-minutely-remaining"] == "0"

    def test_limits_count_per_division(self, api: Api) -> None:
        for _ in range(5):
            assert api.get("101/crm/Contacts").status_code == 200
        assert api.get("101/crm/Contacts").status_code == 429
        assert api.get("202/crm/Contacts").status_code == 200

    def test_the_window_resets(self, api: Api, sandbox_http: httpx.Client) -> None:
        for _ in range(6):
            api.get("101/crm/Contacts")
        sandbox_http.post("/_sandbox/clock/advance", json={"seconds": 300})
        assert api.get("101/crm/Contacts").status_code == 200


class TestDayLimit:
    @pytest.fixture
    def sandbox_config(self) -> SandboxConfig:
        return SandboxConfig(day_limit=3)

    def test_429_carries_only_the_daily_headers(self, api: Api) -> None:
        for _ in range(3):
            assert api.get("101/crm/Contacts").status_code == 200
        refused = api.get("101/crm/Contacts")
        assert refused.status_code == 429
        assert rate_headers(refused) == DAY


class TestErrorBudget:
    def test_ten_4xx_an_hour_block_the_endpoint(self, api: Api) -> None:
        missing = "101/crm/Contacts(guid'00000000-0000-0000-0000-000000000001')"
        assert [api.get(missing).status_code for _ in range(10)] == [404] * 10
        blocked = api.get("101/crm/Contacts")
        assert blocked.status_code == 429
        assert "blocked" in error_message(blocked)
        # Another endpoint, and another division, stay open.
        assert api.get("101/financial/GLAccounts").status_code == 200
        assert api.get("202/crm/Contacts").status_code == 200
