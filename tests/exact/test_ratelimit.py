from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest
import redis

from exact import RateLimiter
from sandbox.config import SandboxConfig
from tests.conftest import ServerThread
from tests.exact.test_tokens import run, settings_json
from tests.pipeline.connected import Connected

WINDOW = 2.0
LIMIT = 10


@pytest.fixture
def sandbox_config() -> SandboxConfig:
    # A "minute" of 2 s keeps the test short; the arithmetic is the same as with 60 s.
    return SandboxConfig(minute_limit=LIMIT, minute_window_seconds=WINDOW)


@pytest.fixture
def limited(connected: Connected) -> Connected:
    connected.settings = connected.settings.model_copy(
        update={"rate_limit_per_minute": LIMIT, "rate_limit_window_seconds": WINDOW, "rate_limit_max_wait_seconds": 60}
    )
    return connected


def call_log(sandbox: ServerThread, division: int = 101) -> list[dict[str, object]]:
    log = httpx.get(f"{sandbox.url}/_sandbox/calls", params={"log": "1"}).json()["log"]
    return [entry for entry in log if entry["division"] == division]


class TestSharedBudget:
    def test_two_processes_never_exceed_the_window(
        self, limited: Connected, sandbox: ServerThread, tmp_path: Path
    ) -> None:
        settings = tmp_path / "settings.json"
        settings.write_text(settings_json(limited.settings))
        processes = [run("burst", settings, limited.connection_id, 15) for _ in range(2)]
        outputs = [p.communicate(timeout=120) for p in processes]
        assert [p.returncode for p in processes] == [0, 0], [err[-500:] for _, err in outputs]
        log = [e for e in call_log(sandbox) if e["endpoint"] == "crm/Contacts"]
        assert [e["status"] for e in log] == [200] * 30  # never a 429
        per_window: dict[int, int] = {}
        for entry in log:
            window = int(float(entry["at"]) // WINDOW)  # type: ignore[arg-type]
            per_window[window] = per_window.get(window, 0) + 1
        assert max(per_window.values()) <= LIMIT  # Exact counts whole "minutes"
        assert len(per_window) >= 3

    def test_a_429_closes_the_division_for_every_process(
        self, limited: Connected, sandbox: ServerThread, tmp_path: Path
    ) -> None:
        settings = tmp_path / "settings.json"
        settings.write_text(settings_json(limited.settings))
        httpx.post(
            f"{sandbox.url}/_sandbox/faults",
            json={"kind": "429", "endpoint": "crm/Contacts", "count": 1, "window_seconds": 3},
        )
        other = run("burst", settings, limited.connection_id, 3)
        assert limited.client().get(101, "crm/Contacts")  # meets the 429, waits for the reset, succeeds
        out, err = other.communicate(timeout=120)
        assert other.returncode == 0, err[-500:]
        assert json.loads(out)["ok"]
        log = call_log(sandbox)
        refused = [float(e["at"]) for e in log if e["status"] == 429]  # type: ignore[arg-type]
        assert len(refused) == 1
        later = [float(e["at"]) for e in log if float(e["at"]) > refused[0]]  # type: ignore[arg-type]
        assert len(later) == 4
        # The reset was 3 s after the refusal; nobody called before it.
        assert min(later) >= refused[0] + 3.0 - 0.05


class TestLimiter:
    def test_headers_saying_a_window_is_spent_close_it(self, settings: object, redis_prefix: str) -> None:
        client = redis.Redis.from_url("redis://127.0.0.1:6379/0")
        limiter = RateLimiter(client, prefix=redis_prefix + "unit:", client_id="app", per_minute=60)
        reset_ms = int((__import__("time").time() + 30) * 1000)
        limiter.observe(7, {"X-RateLimit-Minutely-Remaining": "0", "X-RateLimit-Minutely-Reset": str(reset_ms)}, 200)
        assert 29 < limiter.try_acquire(7) <= 30
        assert limiter.try_acquire(8) == 0  # other divisions are untouched

    def test_a_lower_limit_from_exact_is_adopted(self, redis_prefix: str) -> None:
        client = redis.Redis.from_url("redis://127.0.0.1:6379/0")
        limiter = RateLimiter(client, prefix=redis_prefix + "unit2:", client_id="app", per_minute=60)
        limiter.observe(7, {"X-RateLimit-Minutely-Limit": "2", "X-RateLimit-Minutely-Remaining": "1"}, 200)
        assert [limiter.try_acquire(7) == 0 for _ in range(3)] == [True, True, False]
