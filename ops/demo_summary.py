"""The demo's summary: the figures it reads from the running stack, its live table, and whether it is level.

Level means the sandbox has sent every webhook, no delivery is pending, and both the SQL mirror and the HTTP sink's
receiver hold exactly the sandbox's records.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

import httpx
from rich.table import Table
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from delivery.models import LIVE_STATES, Delivery, DeliveryState, MirrorRecord
from exact import CATALOGUE, Entity, RateLimiter
from ops.levels import control_path, sandbox_view, view
from ops.push_target import PushTarget
from runtime.settings import Settings

__all__ = ["DIVISIONS", "TOPICS", "DemoStack", "DemoSummary", "await_level", "live_view", "measure"]

DIVISIONS = (101, 202)
TOPICS = ("Accounts", "Contacts", "SalesInvoices")


@dataclass
class DemoSummary:
    changes: int = 0
    webhooks_received: int = 0
    exact_calls: int = 0
    calls_per_change: float = 0.0
    rate_limited: int = 0
    mirror_records: int = 0
    pushes_received: int = 0
    deliveries_delivered: int = 0
    dead_letters: int = 0
    signatures_rejected: int = 0
    out_of_order: int = 0
    commands_succeeded: int = 0  # writes to Exact through POST /commands, verified by a read-back
    commands_refused: int = 0  # the one with a VAT code division 202 lacks (gotcha 2), refused before sending
    seconds: float = 0.0
    level: bool = False
    differences: list[str] = field(default_factory=list)
    workdir: str = ""

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class DemoStack:
    """What the running demo talks to."""

    settings: Settings
    sessions: sessionmaker[Session]
    sandbox_url: str
    receiver_url: str
    push: PushTarget
    http: httpx.Client
    limiter: RateLimiter  # read for the budget figures, never spent from

    def control(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        response = self.http.request(method, f"{self.sandbox_url}/_sandbox/{path}", **kwargs)
        response.raise_for_status()
        return response


def await_level(stack: DemoStack, timeout: float, summary: DemoSummary, show: Callable[[str], None]) -> None:
    """Wait until the pipeline is level with the sandbox, or `timeout` passes; `summary` says which."""
    deadline = time.monotonic() + timeout
    while True:
        idle = stack.control("GET", "webhooks/idle").json()["idle"]
        summary.differences = _differences(stack) if idle else ["the sandbox is still sending webhooks"]
        summary.level = not summary.differences
        show("delivered" if summary.level else "catching up")
        if summary.level or time.monotonic() > deadline:
            return
        time.sleep(1.0)


def measure(stack: DemoStack, summary: DemoSummary) -> None:
    """Read the figures into `summary`: the sandbox's calls, the receiver's metrics, the push target, the database."""
    summary.exact_calls = int(stack.control("GET", "calls").json()["total"])
    summary.rate_limited = int(stack.control("GET", "calls", params={"status": "429"}).json()["total"])
    summary.calls_per_change = round(summary.exact_calls / summary.changes, 4) if summary.changes else 0.0
    summary.webhooks_received = _receiver_events(stack)
    summary.pushes_received = stack.push.received
    summary.signatures_rejected = stack.push.rejected
    summary.out_of_order = stack.push.out_of_order
    with stack.sessions() as session:
        summary.mirror_records = int(session.scalar(select(func.count()).select_from(MirrorRecord)) or 0)
        by_state = dict(session.execute(select(Delivery.state, func.count()).group_by(Delivery.state)).all())
    summary.deliveries_delivered = int(by_state.get(DeliveryState.DELIVERED, 0))
    summary.dead_letters = int(by_state.get(DeliveryState.DEAD, 0))


def _receiver_events(stack: DemoStack) -> int:
    text = stack.http.get(f"{stack.receiver_url}/metrics").text
    for line in text.splitlines():
        if line.startswith("exact_webhook_events_enqueued_total "):
            return int(float(line.split()[1]))
    return 0


def _sandbox(stack: DemoStack, division: int, entity: Entity) -> dict[str, dict[str, Any]]:
    rows = stack.control("GET", f"records/{division}/{control_path(entity)}").json()["records"]
    lines = stack.control("GET", f"records/{division}/{entity.lines.path}").json()["records"] if entity.lines else []
    return sandbox_view(entity, rows, lines)


def _differences(stack: DemoStack) -> list[str]:
    pushed = stack.push.snapshot()
    with stack.sessions() as session:
        pending = int(
            session.scalar(select(func.count()).select_from(Delivery).where(Delivery.state.in_(LIVE_STATES))) or 0
        )
    found = [f"{pending} deliveries pending"] if pending else []
    for division in DIVISIONS:
        for topic in TOPICS:
            entity = CATALOGUE.require(topic)
            want = _sandbox(stack, division, entity)
            with stack.sessions() as session:
                query = select(MirrorRecord).where(
                    MirrorRecord.division == division,
                    MirrorRecord.topic == entity.topic,
                    MirrorRecord.deleted.is_(False),
                )
                mirror = {r.key: view(entity, r.record or {}) for r in session.scalars(query)}
            push = {
                k: view(entity, v)
                for (d, t, k), v in pushed.items()
                if d == division and t == entity.topic and v is not None
            }
            for name, have in (("mirror", mirror), ("push", push)):
                if have != want:
                    missing = len(set(want) - set(have))
                    extra = len(set(have) - set(want))
                    stale = sum(1 for k in set(want) & set(have) if want[k] != have[k])
                    found.append(f"{name} {division}/{topic}: {missing} missing, {extra} extra, {stale} stale")
    return found


def live_view(stack: DemoStack, summary: DemoSummary, phase: str) -> Table:
    table = Table(title=f"exact-pipeline demo: {phase} ({summary.seconds:.0f}s)", show_header=False, min_width=70)
    table.add_column(style="bold")
    table.add_column(justify="right")
    table.add_row("changes made in the sandbox", f"{summary.changes:,}")
    table.add_row("webhooks received (receiver)", f"{summary.webhooks_received:,}")
    table.add_row("records in the SQL mirror", f"{summary.mirror_records:,}")
    table.add_row("pushes delivered to the HTTP sink", f"{summary.deliveries_delivered:,}")
    table.add_row("dead letters", f"{summary.dead_letters:,}")
    table.add_row("Exact calls (calls per change)", f"{summary.exact_calls:,} ({summary.calls_per_change:.4f})")
    table.add_row("429 answers", f"{summary.rate_limited:,}")
    table.add_row(
        "writes verified / refused before sending", f"{summary.commands_succeeded} / {summary.commands_refused}"
    )
    for division in DIVISIONS:
        usage = stack.limiter.usage(division)
        closed = f", closed {usage.closed_for_seconds:.0f}s" if usage.closed_for_seconds else ""
        table.add_row(
            f"budget of division {division}",
            f"{usage.minute_used}/{usage.minute_limit} this minute, {usage.day_used}/{usage.day_limit} today{closed}",
        )
    return table
