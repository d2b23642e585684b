"""`exact-pipeline write`: submit a command from a file, as `POST /commands` does, and wait for its result.

Usage:
    exact-pipeline write --division 101 --file command.json             # waits; exit 0 succeeded, 1 failed/unknown
                                                                        # (3: still queued or running)
    exact-pipeline write --division 101 --file command.json --no-wait   # prints the key and returns

The file holds one command (see `commands.schema.Command`); its `division`, if given, must match `--division`.
Without a `key`, the key is derived from the file's content, so running the same file twice writes once.
"""

from __future__ import annotations

import hashlib
import json
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import typer
from pydantic import ValidationError
from rich.console import Console

from commands.models import FINAL_STATES, CommandState
from commands.schema import Command, CommandView, load_json
from commands.store import KeyReused, get, submit, view
from runtime.db import make_engine, make_session_factory
from runtime.settings import get_settings

__all__ = ["write"]

err = Console(stderr=True)
_POLL_SECONDS = 0.5


def write(
    division: int = typer.Option(..., "--division", help="Exact division code to write to."),
    file: Path = typer.Option(..., "--file", exists=True, dir_okay=False, readable=True, help="The command, JSON."),
    wait: bool = typer.Option(True, "--wait/--no-wait", help="Wait for the workers' result."),
    timeout: float = typer.Option(120.0, "--timeout", help="Seconds to wait for the result."),
) -> None:
    """Submit a write to Exact (run by the workers, verified by a read-back) and print its state as JSON."""
    command = _load(file, division)
    settings = get_settings()
    sessions = make_session_factory(make_engine(settings.database_url))
    try:
        with sessions() as session:
            row, created = submit(session, command)
            shown = view(row)
    except KeyReused as exc:
        err.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(2) from None
    if created:
        from commands.tasks import enqueue

        enqueue(settings, command.key)
    err.print(f"{'queued' if created else 'already submitted'}: {command.key}")
    deadline = time.monotonic() + timeout
    while wait and shown.status not in FINAL_STATES and time.monotonic() < deadline:
        time.sleep(_POLL_SECONDS)
        with sessions() as session:
            found = get(session, command.key)
            shown = view(found) if found is not None else shown
    typer.echo(json.dumps(shown.model_dump(mode="json"), indent=2))
    raise typer.Exit(_exit_code(shown, wait))


def _exit_code(shown: CommandView, wait: bool) -> int:
    if shown.status == CommandState.UNKNOWN:
        exact_id = (shown.result or {}).get("exact_id")
        found = f" (Exact ID {exact_id})" if exact_id else ""
        err.print(
            f"[red]outcome unknown[/red]: the write may have landed in Exact{found}; look for it there before "
            "writing it again, and never resend it under a new key"
        )
    if shown.status == CommandState.SUCCEEDED or (not wait and shown.status not in FINAL_STATES):
        return 0
    if shown.status in FINAL_STATES:
        return 1
    err.print(f"[yellow]still {shown.status}[/yellow]: is a worker running? `exact-pipeline worker`")
    if shown.status == CommandState.RUNNING and _stuck(shown):
        err.print(
            "[red]stuck[/red]: running past the task's time limit, so its worker died; the commands sweeper "
            "(`exact-pipeline beat`) settles it as unknown"
        )
    return 3


def _stuck(shown: CommandView) -> bool:
    from commands.tasks import HARD_LIMIT_GRACE_SECONDS

    limit = get_settings().commands_time_limit_seconds + HARD_LIMIT_GRACE_SECONDS
    return (datetime.now(UTC) - shown.updated_at).total_seconds() > limit


def _load(file: Path, division: int) -> Command:
    try:
        data: Any = load_json(file.read_bytes())
    except ValueError as exc:
        err.print(f"[red]error:[/red] {file} is not JSON: {exc}")
        raise typer.Exit(2) from None
    if not isinstance(data, dict):
        err.print(f"[red]error:[/red] {file} must hold one JSON object")
        raise typer.Exit(2)
    if data.setdefault("division", division) != division:
        err.print(f"[red]error:[/red] {file} says division {data['division']}, --division says {division}")
        raise typer.Exit(2)
    if "key" not in data:
        canonical = json.dumps(data, sort_keys=True, separators=(",", ":"))
        data["key"] = "file-" + hashlib.sha256(canonical.encode()).hexdigest()[:32]
    try:
        return Command.model_validate(data)
    except ValidationError as exc:
        for error in exc.errors():
            err.print(f"[red]error:[/red] {'.'.join(str(p) for p in error['loc']) or 'command'}: {error['msg']}")
        raise typer.Exit(2) from None
