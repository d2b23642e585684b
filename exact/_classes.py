"""Budget classes: which kind of work a call spends the division's budget for, carried by a context variable."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Literal, get_args

__all__ = ["BUDGET_CLASSES", "CLASS_HEADER", "BudgetClass", "budget_class", "check_shares", "current_budget_class"]

BudgetClass = Literal["command", "webhook", "delta", "backfill"]
# Highest priority first: a class may never spend what a class above it has reserved and not used.
BUDGET_CLASSES: tuple[BudgetClass, ...] = get_args(BudgetClass)

# Sent with every call naming its class: Exact ignores it, the sandbox counts calls per class by it.
CLASS_HEADER = "X-Exact-Pipeline-Class"

# Every call site of the worker and beat names its class; a call made outside any class is an operator's CLI command
# (`schema record`, `subscriptions register`, the demo), and a person at a terminal waits for it.
_current: ContextVar[BudgetClass] = ContextVar("exact_budget_class", default="command")


@contextmanager
def budget_class(name: BudgetClass) -> Iterator[None]:
    """Every Exact call inside the block spends from class `name`'s share."""
    if name not in BUDGET_CLASSES:
        raise ValueError(f"unknown budget class {name!r}; one of {', '.join(BUDGET_CLASSES)}")
    token = _current.set(name)
    try:
        yield
    finally:
        _current.reset(token)


def current_budget_class() -> BudgetClass:
    """The class the calls made now spend from."""
    return _current.get()


def check_shares(shares: Mapping[str, float]) -> dict[BudgetClass, float]:
    """Every class's reserved share (0 for a class not named); ValueError for an unknown class, a share outside
    [0, 1], or shares summing to more than 1 (the reserves could not all be kept)."""
    unknown = sorted(set(shares) - set(BUDGET_CLASSES))
    if unknown:
        raise ValueError(f"unknown budget class(es) {', '.join(unknown)}; one of {', '.join(BUDGET_CLASSES)}")
    checked: dict[BudgetClass, float] = {c: float(shares.get(c, 0.0)) for c in BUDGET_CLASSES}
    if any(not 0.0 <= v <= 1.0 for v in checked.values()):
        raise ValueError(f"budget shares must each be between 0 and 1: {checked}")
    if sum(checked.values()) > 1.0 + 1e-9:
        raise ValueError(f"budget shares sum to {sum(checked.values()):.2f}, more than the whole budget (1)")
    return checked
