"""Tables for connected Exact users (encrypted tokens) and the divisions they granted."""

from __future__ import annotations

from datetime import datetime
from enum import IntEnum

from sqlalchemy import Boolean, DateTime, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from connections.apps import DEFAULT_APP
from runtime.db import Base, utc_now

__all__ = ["Connection", "Division", "DivisionStatus"]


class DivisionStatus(IntEnum):
    """Exact's `Status` of a division (`system/Divisions`), stored as it comes."""

    INACTIVE = 0
    ACTIVE = 1
    ARCHIVED = 2

    @classmethod
    def label(cls, value: int) -> str:
        """Its lower-case name, or the number itself when Exact sends one we do not know."""
        return cls(value).name.lower() if value in cls._value2member_map_ else str(value)


class Connection(Base):
    """One OAuth grant: an Exact user of one of our apps (`app`, a name of connections/apps.py). Tokens are
    Fernet-encrypted; `version` fences writers."""

    __tablename__ = "connections"
    # One user may consent to two apps of one host: a connection each.
    __table_args__ = (UniqueConstraint("app", "base_url", "user_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    app: Mapped[str] = mapped_column(String(50), default=DEFAULT_APP, server_default=DEFAULT_APP)
    base_url: Mapped[str] = mapped_column(String(200))
    client_id: Mapped[str] = mapped_column(String(100))
    user_id: Mapped[str] = mapped_column(String(64))
    user_name: Mapped[str | None] = mapped_column(String(200))
    current_division: Mapped[int | None] = mapped_column(Integer)
    access_token_enc: Mapped[str] = mapped_column(Text)
    refresh_token_enc: Mapped[str] = mapped_column(Text)
    token_issued_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    access_expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    version: Mapped[int] = mapped_column(Integer, default=1)
    needs_consent: Mapped[bool] = mapped_column(Boolean, default=False)
    consent_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utc_now)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utc_now)


class Division(Base):
    """A division (Exact "administration") a connection can reach, as `system/Divisions` reports it."""

    __tablename__ = "divisions"
    __table_args__ = (UniqueConstraint("connection_id", "code"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    connection_id: Mapped[int] = mapped_column(ForeignKey("connections.id", ondelete="CASCADE"))
    code: Mapped[int] = mapped_column(Integer)
    description: Mapped[str | None] = mapped_column(String(200))
    status: Mapped[int] = mapped_column(Integer, default=DivisionStatus.ACTIVE)
    currency: Mapped[str | None] = mapped_column(String(8))
    country: Mapped[str | None] = mapped_column(String(8))
    division_move_date: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    granted: Mapped[bool] = mapped_column(Boolean, default=True)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utc_now)
