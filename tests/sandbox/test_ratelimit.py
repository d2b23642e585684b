from __future__ import annotations

import time

import httpx
import pytest

from sandbox.clock import SandboxClock
from sandbox.config import SandboxConfig
from sandbox.ratelimit import RateLimiter
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


class TestBudgetAndWindows:
    @pytest.fixture
    def sandbox_config(self) -> SandboxConfig:
        return SandboxConfig(minute_limit=2, minute_window_seconds=300, day_limit=10, access_token_lifetime=2 * 86400)

    def test_refused_calls_spend_nothing(self, api: Api, sandbox_http: httpx.Client) -> None:
        assert [api.get("101/crm/Contacts").status_code for _ in range(5)] == [200, 200, 429, 429, 429]
        [day] = sandbox_http.get("/_sandbox/limits").json()["day"]
        assert (day["division"], day["used"], day["remaining"]) == (101, 2, 8)
        sandbox_http.post("/_sandbox/clock/advance", json={"seconds": 300})
        response = api.get("101/crm/Contacts")
        assert response.headers["x-ratelimit-minutely-remaining"] == "1"
        assert response.headers["x-ratelimit-remaining"] == "7"

    def test_resets_are_whole_windows_in_epoch_ms(self, api: Api) -> None:
        response = api.get("101/crm/Contacts")
        assert int(response.headers["x-ratelimit-minutely-reset"]) % 300_000 == 0
        assert int(response.headers["x-ratelimit-reset"]) % 86_400_000 == 0  # UTC midnight

    def test_the_day_window_resets_at_utc_midnight(self, api: Api, sandbox_http: httpx.Client) -> None:
        sandbox_http.post("/_sandbox/limits", json={"minute_limit": 100})
        last = [api.get("101/crm/Contacts") for _ in range(10)][-1]
        assert api.get("101/crm/Contacts").status_code == 429
        midnight = int(last.headers["x-ratelimit-reset"]) / 1000
        now = sandbox_http.post("/_sandbox/clock/advance", json={"seconds": 0}).json()["now"]
        sandbox_http.post("/_sandbox/clock/advance", json={"seconds": midnight - now + 0.5})
        again = api.get("101/crm/Contacts")
        assert again.status_code == 200
        assert again.headers["x-ratelimit-remaining"] == "9"


class TestControl:
    def test_limits_change_at_run_time(self, api: Api, sandbox_http: httpx.Client) -> None:
        changed = sandbox_http.post("/_sandbox/limits", json={"minute_limit": 1, "minute_window_seconds": 600})
        assert changed.json()["limits"]["minute_limit"] == 1
        first = api.get("101/crm/Contacts")
        assert first.headers["x-ratelimit-minutely-limit"] == "1"
        assert api.get("101/crm/Contacts").status_code == 429

    def test_a_bad_change_is_refused(self, sandbox_http: httpx.Client) -> None:
        assert sandbox_http.post("/_sandbox/limits", json={"minute_limit": -1}).status_code == 400
        assert sandbox_http.post("/_sandbox/limits", json={"minute_limt": 5}).status_code == 400

    def test_forced_minutely_429s(self, api: Api, sandbox_http: httpx.Client) -> None:
        sandbox_http.post("/_sandbox/limits/force429", json={"count": 2, "window": "minutely", "division": 101})
        assert api.get("202/crm/Contacts").status_code == 200
        refused = [api.get("101/crm/Contacts") for _ in range(2)]
        assert [r.status_code for r in refused] == [429, 429]
        assert all(rate_headers(r) == MINUTE for r in refused)
        allowed = api.get("101/crm/Contacts")
        assert allowed.status_code == 200
        assert allowed.headers["x-ratelimit-minutely-remaining"] == "59"  # the forced ones spent nothing

    def test_forced_daily_429_carries_only_daily_headers(self, api: Api, sandbox_http: httpx.Client) -> None:
        sandbox_http.post("/_sandbox/limits/force429", json={"window": "daily"})
        refused = api.get("101/crm/Contacts")
        assert refused.status_code == 429
        assert rate_headers(refused) == DAY
        assert refused.headers["x-ratelimit-remaining"] == "0"
        assert sandbox_http.get("/_sandbox/limits").json()["forced_rejected"] == 1


class TestErrorBlockLifts:
    @pytest.fixture
    def sandbox_config(self) -> SandboxConfig:
        return SandboxConfig(error_block_threshold=3, error_block_seconds=120, access_token_lifetime=86400)

    def test_the_block_lifts_after_its_time(self, api: Api, sandbox_http: httpx.Client) -> None:
        missing = "101/crm/Contacts(guid'00000000-0000-0000-0000-000000000001')"
        assert [api.get(missing).status_code for _ in range(3)] == [404] * 3
        assert api.get("101/crm/Contacts").status_code == 429
        [blocked] = sandbox_http.get("/_sandbox/limits").json()["blocked"]
        assert (blocked["division"], blocked["endpoint"]) == (101, "crm/Contacts")
        sandbox_http.post("/_sandbox/clock/advance", json={"seconds": 121})
        assert api.get("101/crm/Contacts").status_code == 200

    def test_errors_older_than_an_hour_are_forgotten(self, api: Api, sandbox_http: httpx.Client) -> None:
        missing = "101/crm/Contacts(guid'00000000-0000-0000-0000-000000000001')"
        for _ in range(2):
            api.get(missing)
        sandbox_http.post("/_sandbox/clock/advance", json={"seconds": 3601})
        assert api.get(missing).status_code == 404
        assert api.get("101/crm/Contacts").status_code == 200


class TestLimiterUnit:
    def test_only_400_401_403_404_count(self) -> None:
        limiter = RateLimiter(SandboxConfig(error_block_threshold=2), SandboxClock())
        for status in (500, 429, 409, 422, 200, 204):
            limiter.record_status("app", 101, "crm/Accounts", status)
        assert not limiter.blocked("app", 101, "crm/Accounts")
        for status in (401, 403):
            limiter.record_status("app", 101, "crm/Accounts", status)
        assert limiter.blocked("app", 101, "crm/Accounts")
        assert not limiter.blocked("other-app", 101, "crm/Accounts")

    def test_apps_have_separate_budgets(self) -> None:
        limiter = RateLimiter(SandboxConfig(minute_limit=1), SandboxClock())
        assert limiter.acquire("a", 101).allowed
        assert not limiter.acquire("a", 101).allowed
        assert limiter.acquire("b", 101).allowed
