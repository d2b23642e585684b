"""`exact-pipeline records` and `exact-pipeline deadletters`: read the SQL mirror, list and replay dead letters,
resume a push target that a 410 Gone stopped.

Usage:
    exact-pipeline records dump --division 101 --topic Accounts      # JSON lines, tombstones included
    exact-pipeline deadletters list [--json]
    exact-pipeline deadletters replay --id 7 [--id 8]
    exact-pipeline deadletters replay --all
    exact-pipeline deadletters resume [--sink http]                  # after a 410 Gone, once the target is fixed
"""

from __future__ import annotations

import json
from dataclasses import replace

import typer
from rich.console import Console
from rich.table import Table
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from delivery.deadletters import dead_letters, replay, waiting_lanes
from delivery.models import MirrorRecord
from delivery.outbox import dispatch_lanes
from delivery.push import DeliveryContext
from delivery.sinks.urls import url_secrets
from runtime.dates import iso_utc
from runtime.db import make_engine, make_session_factory, session_scope
from runtime.redis import sync_client
from runtime.settings import get_settings

__all__ = ["deadletters_app", "records_app"]

records_app = typer.Typer(help="The SQL mirror of Exact's records.", no_args_is_help=True)
deadletters_app = typer.Typer(help="Deliveries that reached the attempt limit.", no_args_is_help=True)
console = Console(width=160)


def _sessions() -> sessionmaker[Session]:
    return make_session_factory(make_engine(get_settings().database_url))


@records_app.command("dump")
def dump(
    division: int = typer.Option(..., "--division", help="Exact division code."),
    topic: str = typer.Option(..., "--topic", help="Webhook topic, e.g. Accounts."),
) -> None:
    """Print the mirror of one division and topic as JSON lines, by key; a deleted record is a tombstone."""
    query = (
        select(MirrorRecord)
        .where(MirrorRecord.division == division, func.lower(MirrorRecord.topic) == topic.lower())
        .order_by(MirrorRecord.key)
    )
    with _sessions()() as session:
        for row in session.scalars(query):
            line = {
                "division": row.division,
                "topic": row.topic,
                "key": row.key,
                "version": row.version,
                "deleted": row.deleted,
                "record": row.record,
            }
            typer.echo(json.dumps(line, ensure_ascii=False, separators=(",", ":")))


@deadletters_app.command("list")
def list_dead(as_json: bool = typer.Option(False, "--json", help="JSON lines instead of a table.")) -> None:
    """Deliveries given up after DELIVERY_MAX_ATTEMPTS attempts, oldest first."""
    with _sessions()() as session:
        letters = [replace(d, last_error=_scrub(d.last_error)) for d in dead_letters(session)]
    if as_json:
        for d in letters:
            line = {
                "id": d.id,
                "sink": d.sink,
                "event_id": d.event_id,
                "attempts": d.attempts,
                "last_error": d.last_error,
                "updated_at": iso_utc(d.updated_at),
            }
            typer.echo(json.dumps(line, ensure_ascii=False, separators=(",", ":")))
        return
    if not letters:
        console.print("no dead letters")
        return
    table = Table("id", "sink", "event id", "attempts", "last error", "since")
    for d in letters:
        table.add_row(str(d.id), d.sink, d.event_id, str(d.attempts), d.last_error or "", iso_utc(d.updated_at))
    console.print(table)


@deadletters_app.command("replay")
def replay_dead(
    ids: list[int] = typer.Option([], "--id", help="A dead letter's id (repeatable)."),
    replay_all: bool = typer.Option(False, "--all", help="Every dead letter."),
) -> None:
    """Put dead letters back to pending with a fresh attempt budget, and dispatch their lanes."""
    if bool(ids) == replay_all:
        raise typer.BadParameter("give --id ID (one or more) or --all")
    settings = get_settings()
    with session_scope(_sessions()) as session:
        replayed = replay(session, None if replay_all else ids)
    missing = sorted(set(ids) - set(replayed.ids))
    if replayed.ids:
        sent = dispatch_lanes(settings, replayed.lanes)
        typer.echo(f"replayed {len(replayed.ids)} dead letter(s) on {len(replayed.lanes)} lane(s); {sent} dispatched")
    elif replay_all:
        typer.echo("no dead letters")
    if missing:
        typer.echo(f"not a dead letter: {', '.join(map(str, missing))}", err=True)
        raise typer.Exit(1)


@deadletters_app.command("resume")
def resume_target(sink: str = typer.Option("http", "--sink", help="The push sink whose target to resume.")) -> None:
    """Send to a push target again after it answered 410 Gone, and dispatch every delivery waiting for it."""
    settings = get_settings()
    sessions = _sessions()
    ctx = DeliveryContext.build(settings, sessions, sync_client(settings.redis_url))
    if sink not in ctx.push_sinks:
        raise typer.BadParameter(f"{sink!r} is not a configured push sink (SINKS={settings.sinks})")
    ctx.breaker(sink).resume()
    with sessions() as session:
        lanes = waiting_lanes(session, sink)
    sent = dispatch_lanes(settings, lanes)
    typer.echo(f"resumed {sink}: {len(lanes)} lane(s) waiting, {sent} dispatched")


def _scrub(error: str | None) -> str | None:
    # Rows written before PUSH_URL was masked in errors may still hold its credentials.
    for secret in sorted(url_secrets(get_settings().push_url), key=len, reverse=True):
        error = error.replace(secret, "***") if error else error
    return error
