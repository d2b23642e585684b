"""`exact-pipeline status`: what an operator needs at a glance, read from the database and Redis (no Exact calls).

Connections (token expiry, needs consent), divisions, subscriptions (last webhook, silent ones, sync-only lanes, a
topic the catalogue does not support), webhooks received for unknown topics, queue depth, the call budget per
division, dead letters, the delta-sync cursors with their lag, commands by state, and the schema guard: each field
the code reads that the last production snapshot of a connection no longer returns.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import redis
from rich.console import Console
from rich.markup import escape
from rich.table import Table
from sqlalchemy import and_, func, or_, select
from sqlalchemy.orm import Session

from commands.models import COMMAND_STATES, CommandRecord, CommandState
from connections.factory import cipher_from_settings, limiter_from_settings
from connections.keys import UNDECRYPTABLE, readable
from connections.models import Connection, Division, DivisionStatus
from delivery.breaker import stopped_targets
from delivery.models import LIVE_STATES, Delivery, DeliveryState
from exact import CATALOGUE
from receiver.unknown_topics import unknown_topic_counts
from runtime.contracts import DELIVERIES_QUEUE, EVENTS_QUEUE
from runtime.crypto import InvalidKey, TokenCipher
from runtime.dates import iso_utc
from runtime.db import stored_utc
from runtime.settings import Settings
from schema.guard import status_lines, status_section
from subscriptions.models import Subscription, SubscriptionState
from subscriptions.silence import is_silent, last_webhook, last_webhooks
from sync.cursors import LaneCursor

__all__ = ["Status", "collect", "render"]


@dataclass
class Status:
    connections: list[dict[str, Any]] = field(default_factory=list)
    divisions: list[dict[str, Any]] = field(default_factory=list)
    subscriptions: list[dict[str, Any]] = field(default_factory=list)
    # Signed webhooks the receiver answered but did not hand on: topic → count, since the Redis hash began.
    unknown_topics: dict[str, int] = field(default_factory=dict)
    queues: dict[str, int] = field(default_factory=dict)
    budgets: list[dict[str, Any]] = field(default_factory=list)
    dead_letters: dict[str, Any] = field(default_factory=dict)
    cursors: list[dict[str, Any]] = field(default_factory=list)
    commands: dict[str, int] = field(default_factory=dict)
    # Unknown commands, and those running past the task's time limit (stuck: the sweeper settles them), newest first.
    commands_to_check: list[dict[str, Any]] = field(default_factory=list)
    # The schema guard: connections with a kept production snapshot, and the read fields their newest one lacks.
    schema: dict[str, Any] = field(default_factory=lambda: {"recorded": [], "missing_fields": []})

    @property
    def needs_attention(self) -> bool:
        """A connection needs consent, a subscription is silent or failed or of a topic the catalogue does not
        support, a dead letter waits, a command's outcome is unknown (someone must look in Exact), or production no
        longer returns a field the code reads."""
        return (
            any(c["needs_consent"] or c["attention"] for c in self.connections)
            or any(s["silent"] or s["attention"] or s["state"] == SubscriptionState.FAILED for s in self.subscriptions)
            or bool(self.dead_letters.get("count"))
            or bool(self.dead_letters.get("stopped_targets"))
            or bool(self.commands.get(CommandState.UNKNOWN))
            or any(c["stuck"] for c in self.commands_to_check)
            or bool(self.schema["missing_fields"])
        )

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "needs_attention": self.needs_attention}


def collect(settings: Settings, session: Session, client: redis.Redis, now: datetime | None = None) -> Status:
    now = now or datetime.now(UTC)
    connections = list(session.scalars(select(Connection).order_by(Connection.id)))
    divisions = _divisions(session)
    return Status(
        connections=_connections(settings, connections),
        divisions=divisions,
        subscriptions=_subscriptions(settings, session, client, now),
        unknown_topics=unknown_topic_counts(client, settings.redis_prefix),
        queues=_queues(settings, client),
        budgets=_budgets(settings, client, connections, divisions),
        dead_letters=_dead_letters(settings, session, client),
        cursors=_cursors(session, now),
        commands=_commands(session),
        commands_to_check=_commands_to_check(settings, session, now),
        schema=status_section(session, CATALOGUE),
    )


def _connections(settings: Settings, connections: list[Connection]) -> list[dict[str, Any]]:
    cipher = _cipher(settings)
    shown = []
    for c in connections:
        tokens_readable = None if cipher is None else readable(cipher, c)
        shown.append(
            {
                "id": c.id,
                "user": c.user_name or c.user_id,
                "client_id": c.client_id,
                "base_url": c.base_url,
                "access_expires_at": _iso(c.access_expires_at),
                "refreshed_at": _iso(c.token_issued_at),
                "needs_consent": c.needs_consent,
                "consent_error": c.consent_error,
                "tokens_readable": tokens_readable,
                "attention": _attention(c, tokens_readable),
            }
        )
    return shown


def _divisions(session: Session) -> list[dict[str, Any]]:
    return [
        {
            "connection": d.connection_id,
            "code": d.code,
            "description": d.description,
            "status": DivisionStatus.label(d.status),
            "granted": d.granted,
        }
        for d in session.scalars(select(Division).order_by(Division.connection_id, Division.code))
    ]


def _subscriptions(settings: Settings, session: Session, client: redis.Redis, now: datetime) -> list[dict[str, Any]]:
    seen = last_webhooks(client, settings.redis_prefix)
    query = select(Subscription).order_by(Subscription.connection_id, Subscription.division, Subscription.topic)
    return [
        {
            "connection": s.connection_id,
            "division": s.division,
            "topic": s.topic,
            "state": s.state,
            "exact_id": s.exact_id,
            "last_webhook_at": _iso(last_webhook(s, seen)),
            "silent": is_silent(s, settings.silent_subscription_hours, now, seen),
            "sync_only": s.state == SubscriptionState.SYNC_ONLY,
            "supported": CATALOGUE.get(s.topic) is not None,
            "attention": _unsupported(s) or _suspended(s),
            "last_error": s.last_error,
        }
        for s in session.scalars(query)
    ]


def _unsupported(s: Subscription) -> str | None:
    """What to do about a tracked pair whose topic the catalogue does not support: its webhooks are never fetched."""
    if s.state == SubscriptionState.REMOVED or CATALOGUE.get(s.topic) is not None:
        return None
    remove = f"--connection {s.connection_id} --division {s.division} --topic {s.topic}"
    return (
        f"topic {s.topic} is not supported (`exact-pipeline topics`): its changes are never read; "
        f"remove it: `exact-pipeline subscriptions remove {remove}`"
    )


def _suspended(s: Subscription) -> str | None:
    """What a suspended pair means: the followed connection lost the division, so nothing of it is read."""
    if s.state != SubscriptionState.SUSPENDED:
        return None
    return (
        f"division {s.division} is no longer granted to connection {s.connection_id}: its changes are not read; "
        "grant it again in Exact (the daily reconcile resumes it) or remove it: "
        f"`exact-pipeline subscriptions remove --connection {s.connection_id} --division {s.division}`"
    )


def _queues(settings: Settings, client: redis.Redis) -> dict[str, int]:
    return {
        EVENTS_QUEUE: int(client.llen(settings.redis_prefix + EVENTS_QUEUE)),
        DELIVERIES_QUEUE: int(client.llen(settings.redis_prefix + DELIVERIES_QUEUE)),
        "unacked": int(client.hlen(settings.redis_prefix + "unacked")),
    }


def _budgets(
    settings: Settings, client: redis.Redis, connections: list[Connection], divisions: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    budgets = []
    for c in connections:
        limiter = limiter_from_settings(settings, client, client_id=c.client_id)
        codes = sorted({d["code"] for d in divisions if d["connection"] == c.id})
        for code in codes:
            usage = limiter.usage(code)
            budgets.append({"connection": c.id, **asdict(usage)})
    return budgets


def _dead_letters(settings: Settings, session: Session, client: redis.Redis) -> dict[str, Any]:
    dead = session.execute(
        select(func.count(), func.min(Delivery.updated_at)).where(Delivery.state == DeliveryState.DEAD)
    ).one()
    pending = session.scalar(select(func.count()).where(Delivery.state.in_(LIVE_STATES)))
    return {
        "count": int(dead[0] or 0),
        "oldest": _iso(dead[1]),
        "pending_deliveries": int(pending or 0),
        "stopped_targets": stopped_targets(client, settings.redis_prefix),
    }


def _cursors(session: Session, now: datetime) -> list[dict[str, Any]]:
    query = select(LaneCursor).order_by(LaneCursor.connection_id, LaneCursor.division, LaneCursor.topic)
    return [
        {
            "connection": cursor.connection_id,
            "division": cursor.division,
            "topic": cursor.topic,
            "timestamp": cursor.timestamp,
            "modified_ms": cursor.modified_ms,
            "deleted_timestamp": cursor.deleted_timestamp,
            "last_advanced_at": _iso(cursor.updated_at),
            "lag_seconds": round((now - stored_utc(cursor.updated_at)).total_seconds(), 1),
        }
        for cursor in session.scalars(query)
    ]


def _commands(session: Session) -> dict[str, int]:
    by_state = select(CommandRecord.status, func.count()).group_by(CommandRecord.status)
    counted = {str(state): int(count) for state, count in session.execute(by_state).all()}
    return {state: int(counted.get(state, 0)) for state in COMMAND_STATES}


def _commands_to_check(settings: Settings, session: Session, now: datetime, limit: int = 20) -> list[dict[str, Any]]:
    from commands.tasks import HARD_LIMIT_GRACE_SECONDS

    run_limit = timedelta(seconds=settings.commands_time_limit_seconds + HARD_LIMIT_GRACE_SECONDS)
    query = (
        select(CommandRecord)
        .where(
            or_(
                CommandRecord.status == CommandState.UNKNOWN,
                and_(CommandRecord.status == CommandState.RUNNING, CommandRecord.updated_at < now - run_limit),
            )
        )
        .order_by(CommandRecord.updated_at.desc())
        .limit(limit)
    )
    return [
        {
            "key": r.key,
            "status": r.status,
            "stuck": r.status == CommandState.RUNNING,
            "division": r.division,
            "entity": r.entity,
            "exact_id": (r.result or {}).get("exact_id"),
            "since": _iso(r.updated_at),
        }
        for r in session.scalars(query)
    ]


def _cipher(settings: Settings) -> TokenCipher | None:
    """None when TOKEN_ENCRYPTION_KEY is unset or malformed: whether tokens are readable is then unknown."""
    try:
        return cipher_from_settings(settings) if settings.token_encryption_key else None
    except InvalidKey:
        return None


def _attention(c: Connection, tokens_readable: bool | None) -> str | None:
    """What an operator must do for this connection, if anything."""
    if tokens_readable is False or (c.needs_consent and c.consent_error == UNDECRYPTABLE):
        return UNDECRYPTABLE
    if c.needs_consent:
        return f"{c.consent_error or 'needs consent'}: run `exact-pipeline connect`"
    return None


def render(status: Status, console: Console) -> None:
    _render_connections(status, console)
    _render_divisions(status, console)
    _render_subscriptions(status, console)
    _render_cursors(status, console)
    _render_deliveries(status, console)
    _render_commands(status, console)
    _render_schema(status, console)


def _render_connections(status: Status, console: Console) -> None:
    table = Table("id", "user", "access token expires", "last refresh", "state", title="Connections")
    for c in status.connections:
        state = (
            f"[red]needs consent[/red]: {c['consent_error'] or 'run exact-pipeline connect'}"
            if c["needs_consent"]
            else "ok"
        )
        if c["attention"] == UNDECRYPTABLE:
            state = "[red]undecryptable[/red]"
        table.add_row(str(c["id"]), c["user"], c["access_expires_at"] or "", c["refreshed_at"] or "", state)
    console.print(table if status.connections else "No connections: run `exact-pipeline connect`.")
    if unreadable := [str(c["id"]) for c in status.connections if c["attention"] == UNDECRYPTABLE]:
        console.print(f"[red]Undecryptable[/red] connection(s) {', '.join(unreadable)}: {UNDECRYPTABLE}")


def _render_divisions(status: Status, console: Console) -> None:
    table = Table(
        "connection", "division", "description", "status", "granted", "budget (minute, day)", title="Divisions"
    )
    budgets = {(b["connection"], b["division"]): b for b in status.budgets}
    for d in status.divisions:
        b = budgets.get((d["connection"], d["code"]))
        budget = "" if b is None else _budget(b)
        table.add_row(
            str(d["connection"]),
            str(d["code"]),
            d["description"] or "",
            d["status"],
            "yes" if d["granted"] else "[red]no[/red]",
            budget,
        )
    console.print(table)


def _render_subscriptions(status: Status, console: Console) -> None:
    table = Table("connection", "division", "topic", "state", "last webhook", "last error", title="Subscriptions")
    for s in status.subscriptions:
        state = s["state"] + (" [yellow](silent)[/yellow]" if s["silent"] else "")
        if s["sync_only"]:
            state = "sync only (delta sync; no webhooks)"
        if s["attention"]:
            state += " [red](unsupported topic)[/red]"
        table.add_row(
            str(s["connection"]),
            str(s["division"]),
            s["topic"],
            state,
            s["last_webhook_at"] or "never",
            s["last_error"] or "",
        )
    console.print(table)
    for s in status.subscriptions:
        if s["attention"]:
            console.print(
                f"[red]Needs attention[/red]: connection {s['connection']}, division {s['division']}: "
                + escape(s["attention"])
            )
    if status.unknown_topics:
        counts = ", ".join(f"{escape(topic)} {count}" for topic, count in status.unknown_topics.items())
        console.print(
            f"[yellow]Webhooks for unknown topics[/yellow] (answered, not read): {counts}. A subscription in Exact "
            "we do not support: `exact-pipeline subscriptions reconcile` deletes the ones we do not track."
        )


def _render_cursors(status: Status, console: Console) -> None:
    table = Table("connection", "division", "topic", "sync timestamp", "last advanced", "lag", title="Delta sync")
    for c in status.cursors:
        table.add_row(
            str(c["connection"]),
            str(c["division"]),
            c["topic"],
            str(c["timestamp"] or c["modified_ms"]),
            c["last_advanced_at"] or "",
            f"{c['lag_seconds']:.0f}s",
        )
    console.print(table)


def _render_deliveries(status: Status, console: Console) -> None:
    queues = ", ".join(f"{name} {depth}" for name, depth in status.queues.items())
    dead = status.dead_letters
    console.print(f"Queues: {queues}")
    oldest = f" (oldest {dead['oldest']}; `exact-pipeline deadletters list`)" if dead["count"] else ""
    console.print(f"Deliveries: {dead['pending_deliveries']} pending, {dead['count']} dead letters{oldest}")
    for t in dead.get("stopped_targets", []):
        console.print(
            f"[red]Push target stopped[/red]: {t['sink']} {t['url']} answered 410 Gone (since {t['since']}); "
            f"its deliveries wait. Fix the target or PUSH_URL, then `exact-pipeline deadletters resume "
            f"--sink {t['sink']}`"
        )


def _render_commands(status: Status, console: Console) -> None:
    commands = ", ".join(f"{count} {state}" for state, count in status.commands.items())
    unknown = (
        " ([red]unknown[/red]: check Exact, `GET /commands/{key}`)" if status.commands.get(CommandState.UNKNOWN) else ""
    )
    console.print(f"Commands: {commands}{unknown}")
    for c in status.commands_to_check:
        found = f", Exact ID {c['exact_id']}" if c["exact_id"] else ""
        what = "[red]unknown[/red]: may have landed, look in Exact"
        if c["stuck"]:
            what = "[red]stuck running[/red] past the time limit: its worker died, the sweeper (beat) settles it"
        console.print(f"  {c['key']} ({c['entity']}, division {c['division']}{found}, since {c['since']}): {what}")


def _render_schema(status: Status, console: Console) -> None:
    for line in status_lines(status.schema):
        console.print(line)


def _budget(b: dict[str, Any]) -> str:
    closed = f", closed {b['closed_for_seconds']:.0f}s" if b["closed_for_seconds"] else ""
    total = f"{b['minute_used']}/{b['minute_limit']} this minute, {b['day_used']}/{b['day_limit']} today{closed}"
    # Each class's spend, minute and day, against the share reserved for it.
    spent = [
        f"{name} {c['minute_used']}/{c['minute_reserved']}, {c['day_used']}/{c['day_reserved']}"
        for name, c in b.get("classes", {}).items()
    ]
    return "\n".join([total, *spent])


def _iso(moment: datetime | None) -> str | None:
    # Seconds: the status JSON has always shown them, and scripts read it.
    return None if moment is None else iso_utc(moment, timespec="seconds")
