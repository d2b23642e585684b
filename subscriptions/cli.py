"""`exact-pipeline subscriptions`: one webhook per division and topic, tracked here and reconciled with Exact.

Usage:
    exact-pipeline subscriptions register --division 101 --topic Accounts --topic SalesInvoices
    exact-pipeline subscriptions register --all-divisions          # topics default to DEFAULT_TOPICS
    exact-pipeline subscriptions list
    exact-pipeline subscriptions reconcile [--dry-run]
    exact-pipeline subscriptions remove --division 101 [--topic Accounts]
Each takes --connection ID, optional when there is exactly one connection.
"""

from __future__ import annotations

from datetime import datetime

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from connections.factory import client_from_settings
from connections.queries import connection_ids
from runtime.db import make_engine, make_session_factory
from runtime.redis import sync_client
from runtime.settings import get_settings
from subscriptions import repository as repo
from subscriptions.service import RegistrationFailed, Report, SubscriptionService
from subscriptions.silence import is_silent, last_webhook, last_webhooks

app = typer.Typer(help="Webhook subscriptions per division and topic.", no_args_is_help=True)
console = Console(width=200)
CONNECTION = typer.Option(None, "--connection", help="Connection id; optional when there is only one.")


def _service(connection_id: int | None) -> SubscriptionService:
    settings = get_settings()
    settings.require("exact_client_id", "exact_client_secret", "token_encryption_key")
    sessions = make_session_factory(make_engine(settings.database_url))
    with sessions() as session:
        ids = connection_ids(session)
    if connection_id is None:
        if len(ids) != 1:
            raise typer.BadParameter(
                f"{len(ids)} connections exist; name one with --connection", param_hint="--connection"
            )
        connection_id = ids[0]
    elif connection_id not in ids:
        raise typer.BadParameter(f"no connection {connection_id}; run `exact-pipeline connect`")
    client = client_from_settings(settings, sessions, connection_id)
    return SubscriptionService(settings, sessions, client, connection_id, sync_client(settings.redis_url))


def _print_plan(report: Report, *, dry_run: bool) -> None:
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
    topic: list[str] = typer.Option([], "--topic", help="Webhook topic; repeat. Default: DEFAULT_TOPICS."),
    all_divisions: bool = typer.Option(False, "--all-divisions", help="Every active division of the connection."),
    connection: int | None = CONNECTION,
) -> None:
    """Subscribe these divisions to these topics, and make Exact match."""
    service = _service(connection)
    divisions = sorted(set(division) | set(service.active_divisions() if all_divisions else []))
    if not divisions:
        raise typer.BadParameter("name --division at least once, or --all-divisions")
    topics = list(dict.fromkeys(topic)) or service.settings.default_topic_list
    try:
        report = service.register(divisions, topics)
    except RegistrationFailed as exc:
        console.print(f"[red]registration failed:[/red] {escape(str(exc))}")
        raise typer.Exit(1) from exc
    _print_plan(report, dry_run=False)


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
                    row.state + (" (silent)" if silent else ""),
                    row.exact_id or "",
                    _when(last_webhook(row, seen)),
                    escape(row.last_error or ""),
                )
    console.print(table)


def _when(value: datetime | None) -> str:
    return value.strftime("%Y-%m-%d %H:%M:%S UTC") if value else "never"
