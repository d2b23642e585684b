"""`exact-pipeline rotate-key`: every stored token re-encrypted with the first key of TOKEN_ENCRYPTION_KEY.

Usage:
    TOKEN_ENCRYPTION_KEY=NEW,OLD exact-pipeline rotate-key     # then drop OLD, everywhere
    exact-pipeline rotate-key --dry-run --json                 # the counts only; writes nothing

Rotating a key takes three steps: set `NEW,OLD` on every process (each decrypts with either key and encrypts with
the first), run this command, then set `NEW` alone. It can be re-run, and run while workers refresh tokens: a row is
written only while its `version` is the one read (the store's compare-and-swap), and its version is left as it is,
so a refresh that read the row first still wins its own write, which the new key encrypted already.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Literal

import typer
from rich.console import Console
from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from connections.factory import cipher_from_settings
from connections.models import Connection
from exact import UNDECRYPTABLE
from runtime.crypto import DecryptionFailed, InvalidKey, TokenCipher
from runtime.db import make_engine, make_session_factory, utc_now
from runtime.settings import get_settings

__all__ = ["UNDECRYPTABLE", "RotationReport", "readable", "rotate_key", "rotate_keys"]

Outcome = Literal["rotated", "current", "recovered", "undecryptable", "busy", "gone"]
# Re-reads of a row whose version moved on under us; each lost race means a refresh stored it under the new key.
ATTEMPTS = 3

console = Console()


@dataclass
class RotationReport:
    """What `rotate_keys` did, per outcome; never a token."""

    keys: int
    dry_run: bool = False
    rotated: int = 0
    current: int = 0
    # Parked as undecryptable by a worker, readable again (the old key is back): rotated and back in service.
    recovered: int = 0
    undecryptable: list[int] = field(default_factory=list)
    busy: list[int] = field(default_factory=list)

    def add(self, connection_id: int, outcome: Outcome) -> None:
        if outcome in ("rotated", "current", "recovered"):
            setattr(self, outcome, getattr(self, outcome) + 1)
        elif outcome in ("undecryptable", "busy"):
            getattr(self, outcome).append(connection_id)

    @property
    def complete(self) -> bool:
        return not self.undecryptable and not self.busy


def readable(cipher: TokenCipher, connection: Connection) -> bool:
    """Whether a configured key opens both of the connection's tokens."""
    try:
        cipher.decrypt(connection.access_token_enc)
        cipher.decrypt(connection.refresh_token_enc)
    except DecryptionFailed:
        return False
    return True


def rotate_keys(sessions: sessionmaker[Session], cipher: TokenCipher, *, dry_run: bool = False) -> RotationReport:
    """Every connection's tokens re-encrypted with the first key, one fenced write each."""
    report = RotationReport(keys=cipher.key_count, dry_run=dry_run)
    with sessions() as session:
        ids = list(session.scalars(select(Connection.id).order_by(Connection.id)))
    for connection_id in ids:
        report.add(connection_id, _rotate_one(sessions, cipher, connection_id, dry_run=dry_run))
    return report


def _rotate_one(sessions: sessionmaker[Session], cipher: TokenCipher, connection_id: int, *, dry_run: bool) -> Outcome:
    for _ in range(ATTEMPTS):
        with sessions() as session:
            row = session.get(Connection, connection_id)
            if row is None:
                return "gone"
            version, stored = row.version, (row.access_token_enc, row.refresh_token_enc)
            parked = row.needs_consent and row.consent_error == UNDECRYPTABLE
        current = all(cipher.is_current(token) for token in stored)
        if current and not parked:
            return "current"
        try:
            access, refresh = stored if current else (cipher.rotate(stored[0]), cipher.rotate(stored[1]))
        except DecryptionFailed:
            return "undecryptable"
        outcome: Outcome = "recovered" if parked else "rotated"
        if dry_run:
            return outcome
        values = {"access_token_enc": access, "refresh_token_enc": refresh, "updated_at": utc_now()}
        if parked:
            values |= {"needs_consent": False, "consent_error": None}
        with sessions() as session, session.begin():
            fenced = update(Connection).where(Connection.id == connection_id, Connection.version == version)
            if session.execute(fenced.values(**values)).rowcount:  # type: ignore[attr-defined]
                return outcome
    return "busy"


def rotate_key(
    dry_run: bool = typer.Option(False, "--dry-run", help="Count what would change; write nothing."),
    as_json: bool = typer.Option(False, "--json", help="The counts as JSON."),
) -> None:
    """Re-encrypt every stored token with the first key of TOKEN_ENCRYPTION_KEY (safe to re-run)."""
    settings = get_settings()
    try:
        cipher = cipher_from_settings(settings)
    except InvalidKey as exc:
        console.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(2) from None
    report = rotate_keys(make_session_factory(make_engine(settings.database_url)), cipher, dry_run=dry_run)
    if as_json:
        typer.echo(json.dumps({**asdict(report), "complete": report.complete}, indent=2))
    else:
        _print(report)
    if not report.complete:
        raise typer.Exit(1)


def _print(report: RotationReport) -> None:
    verb = "would rotate" if report.dry_run else "rotated"
    counts = f"already current {report.current}, back in service {report.recovered}"
    console.print(f"{report.keys} key(s): {verb} {report.rotated}, {counts}")
    if report.undecryptable:
        advice = "add the key they were stored with to TOKEN_ENCRYPTION_KEY and re-run, or `exact-pipeline connect`"
        console.print(f"[red]no key opens the tokens of connection(s) {report.undecryptable}[/red]: {advice}")
    if report.busy:
        console.print(f"[yellow]connection(s) {report.busy} kept changing under us[/yellow]: re-run")
