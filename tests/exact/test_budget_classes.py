"""Budget classes on real Redis and the sandbox: each class's reserve is kept from the classes below it, the classes
above borrow what it leaves, every class's spend is counted, and each call names its class to the sandbox."""

from __future__ import annotations

import uuid

import httpx
import pytest
import redis
from pydantic import ValidationError

from exact import BUDGET_CLASSES, BudgetClass, RateLimiter, budget_class, check_shares, current_budget_class
from runtime.settings import Settings
from tests.conftest import ServerThread
from tests.pipeline.connected import Connected

# Of 10 calls: command 2, webhook 3, delta 2, backfill 3 reserved (the defaults' proportions).
SHARES = {"command": 0.2, "webhook": 0.3, "delta": 0.2, "backfill": 0.3}


def limiter(
    settings: Settings,
    *,
    per_minute: int = 10,
    per_day: int = 5000,
    prefix: str | None = None,
    shares: dict[str, float] | None = None,
) -> RateLimiter:
    client = redis.Redis.from_url(settings.redis_url)  # a connection of its own, as another process has
    prefix = prefix or f"{settings.redis_prefix}classes-{uuid.uuid4().hex[:8]}:"
    return RateLimiter(client, prefix=prefix, client_id="app", per_minute=per_minute, per_day=per_day, shares=shares)


def take(rl: RateLimiter, name: BudgetClass, at_most: int = 100, division: int = 101) -> int:
    """Calls class `name` gets before the first refusal (nothing waits)."""
    taken = 0
    while taken < at_most and rl.try_acquire(division, name) == 0:
        taken += 1
    return taken


class TestReserves:
    def test_a_lower_class_cannot_take_the_unused_reserves_above_it(self, settings: Settings) -> None:
        rl = limiter(settings, shares=SHARES)
        assert take(rl, "backfill") == 3  # 10 less the 7 reserved above it
        assert take(rl, "delta") == 2  # its own reserve, not webhook's or command's
        assert take(rl, "webhook") == 3
        assert take(rl, "command") == 2
        assert take(rl, "command") == 0  # the window is full
        assert rl.usage(101).minute_used == 10

    def test_higher_classes_borrow_what_the_lower_ones_leave(self, settings: Settings) -> None:
        rl = limiter(settings, shares=SHARES)
        assert take(rl, "webhook") == 8  # all but command's unused 2
        assert take(rl, "command") == 2
        other = limiter(settings, shares=SHARES)
        assert take(other, "command") == 10  # commands may spend the whole window

    def test_reserves_spent_by_their_classes_leave_the_rest_to_each_in_turn(self, settings: Settings) -> None:
        rl = limiter(settings, shares=SHARES)
        assert take(rl, "command", at_most=2) == 2
        assert take(rl, "webhook", at_most=3) == 3
        assert take(rl, "backfill") == 3  # still only its own: delta's 2 stay unused and held
        assert take(rl, "delta") == 2
        assert take(rl, "command") == 0

    def test_a_refused_call_waits_for_the_window_not_the_day(self, settings: Settings) -> None:
        rl = limiter(settings, shares=SHARES)
        take(rl, "backfill")
        wait = rl.try_acquire(101, "backfill")
        assert 0 < wait <= rl.window_ms / 1000 + 0.01

    def test_without_shares_every_class_spends_in_arrival_order(self, settings: Settings) -> None:
        rl = limiter(settings)
        assert take(rl, "backfill") == 10
        assert take(rl, "command") == 0  # the baseline the classes are there to prevent

    def test_the_day_keeps_the_same_reserves(self, settings: Settings) -> None:
        rl = limiter(settings, per_minute=1000, per_day=10, shares=SHARES)
        assert take(rl, "backfill") == 3
        assert rl.try_acquire(101, "backfill") > 60  # until UTC midnight, not a minute
        assert take(rl, "delta") == 2
        assert take(rl, "command") == 5  # command's own 2 and webhook's unused 3

    def test_reserves_follow_the_limit_exact_gives(self, settings: Settings) -> None:
        rl = limiter(settings, per_minute=100, shares=SHARES)
        rl.observe(101, {"X-RateLimit-Minutely-Limit": "10"}, 200)
        assert take(rl, "backfill") == 3  # of Exact's 10, not the settings' 100
        assert rl.usage(101).classes["backfill"].minute_reserved == 3

    def test_limiters_of_one_app_share_the_reserves(self, settings: Settings) -> None:
        prefix = f"{settings.redis_prefix}classes-{uuid.uuid4().hex[:8]}:"
        worker, cli = limiter(settings, prefix=prefix, shares=SHARES), limiter(settings, prefix=prefix, shares=SHARES)
        assert take(cli, "backfill") == 3
        assert take(worker, "backfill") == 0  # the other process's backfill spent the class's part
        assert take(worker, "command") == 7

    def test_divisions_are_apart(self, settings: Settings) -> None:
        rl = limiter(settings, shares=SHARES)
        assert take(rl, "backfill", division=101) == 3
        assert take(rl, "backfill", division=202) == 3


class TestSpend:
    def test_usage_counts_each_classs_minute_and_day(self, settings: Settings) -> None:
        rl = limiter(settings, shares=SHARES)
        take(rl, "command", at_most=2)
        take(rl, "backfill", at_most=1)
        with budget_class("webhook"):
            rl.acquire(101)  # the current class, when none is named
        with budget_class("delta"):
            rl.note_call(101)
        usage = rl.usage(101)
        spent = {name: (c.minute_used, c.day_used) for name, c in usage.classes.items()}
        assert spent == {"command": (2, 2), "webhook": (1, 1), "delta": (1, 1), "backfill": (1, 1)}
        assert usage.classes["webhook"].minute_reserved == 3
        assert usage.classes["webhook"].day_reserved == 1500
        assert (usage.minute_used, usage.day_used) == (5, 5)


class TestShares:
    def test_shares_that_do_not_fit_are_refused(self) -> None:
        with pytest.raises(ValueError, match="sum"):
            check_shares({"command": 0.5, "backfill": 0.6})
        with pytest.raises(ValueError, match="unknown"):
            check_shares({"bulk": 0.1})
        with pytest.raises(ValueError, match="between"):
            check_shares({"command": -0.1})
        assert check_shares({"command": 0.5}) == {"command": 0.5, "webhook": 0.0, "delta": 0.0, "backfill": 0.0}

    def test_settings_refuse_shares_over_the_whole(self, settings: Settings) -> None:
        with pytest.raises(ValidationError, match="BUDGET_SHARE"):
            Settings(database_url=settings.database_url, budget_share_backfill=0.9)
        assert sum(Settings(database_url=settings.database_url).budget_shares.values()) <= 1

    def test_the_class_is_scoped_to_its_block(self) -> None:
        assert current_budget_class() == "command"  # outside a class: an operator's CLI call
        with budget_class("delta"):
            with budget_class("backfill"):
                assert current_budget_class() == "backfill"
            assert current_budget_class() == "delta"
        assert current_budget_class() == "command"
        assert BUDGET_CLASSES == ("command", "webhook", "delta", "backfill")


def test_each_call_names_its_class_to_the_sandbox(connected: Connected, sandbox: ServerThread) -> None:
    httpx.post(f"{sandbox.url}/_sandbox/calls/reset")
    client = connected.client()
    before = client.limiter.usage(101).classes  # connecting spent for `command`
    with budget_class("backfill"):
        client.get(101, "crm/Contacts")
    with budget_class("delta"):
        client.divisions(101)
    client.divisions(101)  # outside a class: `command`
    counts = httpx.get(f"{sandbox.url}/_sandbox/calls", params={"division": 101}).json()
    assert counts["classes"] == {"backfill": 1, "command": 1, "delta": 1}
    backfill = httpx.get(f"{sandbox.url}/_sandbox/calls", params={"class": "backfill"}).json()
    assert backfill["total"] == 1
    [contacts] = [c for c in counts["calls"] if c["endpoint"] == "crm/Contacts"]
    assert contacts["classes"] == {"backfill": 1}
    after = client.limiter.usage(101).classes
    grown = {name: after[name].minute_used - before[name].minute_used for name in after}
    assert grown == {"command": 1, "webhook": 0, "delta": 1, "backfill": 1}
