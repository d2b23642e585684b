"""`exact-pipeline subscriptions`: one webhook per division and topic, tracked here and reconciled with Exact.

Usage:
    exact-pipeline subscriptions register --division 101 --topic Accounts --topic SalesInvoices
    exact-pipeline subscriptions register --all-divisions          # topics default to DEFAULT_TOPICS
    exact-pipeline subscriptions register --division 101 --all-topics   # every webhook topic of the catalogue
    exact-pipeline subscriptions register --division 101 --topic GLAccounts   # a read-only lane: delta sync only
    exact-pipeline subscriptions register --all-divisions --follow   # and each division granted later
    exact-pipeline subscriptions unfollow
    exact-pipeline subscriptions list
    exact-pipeline subscriptions reconcile [--dry-run]
    exact-pipeline subscriptions remove --division 101 [--topic Accounts]
Each takes --connection ID, optional when there is exactly one connection. A topic the catalogue does not support
(`exact-pipeline topics`) is refused before anything is made, in Exact or here. With `--follow`, the daily
reconcile subscribes a division granted later to the same topics and backfills it, and suspends the subscriptions of
a division no longer granted (`subscriptions.follow`).
"""

from __future__ import annotations

from datetime import datetime

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from connections.factory import client_from_settings
from connections.queries import NoSingleConnection, connection_ids, the_connection
from exact import CATALOGUE, UnsupportedTopic
from runtime.db import make_engine, make_session_factory
from runtime.redis import sync_client
from runtime.settings import get_settings
from subscriptions import repository as repo
from subscriptions.follow import FollowPlan
from subscriptions.models import Subscription, SubscriptionState
from subscriptions.service import RegistrationFailed, Report, SubscriptionService, resolve_topics
from subscriptions.silence import is_silent, last_webhook, last_webhooks

app = typer.Typer(help="Webhook subscriptions per division and topic.", no_args_is_help=True)
console = Console(width=200)
CONNECTION = typer.Option(None, "--connection", help="Connection id; optional when there is only one.")


def _service(connection_id: int | None) -> SubscriptionService:
    settings = get_settings()
    settings.require("exact_client_id", "exact_client_secret", "token_encryption_key")
    sessions = make_session_factory(make_engine(settings.database_url))
    with sessions() as session:
        try:
            connection_id = the_connection(session, connection_id, why=" exist")
        except NoSingleConnection as exc:
            raise typer.BadParameter(str(exc), param_hint="--connection") from exc
    client = client_from_settings(settings, sessions, connection_id)
    return SubscriptionService(settings, sessions, client, connection_id, sync_client(settings.redis_url))


def _print_follow(follow: FollowPlan, *, dry_run: bool) -> None:
    then = "to be " if dry_run else ""
    for divisions, what in (
        (follow.followed, "followed (granted since), its lanes backfilled"),
        (follow.suspended, "suspended (no longer granted)"),
        (follow.resumed, "resumed (granted again)"),
    ):
        for division in divisions:
            console.print(f"division {division}: {then}{what}")


def _print_plan(report: Report, *, dry_run: bool) -> None:
    _print_follow(report.follow, dry_run=dry_run)
    for division, lane in report.sync_only:
        console.print(f"division {division} {lane}: tracked for the delta sync only (Exact sends no webhooks for it)")
    if report.sync_only and not report.actions:
        return
    if not report.actions:
        console.print("nothing to change: Exact matches")
        return
    table = Table("plan" if dry_run else "done", "division", "topic", "reason", "Exact ID")
    for action in report.actions:
        table.add_row(action.kind, str(action.division), action.topic, escape(action.reason), action.exact_id or "")
    console.print(table)


@app.command("register")
def register(
    division: list[int] = typer.Option([], "--division", help="Division code; repeat for several."),
    topic: list[str] = typer.Option(
        [], "--topic", help="Topic (`exact-pipeline topics`); repeat. Default: DEFAULT_TOPICS."
    ),
    all_topics: bool = typer.Option(False, "--all-topics", help="Every webhook topic of the catalogue."),
    all_divisions: bool = typer.Option(False, "--all-divisions", help="Every active division of the connection."),
    follow: bool = typer.Option(
        False, "--follow", help="With --all-divisions: the daily reconcile also subscribes divisions granted later."
    ),
    connection: int | None = CONNECTION,
) -> None:
    """Subscribe these divisions to these topics, and make Exact match (a read-only lane is only tracked)."""
    if follow and not all_divisions:
        raise typer.BadParameter("--follow goes with --all-divisions", param_hint="--follow")
    topics = _topics(topic, all_topics)  # refused here, before any call to Exact
    service = _service(connection)
    divisions = sorted(set(division) | set(service.active_divisions() if all_divisions else []))
    if not divisions:
        raise typer.BadParameter("name --division at least once, or --all-divisions")
    try:
        report = service.register(divisions, topics)
    except RegistrationFailed as exc:
        console.print(f"[red]registration failed:[/red] {escape(str(exc))}")
        raise typer.Exit(1) from exc
    _print_plan(report, dry_run=False)
    if follow:
        service.follow(topics, divisions)
        console.print(f"following new divisions with {', '.join(topics)} (each daily reconcile)")


def _topics(named: list[str], all_topics: bool) -> list[str]:
    """The topics to register in the catalogue's spelling; exit 2 naming the supported ones for any other."""
    wanted = [*named, *(CATALOGUE.topics(webhook=True) if all_topics else ())]
    source = "--topic"
    if not wanted:
        wanted, source = get_settings().default_topic_list, "DEFAULT_TOPICS"
    try:
        return resolve_topics(wanted)
    except UnsupportedTopic as exc:
        console.print(f"[red]{source}:[/red] {escape(str(exc))}")
        raise typer.Exit(2) from exc


@app.command("reconcile")
def reconcile(
    dry_run: bool = typer.Option(False, "--dry-run", help="Print the plan; change nothing."),
    connection: int | None = CONNECTION,
) -> None:
    """Make Exact's subscriptions match ours: create, adopt, re-create drifted, delete forgotten ones."""
    report = _service(connection).reconcile(dry_run=dry_run)
    _print_plan(report, dry_run=dry_run)
    if report.errors:
        console.print("[red]errors:[/red] " + escape("; ".join(report.errors)))
        raise typer.Exit(1)


@app.command("remove")
def remove(
    division: int = typer.Option(..., "--division"),
    topic: list[str] = typer.Option([], "--topic", help="Only these topics; default all of the division."),
    connection: int | None = CONNECTION,
) -> None:
    """Stop tracking a division's subscriptions and delete them in Exact."""
    report = _service(connection).remove(division, list(topic) or None)
    _print_plan(report, dry_run=False)
    if report.errors:
        console.print("[red]errors:[/red] " + escape("; ".join(report.errors)))
        raise typer.Exit(1)


@app.command("unfollow")
def unfollow(connection: int | None = CONNECTION) -> None:
    """Stop following new divisions; the subscriptions made stay (drop them with `remove`)."""
    stopped = _service(connection).unfollow()
    console.print("no longer following new divisions" if stopped else "nothing to stop: not following")


@app.command("list")
def list_(connection: int | None = typer.Option(None, "--connection", help="Only this connection.")) -> None:
    """Division, topic, state, Exact ID, last webhook, last error; silent ones flagged."""
    settings = get_settings()
    sessions = make_session_factory(make_engine(settings.database_url))
    seen = last_webhooks(sync_client(settings.redis_url), settings.redis_prefix)
    table = Table("connection", "division", "topic", "state", "Exact ID", "last webhook", "last error")
    with sessions() as session:
        ids = [connection] if connection is not None else connection_ids(session)
        for connection_id in ids:
            for row in repo.rows(session, connection_id):
                silent = is_silent(row, settings.silent_subscription_hours, seen=seen)
                table.add_row(
                    str(row.connection_id),
                    str(row.division),
                    row.topic,
                    _state(row) + (" (silent)" if silent else ""),
                    row.exact_id or "",
                    _when(last_webhook(row, seen)),
                    escape(row.last_error or ""),
                )
        rules = repo.follow_rules(session, ids)
    console.print(table)
    for rule in rules:
        met = ", ".join(str(d) for d in rule.divisions) or "none"
        console.print(
            f"connection {rule.connection_id} follows new divisions with {', '.join(rule.topics)} (met: {met})"
        )


def _state(row: Subscription) -> str:
    if CATALOGUE.get(row.topic) is None:
        return f"{row.state} [red](unsupported topic: remove it)[/red]"
    if row.state == SubscriptionState.SYNC_ONLY:
        return "sync only (delta sync; Exact sends no webhooks)"
    if row.state == SubscriptionState.SUSPENDED:
        return "suspended (division no longer granted)"
    return row.state


def _when(value: datetime | None) -> str:
    return value.strftime("%Y-%m-%d %H:%M:%S UTC") if value else "never"
