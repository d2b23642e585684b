"""`exact-pipeline subscriptions`: one webhook per division and topic, tracked here and reconciled with Exact.

Usage:
    exact-pipeline subscriptions register --division 101 --topic Accounts --topic SalesInvoices
    exact-pipeline subscriptions register --all-divisions          # default topics: DEFAULT_TOPICS
    exact-pipeline subscriptions list
    exact-pipeline subscriptions reconcile [--dry-run]
    exact-pipeline subscriptions remove --division 101 [--topic Accounts]
"""

from __future__ import annotations

from datetime import datetime

import typer
from rich.console import Console
from rich.table import Table
from sqlalchemy import select

from exact._models import Connection, Division
from exact.factory import client_from_settings
from runtime.db import make_engine, make_session_factory
from runtime.redis import sync_client
from runtime.settings import get_settings
from subscriptions.models import Subscription
from subscriptions.service import RegistrationFailed, Report, SubscriptionService, is_silent

app = typer.Typer(help="Webhook subscriptions per division and topic.", no_args_is_help=True)
console = Console(width=160)
CONNECTION = typer.Option(None, "--connection", help="Connection id; optional when there is only one.")


def _service(connection_id: int | None) -> SubscriptionService:
    settings = get_settings()
    settings.require("exact_client_id", "exact_client_secret", "token_encryption_key")
    sessions = make_session_factory(make_engine(settings.database_url))
    with sessions() as session:
        ids = list(session.scalars(select(Connection.id).order_by(Connection.id)))
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
        table.add_row(action.kind, str(action.division), action.topic, action.reason, action.exact_id or "")
    console.print(table)


@app.command("register")
def register(
    division: list[int] = typer.Option([], "--division", help="Division code; repeat for several."),
    topic: list[str] = typer.Option([], "--topic", help="Webhook topic; repeat. Default: DEFAULT_TOPICS."),
    all_divisions: bool = typer.Option(False, "--all-divisions", help="Every active division of the connection."),
    connection: int | None = CONNECTION,
) -> None:
    """Subscribe these divisions to these topics (and make Exact match)."""
    service = _service(connection)
    divisions = list(division)
    if all_divisions:
        service.reconcile(dry_run=True, divisions=[])  # refreshes the divisions
        with service.sessions() as session:
            query = select(Division.code).where(Division.connection_id == service.connection_id,
                                                Division.status == 1, Division.granted.is_(True))  # fmt: skip
            divisions = sorted(set(divisions) | set(session.scalars(query)))
    if not divisions:
        raise typer.BadParameter("name --division at least once, or --all-divisions")
    topics = list(topic) or service.settings.default_topic_list
    try:
        report = service.register(divisions, topics)
    except RegistrationFailed as exc:
        console.print(f"[red]registration failed:[/red] {exc}")
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
        console.print("[red]errors:[/red] " + "; ".join(report.errors))
        raise typer.Exit(1)


@app.command("remove")
def remove(
    division: int = typer.Option(..., "--division"),
    topic: list[str] = typer.Option([], "--topic", help="Only these topics; default all of the division."),
    connection: int | None = CONNECTION,
) -> None:
    """Stop tracking a division's subscriptions and delete them in Exact."""
    _print_plan(_service(connection).remove(division, list(topic) or None), dry_run=False)


@app.command("list")
def list_() -> None:
    """Division, topic, state, Exact ID, last webhook, last error; silent ones flagged."""
    settings = get_settings()
    sessions = make_session_factory(make_engine(settings.database_url))
    table = Table("connection", "division", "topic", "state", "Exact ID", "last webhook", "last error")
    with sessions() as session:
        for row in session.scalars(select(Subscription).order_by(Subscription.connection_id, Subscription.division,
                                                                 Subscription.topic)):  # fmt: skip
            state = row.state + (" (silent)" if is_silent(row, settings.silent_subscription_hours) else "")
            table.add_row(str(row.connection_id), str(row.division), row.topic, state, row.exact_id or "",
                          _when(row.last_webhook_at), row.last_error or "")  # fmt: skip
    console.print(table)


def _when(value: datetime | None) -> str:
    return value.strftime("%Y-%m-%d %H:%M:%S") if value else "never"
