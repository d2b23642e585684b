"""`exact-pipeline clients`: named clients of `/commands`, each with its own token, divisions, entities and share.

Usage:
    exact-pipeline clients add shop --division 101 --entity SalesInvoice --share 0.2   # prints the token, once
    exact-pipeline clients add erp --all-divisions             # every division and entity, the division's whole budget
    exact-pipeline clients list                                # never shows a token
    exact-pipeline clients rotate shop                         # prints a new token; the old one stops working
    exact-pipeline clients remove shop                         # its token stops working; its commands stay
COMMANDS_TOKEN stays the all-access client `default`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TypeVar

import typer
from rich.console import Console
from rich.table import Table
from sqlalchemy.orm import Session

from commands import clients
from commands.models import DEFAULT_CLIENT
from runtime.db import make_engine, make_session_factory
from runtime.settings import get_settings

__all__ = ["app"]

app = typer.Typer(
    help="Named clients of /commands: own token, divisions, entities, budget share.", no_args_is_help=True
)
console = Console(width=200)
err = Console(stderr=True)
T = TypeVar("T")


@contextmanager
def _session() -> Iterator[Session]:
    engine = make_engine(get_settings().database_url)
    try:
        with make_session_factory(engine)() as session:
            yield session
    finally:
        engine.dispose()


def _run(action: Callable[[Session], T]) -> T:
    with _session() as session:
        try:
            return action(session)
        except clients.UnknownClient as exc:
            err.print(f"[red]error:[/red] {exc}")
            raise typer.Exit(1) from None
        except clients.ClientError as exc:
            err.print(f"[red]error:[/red] {exc}")
            raise typer.Exit(2) from None


def _show_token(name: str, token: str) -> None:
    err.print(f"the token of client {name!r}, shown this once (only its hash is kept):")
    typer.echo(token)


@app.command("add")
def add(
    name: str = typer.Argument(..., help="The client's name: a-z 0-9 _ . -"),
    division: list[int] = typer.Option([], "--division", help="A division it may write to; repeat for several."),
    all_divisions: bool = typer.Option(False, "--all-divisions", help="Every division, present and future."),
    entity: list[str] = typer.Option([], "--entity", help="An entity it may write (default: every one); repeat."),
    share: float = typer.Option(1.0, "--share", help="Its share of each division's call budget, above 0 and <= 1."),
) -> None:
    """Add a client and print its token (once)."""
    if bool(division) == all_divisions:
        raise typer.BadParameter("name --division at least once, or --all-divisions (not both)")
    divisions = None if all_divisions else division
    token = _run(lambda s: clients.add(s, name, divisions=divisions, entities=entity or None, share=share))
    _show_token(name, token)


@app.command("rotate")
def rotate(name: str = typer.Argument(..., help="The client's name.")) -> None:
    """Give a client a new token and print it (once); the old token stops working at once."""
    _show_token(name, _run(lambda s: clients.rotate(s, name)))


@app.command("remove")
def remove(name: str = typer.Argument(..., help="The client's name.")) -> None:
    """Remove a client: its token stops working; the commands it sent stay, and queued ones still run."""
    _run(lambda s: clients.remove(s, name))
    err.print(f"client {name!r} removed")


@app.command("list")
def list_() -> None:
    """Every client with what it may write and its share; never a token."""
    table = Table("client", "divisions", "entities", "share", "token rotated")
    if get_settings().commands_token is not None:
        table.add_row(DEFAULT_CLIENT, "all", "all", "1", "COMMANDS_TOKEN")
    with _session() as session:
        for row in clients.listed(session):
            rotated = row.rotated_at.strftime("%Y-%m-%d %H:%M")
            table.add_row(row.name, _all_or(row.divisions), _all_or(row.entities), f"{row.share:g}", rotated)
    console.print(table)


def _all_or(values: list[int] | list[str] | None) -> str:
    return "all" if values is None else ", ".join(str(v) for v in values)
