"""What each console page shows, read from the same sources as the CLI: `ops.status.collect` for the overview."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import redis
from sqlalchemy import select
from sqlalchemy.orm import Session

from commands.models import CommandRecord
from commands.schema import CommandView
from commands.store import view
from delivery.deadletters import DeadLetter, dead_letters
from delivery.sinks.urls import url_secrets
from ops.status import Status, collect
from runtime.settings import Settings
from runtime.usage import CallCounts, call_counts

__all__ = ["Attention", "attention", "calls", "commands", "overview", "scrubbed_dead_letters"]


@dataclass(frozen=True)
class Attention:
    what: str
    todo: str


def overview(settings: Settings, session: Session, client: redis.Redis) -> Status:
    return collect(settings, session, client)


def attention(status: Status, silent_hours: float) -> list[Attention]:
    """Every item `status` counts as needing attention, each with what to do about it."""
    items: list[Attention] = []
    for c in status.connections:
        if c["attention"]:
            items.append(Attention(f"connection {c['id']} ({c['user']})", c["attention"]))
    for s in status.subscriptions:
        where = f"connection {s['connection']}, division {s['division']}, {s['topic']}"
        if s["attention"]:
            items.append(Attention(where, s["attention"]))
        if s["silent"]:
            items.append(
                Attention(
                    f"{where}: silent (no webhook for {silent_hours:g} hours)",
                    "check the subscription in Exact; `exact-pipeline subscriptions reconcile` re-creates it",
                )
            )
        if s["state"] == "failed":
            failed = f"{where}: failed ({s['last_error'] or 'no error kept'})"
            items.append(Attention(failed, "fix the cause, then `exact-pipeline subscriptions reconcile`"))
    dead = status.dead_letters
    if dead.get("count"):
        items.append(
            Attention(
                f"{dead['count']} dead letter(s), oldest {dead['oldest']}",
                "fix the sink, then replay them on the Dead letters page (or `exact-pipeline deadletters replay`)",
            )
        )
    for t in dead.get("stopped_targets", []):
        items.append(
            Attention(
                f"push target {t['sink']} {t['url']} answered 410 Gone (since {t['since']})",
                f"fix the target or PUSH_URL, then `exact-pipeline deadletters resume --sink {t['sink']}`",
            )
        )
    for c in status.commands_to_check:
        todo = (
            "stuck running past the time limit: its worker died; the sweeper (beat) settles it"
            if c["stuck"]
            else "outcome unknown: it may have landed; look in Exact, `GET /commands/{key}`"
        )
        items.append(Attention(f"command {c['key']} ({c['entity']}, division {c['division']})", todo))
    for m in status.schema["missing_fields"]:
        items.append(
            Attention(
                f"connection {m['connection']}, division {m['division']}: {m['resource']} field {m['field']} "
                "missing in production",
                m["attention"],
            )
        )
    return items


def calls(settings: Settings, client: redis.Redis, status: Status) -> list[tuple[dict[str, Any], CallCounts]]:
    """Each budget row of `status` (connection, division) with its calls per minute and per hour."""
    apps = {c["id"]: c["client_id"] or str(settings.exact_client_id) for c in status.connections}
    return [
        (
            b,
            call_counts(
                client, prefix=settings.redis_prefix, client_id=apps.get(b["connection"], ""), division=b["division"]
            ),
        )
        for b in status.budgets
    ]


def scrubbed_dead_letters(settings: Settings, session: Session, limit: int = 500) -> list[DeadLetter]:
    """Dead letters, oldest first, with PUSH_URL's credentials masked in their errors, as `deadletters list` does."""
    letters = dead_letters(session, limit=limit)
    secrets = sorted(url_secrets(settings.push_url), key=len, reverse=True)
    masked = []
    for d in letters:
        error = d.last_error
        for secret in secrets:
            error = error.replace(secret, "***") if error else error
        masked.append(DeadLetter(d.id, d.sink, d.event_id, d.attempts, error, d.updated_at))
    return masked


def commands(session: Session, state: str | None = None, limit: int = 200) -> list[CommandView]:
    """The newest commands (of one state, if given) with their results."""
    query = select(CommandRecord).order_by(CommandRecord.updated_at.desc()).limit(limit)
    if state:
        query = query.where(CommandRecord.status == state)
    return [view(r) for r in session.scalars(query)]
