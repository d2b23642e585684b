"""The `commands` table: one row per client key, its body, its state and its result."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, DateTime, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from runtime.db import Base, utc_now

__all__ = ["COMMAND_STATES", "FINAL_STATES", "CommandRecord"]

# queued: kept and handed to the workers; running: a worker claimed it and may be writing; succeeded: written and
# verified; failed: refused before sending, refused by Exact, or written but not verified (the result says which);
# unknown: the worker died or Exact gave no answer while the write was in flight, so whether it landed is unknown.
COMMAND_STATES = ("queued", "running", "succeeded", "failed", "unknown")
FINAL_STATES = frozenset({"succeeded", "failed", "unknown"})


class CommandRecord(Base):
    __tablename__ = "commands"
    __table_args__ = (Index("ix_commands_status_updated", "status", "updated_at"),)

    key: Mapped[str] = mapped_column(String(100), primary_key=True)
    division: Mapped[int] = mapped_column(Integer)
    entity: Mapped[str] = mapped_column(String(40))
    action: Mapped[str] = mapped_column(String(10))
    body: Mapped[dict[str, Any]] = mapped_column(JSON)
    fingerprint: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(10), default="queued")
    owner: Mapped[str | None] = mapped_column(String(64))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    result: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utc_now)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utc_now)
