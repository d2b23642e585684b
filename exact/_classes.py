"""Budget classes: which kind of work a call spends the division's budget for, carried by a context variable."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Literal, get_args

__all__ = ["BUDGET_CLASSES", "BudgetClass", "budget_class", "current_budget_class"]

BudgetClass = Literal["command", "webhook", "delta", "backfill"]
# Highest priority first: a class may never spend what a class above it has reserved and not used.
BUDGET_CLASSES: tuple[BudgetClass, ...] = get_args(BudgetClass)

# Calls made outside any class (CLI maintenance, reconciles) are background work.
_current: ContextVar[BudgetClass] = ContextVar("exact_budget_class", default="delta")


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
