"""`exact-pipeline records`, `deadletters` and `push`: read the SQL mirror, list and replay dead letters, resume a
push target that a 410 Gone stopped, send the mirror to a push sink again.

Usage:
    exact-pipeline records dump --division 101 --topic Accounts      # JSON lines, tombstones included
    exact-pipeline deadletters list [--json]
    exact-pipeline deadletters replay --id 7 [--id 8]
    exact-pipeline deadletters replay --all
    exact-pipeline deadletters resume [--sink http]                  # after a 410 Gone, once the target is fixed
    exact-pipeline push replay --sink http [--division 101] [--topic Accounts] [--since 2026-12-01T00:00:00Z]
        [--new-ids] [--dry-run]                                      # refill a receiver from the mirror
"""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime

import typer
from rich.console import Console
from rich.table import Table
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from delivery.deadletters import dead_letters, replay, waiting_lanes
from delivery.models import MirrorRecord
from delivery.outbox import dispatch_lanes, sinks_for
from delivery.push import DeliveryContext
from delivery.replay import Match, new_replay_id, replay_mirror
from delivery.sinks import PushSink
from delivery.sinks.urls import url_secrets
from runtime.dates import iso_utc
from runtime.db import make_engine, make_session_factory, session_scope
from runtime.redis import sync_client
from runtime.settings import get_settings

__all__ = ["deadletters_app", "push_app", "records_app"]

records_app = typer.Typer(help="The SQL mirror of Exact's records.", no_args_is_help=True)
deadletters_app = typer.Typer(help="Deliveries that reached the attempt limit.", no_args_is_help=True)
push_app = typer.Typer(help="Push sinks: send the mirror again.", no_args_is_help=True)
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


@push_app.command("replay")
def replay_from_mirror(
    sink: str = typer.Option(..., "--sink", help="The push sink to send to, by name (SINKS or SINKS_FILE), e.g. http."),
    division: int | None = typer.Option(None, "--division", help="Only this Exact division."),
    topic: str | None = typer.Option(None, "--topic", help="Only this webhook topic, e.g. Accounts."),
    since: str | None = typer.Option(
        None, "--since", help="Only records whose latest version reached the mirror at or after this ISO 8601 time."
    ),
    new_ids: bool = typer.Option(
        False, "--new-ids", help="New webhook-ids (<original>:replay:<id>), so receivers that dedupe take them again."
    ),
    dry_run: bool = typer.Option(False, "--dry-run", help="Count what would be replayed; change nothing."),
) -> None:
    """Send the mirrored latest version of each matching record to a push sink again (a deleted one as a delete),
    per key in version order, with no Exact call. Webhook-ids are the originals unless --new-ids."""
    settings = get_settings()
    sinks = {s.name: s for s in sinks_for(settings) if isinstance(s, PushSink)}
    if sink not in sinks:
        configured = ", ".join(sinks) or "none"
        raise typer.BadParameter(
            f"{sink!r} is not a configured push sink (configured: {configured})", param_hint="--sink"
        )
    if "sql" not in settings.sink_names:
        typer.echo("warning: SINKS lacks sql, so the mirror may be behind Exact", err=True)
    match = Match(division, topic, _moment(since) if since is not None else None)
    replay_id = new_replay_id() if new_ids else None
    done = replay_mirror(
        _sessions(),
        sinks[sink],
        match,
        lambda lanes: dispatch_lanes(settings, lanes),
        replay_id=replay_id,
        dry_run=dry_run,
    )
    counted = f"{done.records} record(s) ({done.deletes} deletes) to {sink}"
    if dry_run:
        typer.echo(f"would replay {counted}")
        return
    typer.echo(
        f"replayed {counted}: {done.reset} put back to pending, {done.added} added, {done.waiting} already waiting,"
        f" {done.unrouted} outside its route; {done.lanes} lane(s), {done.dispatched} dispatched"
    )
    if replay_id is not None:
        typer.echo(f"webhook-ids: <original>:replay:{replay_id}")


def _moment(value: str) -> datetime:
    try:
        moment = datetime.fromisoformat(value)
    except ValueError as exc:
        raise typer.BadParameter(
            f"{value!r} is not an ISO 8601 time (say 2026-12-01T09:00:00Z)", param_hint="--since"
        ) from exc
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)  # no offset given: UTC


def _scrub(error: str | None) -> str | None:
    # Rows written before PUSH_URL was masked in errors may still hold its credentials.
    for secret in sorted(url_secrets(get_settings().push_url), key=len, reverse=True):
        error = error.replace(secret, "***") if error else error
    return error
