"""The sandbox's call counts split by the budget class each call names in `X-Exact-Pipeline-Class`."""

from __future__ import annotations

from sandbox.counters import CallCounter


def test_calls_are_counted_by_the_class_they_name() -> None:
    counter = CallCounter()
    counter.record("sync/CRM/Accounts", 101, 200, "GET", "backfill")
    counter.record("sync/CRM/Accounts", 101, 200, "GET", "backfill")
    counter.record("crm/Accounts", 101, 201, "POST", "command")
    counter.record("crm/Accounts", 202, 200, "GET")
    assert counter.by_class() == {"": 1, "backfill": 2, "command": 1}
    assert counter.by_class(division=101) == {"backfill": 2, "command": 1}
    assert counter.total(budget_class="backfill") == 2
    assert counter.total(endpoint="crm/Accounts", budget_class="") == 1
    [sync] = [c for c in counter.snapshot() if c["endpoint"] == "sync/CRM/Accounts"]
    assert (sync["count"], sync["classes"]) == (2, {"backfill": 2})
    assert counter.log[-1][-1] == ""
