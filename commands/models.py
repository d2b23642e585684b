"""The `commands` table (one row per key: its body, its state, its result, its client) and the named clients."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, DateTime, Float, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from runtime.db import Base, utc_now

__all__ = ["COMMAND_STATES", "DEFAULT_CLIENT", "FINAL_STATES", "CommandClient", "CommandRecord", "CommandState"]


class CommandState(StrEnum):
    """A command's `status`, stored as its value.

    queued: kept and handed to the workers; running: a worker claimed it and may be writing; succeeded: written and
    verified; failed: refused before sending, refused by Exact, or written but not verified (the result says which);
    unknown: the worker died or Exact gave no answer while the write was in flight, so whether it landed is unknown.
    """

    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    UNKNOWN = "unknown"


COMMAND_STATES = tuple(CommandState)  # in this order in `status`
FINAL_STATES = frozenset({CommandState.SUCCEEDED, CommandState.FAILED, CommandState.UNKNOWN})
# The all-access client: COMMANDS_TOKEN's, `exact-pipeline write`'s, and every command kept before clients had names.
DEFAULT_CLIENT = "default"


class CommandRecord(Base):
    __tablename__ = "commands"
    __table_args__ = (Index("ix_commands_status_updated", "status", "updated_at"),)

    key: Mapped[str] = mapped_column(String(100), primary_key=True)
    division: Mapped[int] = mapped_column(Integer)
    entity: Mapped[str] = mapped_column(String(40))
    action: Mapped[str] = mapped_column(String(10))
    body: Mapped[dict[str, Any]] = mapped_column(JSON)
    fingerprint: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(10), default=CommandState.QUEUED)
    owner: Mapped[str | None] = mapped_column(String(64))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    result: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utc_now)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utc_now)
    client: Mapped[str] = mapped_column(String(64), default=DEFAULT_CLIENT, server_default=DEFAULT_CLIENT)


class CommandClient(Base):
    """A named client of `/commands`: its token's SHA-256, what it may write (None: all), its share of the budget."""

    __tablename__ = "command_clients"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    divisions: Mapped[list[int] | None] = mapped_column(JSON)
    entities: Mapped[list[str] | None] = mapped_column(JSON)
    share: Mapped[float] = mapped_column(Float, default=1.0)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utc_now)
    rotated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utc_now)
