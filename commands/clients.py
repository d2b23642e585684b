"""Named clients of `/commands`: each with its own token, divisions, entities and share of a division's budget.

`COMMANDS_TOKEN` is the all-access client `default`. A named client's token is 256 random bits, printed once; only
its SHA-256 is kept. A hash that fast is enough for a random token (there is no password to stretch), and it lets a
token be found by its hash; the found hash is compared again in constant time.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from commands.models import DEFAULT_CLIENT, CommandClient
from commands.schema import Command
from exact import SPECS
from runtime.db import utc_now

__all__ = [
    "ALL_ACCESS",
    "Client",
    "ClientError",
    "ClientExists",
    "UnknownClient",
    "add",
    "any_client",
    "authenticate",
    "client_of",
    "listed",
    "remove",
    "rotate",
    "token_hash",
]

TOKEN_PREFIX = "epc_"
_NAME = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,63}$")


class ClientError(Exception):
    """A client cannot be added or changed as asked; the message says why."""


class ClientExists(ClientError):
    def __init__(self, name: str) -> None:
        super().__init__(f"client {name!r} exists already; `rotate` gives it a new token")
        self.name = name


class UnknownClient(ClientError):
    def __init__(self, name: str) -> None:
        super().__init__(f"no client named {name!r}")
        self.name = name


@dataclass(frozen=True)
class Client:
    """Who sent a command and what it may do; None allows every division (or entity), a share of 1 the whole budget."""

    name: str
    divisions: frozenset[int] | None = None
    entities: frozenset[str] | None = None
    share: float = 1.0

    @property
    def all_access(self) -> bool:
        return self.name == DEFAULT_CLIENT

    def refusal(self, command: Command) -> str | None:
        """Why this client may not send `command`, naming what is not allowed; None when it may."""
        problems = []
        if self.divisions is not None and command.division not in self.divisions:
            problems.append(f"division {command.division} (allowed: {_joined(sorted(self.divisions))})")
        if self.entities is not None and command.entity not in self.entities:
            problems.append(f"entity {command.entity} (allowed: {_joined(sorted(self.entities))})")
        return f"client {self.name!r} may not write to " + " nor ".join(problems) if problems else None

    def may_see(self, owner: str) -> bool:
        """A command is shown to its own client, and to the all-access one."""
        return self.all_access or owner == self.name


ALL_ACCESS = Client(DEFAULT_CLIENT)


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def authenticate(session: Session, token: str) -> Client | None:
    """The named client whose token this is, or None."""
    digest = token_hash(token)
    row = session.scalars(select(CommandClient).where(CommandClient.token_hash == digest)).first()
    if row is None or not hmac.compare_digest(row.token_hash, digest):
        return None
    return _client(row)


def any_client(session: Session) -> bool:
    """Whether a named client exists: commands are on with one, COMMANDS_TOKEN or not."""
    return session.scalars(select(CommandClient.name).limit(1)).first() is not None


def client_of(session: Session, name: str) -> Client | None:
    row = session.get(CommandClient, name)
    return _client(row) if row is not None else None


def listed(session: Session) -> list[CommandClient]:
    return list(session.scalars(select(CommandClient).order_by(CommandClient.name)))


def add(
    session: Session,
    name: str,
    *,
    divisions: Iterable[int] | None,
    entities: Iterable[str] | None = None,
    share: float = 1.0,
) -> str:
    """Keep a new client (committed) and return its token, which is not kept and cannot be shown again."""
    kept_divisions, kept_entities = _checked(name, divisions, entities, share)
    token = _new_token()
    session.add(
        CommandClient(
            name=name, token_hash=token_hash(token), divisions=kept_divisions, entities=kept_entities, share=share
        )
    )
    try:
        session.commit()
    except IntegrityError:
        session.rollback()
        raise ClientExists(name) from None
    return token


def rotate(session: Session, name: str) -> str:
    """A new token for `name` (committed); the old one stops working at once."""
    row = session.get(CommandClient, name)
    if row is None:
        raise UnknownClient(name)
    token = _new_token()
    row.token_hash, row.rotated_at = token_hash(token), utc_now()
    session.commit()
    return token


def remove(session: Session, name: str) -> None:
    """Forget `name` (committed): its token stops working; its kept commands stay, and still run."""
    row = session.get(CommandClient, name)
    if row is None:
        raise UnknownClient(name)
    session.delete(row)
    session.commit()


def _new_token() -> str:
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def _checked(
    name: str, divisions: Iterable[int] | None, entities: Iterable[str] | None, share: float
) -> tuple[list[int] | None, list[str] | None]:
    if not _NAME.fullmatch(name) or name == DEFAULT_CLIENT:
        raise ClientError(f"a client's name is 1-64 of a-z 0-9 _ . - (not {DEFAULT_CLIENT!r}); got {name!r}")
    if not 0 < share <= 1:
        raise ClientError(f"the share is a fraction of a division's budget, above 0 and at most 1; got {share}")
    kept_divisions = sorted(set(divisions)) if divisions is not None else None
    if kept_divisions is not None and (not kept_divisions or min(kept_divisions) <= 0):
        raise ClientError("name at least one division, each a positive division code")
    kept_entities = sorted(set(entities)) if entities is not None else None
    if kept_entities is not None and (unknown := sorted(set(kept_entities) - set(SPECS))):
        raise ClientError(f"unknown entity {', '.join(unknown)}; commands write {_joined(sorted(SPECS))}")
    return kept_divisions, kept_entities or None


def _client(row: CommandClient) -> Client:
    divisions = frozenset(row.divisions) if row.divisions is not None else None
    entities = frozenset(row.entities) if row.entities is not None else None
    return Client(row.name, divisions, entities, row.share)


def _joined(values: Iterable[object]) -> str:
    return ", ".join(str(v) for v in values)
