"""`exact-pipeline schema record` and `schema diff`: the schema guard of gotcha 14 (Exact changes under us).

Usage:
    exact-pipeline schema record --out production.json                 # your connection, its current division
    exact-pipeline schema record --sandbox --yes --out schema/sandbox.json   # regenerate the committed snapshot
    exact-pipeline schema diff production.json sandbox                  # is the sandbox still faithful?
    exact-pipeline schema diff schema/sandbox.json catalogue            # the CI guard

A side of `diff` is a snapshot file, `sandbox` (recorded now, from a sandbox started here or `--sandbox-url`), or
`catalogue` (what the code reads). `diff` exits 1 when a difference is breaking, 0 otherwise.
"""

from __future__ import annotations

import json
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table
from sqlalchemy import select

from connections.factory import client_from_settings
from connections.models import Connection
from connections.queries import NoSingleConnection, the_connection
from exact import CATALOGUE, ExactError
from runtime.db import make_engine, make_session_factory
from runtime.settings import Settings, get_settings
from schema.diff import Report, diff
from schema.local import record_sandbox
from schema.reads import expected
from schema.record import calls_needed, record
from schema.snapshot import Snapshot
from schema.store import save_snapshot

__all__ = ["app", "load_side"]

app = typer.Typer(help="Record Exact's response shapes and diff them (gotcha 14).", no_args_is_help=True)
console = Console(width=200)
err = Console(stderr=True)


@app.command("record")
def record_command(
    division: int | None = typer.Option(None, help="Division to read (default: the connection's current one)."),
    out: Path | None = typer.Option(None, help="Write the snapshot here (default: standard output)."),
    yes: bool = typer.Option(False, "--yes", help="Do not ask before spending the calls."),
    connection: int | None = typer.Option(None, "--connection", help="Connection id; optional when there is one."),
    sandbox: bool = typer.Option(False, "--sandbox", help="Record a sandbox started here instead of a connection."),
    sandbox_url: str | None = typer.Option(None, help="Record the sandbox running at this URL."),
) -> None:
    """One read of every resource the catalogue reads or writes; names, types and shapes only, never a value."""
    calls = calls_needed(CATALOGUE)
    settings = get_settings()
    if sandbox or sandbox_url:
        err.print(f"recording the sandbox: {calls} calls")
        snapshot = record_sandbox(settings, url=sandbox_url, division=division)
    else:
        connection_id, code = _connection(settings, connection, division)
        err.print(f"recording division {code} of connection {connection_id}: {calls} calls of its rate budget")
        if not yes and not typer.confirm("go on?", err=True):
            raise typer.Exit(1)
        sessions = make_session_factory(make_engine(settings.database_url))
        client = client_from_settings(settings, sessions, connection_id)
        try:
            snapshot = record(client, code, CATALOGUE)
        except ExactError as exc:
            err.print(f"[red]stopped:[/red] {exc.message} (nothing written)")
            raise typer.Exit(1) from exc
        # Kept for `status` and the worker's check at start (the last few per connection).
        save_snapshot(sessions, connection_id, code, snapshot)
    refused = sorted(path for path, r in snapshot.resources.items() if r.error)
    if refused:
        err.print(f"{len(refused)} reads refused: {', '.join(refused)}")
    if out is None:
        typer.echo(snapshot.to_json(), nl=False)
    else:
        out.write_text(snapshot.to_json(), encoding="utf-8")
        err.print(f"{len(snapshot.resources)} resources written to {out}")


def _connection(settings: Settings, given: int | None, division: int | None) -> tuple[int, int]:
    settings.require("exact_client_id", "exact_client_secret", "token_encryption_key")
    sessions = make_session_factory(make_engine(settings.database_url))
    with sessions() as session:
        try:
            given = the_connection(session, given, consented_only=True)
        except NoSingleConnection as exc:
            raise typer.BadParameter(str(exc), param_hint="--connection") from exc
        current = session.scalar(select(Connection.current_division).where(Connection.id == given))
    code = division if division is not None else current
    if code is None:
        raise typer.BadParameter("the connection has no current division: pass --division", param_hint="--division")
    return given, code


def load_side(side: str, settings: Settings | None = None, *, sandbox_url: str | None = None) -> Snapshot:
    """`catalogue`, `sandbox` (recorded now) or the path of a snapshot file."""
    if side == "catalogue":
        return expected(CATALOGUE)
    if side == "sandbox":
        return record_sandbox(settings or get_settings(), url=sandbox_url)
    path = Path(side)
    if not path.is_file():
        raise typer.BadParameter(f"{side}: not a file, `sandbox` or `catalogue`")
    try:
        return Snapshot.from_json(path.read_text(encoding="utf-8"))
    except (ValueError, KeyError) as exc:
        raise typer.BadParameter(f"{side}: {exc}") from exc


@app.command("diff")
def diff_command(
    a: str = typer.Argument(..., help="The baseline: a snapshot file, `sandbox` or `catalogue`."),
    b: str = typer.Argument(..., help="What is compared with it: a snapshot file, `sandbox` or `catalogue`."),
    as_json: bool = typer.Option(False, "--json", help="The report as JSON instead of a table."),
    sandbox_url: str | None = typer.Option(None, help="Record the `sandbox` side at this URL, not a fresh one."),
) -> None:
    """Per resource: fields added (in B only) or missing (in A only), types, date formats, row shapes, envelopes
    and refusals that differ. Exit 1 when a difference touches a field the code reads or writes, a row shape, an
    envelope or a read; 0 for additions only. `--json` keys: a, b, breaking, changes [{resource, kind, field, a,
    b, breaking}]."""
    report = diff(load_side(a, sandbox_url=sandbox_url), load_side(b, sandbox_url=sandbox_url), CATALOGUE)
    if as_json:
        typer.echo(json.dumps(report.to_dict(), indent=2))
    else:
        _print(report)
    raise typer.Exit(1 if report.breaking else 0)


def _print(report: Report) -> None:
    if not report.changes:
        console.print(f"no differences between {report.a} and {report.b}")
        return
    table = Table("resource", "change", "field", report.a, report.b, "breaking", title=f"{report.a} → {report.b}")
    for c in report.changes:
        table.add_row(c.resource, c.kind, c.field or "", c.a or "", c.b or "", "[red]yes[/red]" if c.breaking else "")
    console.print(table)
    verdict = "[red]breaking[/red]" if report.breaking else "not breaking"
    console.print(f"{len(report.changes)} differences, {verdict}")
