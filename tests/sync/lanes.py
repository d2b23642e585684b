"""What the sandbox-backed lane tests share: a worker context on the sandbox, control calls, the mirror, a spy on
what the sinks accept."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

import httpx
import pytest
import redis
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from delivery import outbox as delivery
from delivery.changes import ChangeRecord
from delivery.models import MirrorRecord
from runtime.db import session_scope
from runtime.settings import Settings
from subscriptions.models import Subscription
from sync.context import WorkerContext
from tests.conftest import ServerThread

__all__ = ["accepted_changes", "calls", "control", "make_ctx", "mirror", "subscribe", "tombstones"]


def make_ctx(
    settings: Settings, sandbox: ServerThread, sessions: sessionmaker[Session], client: redis.Redis, **update: Any
) -> WorkerContext:
    settings = settings.model_copy(update={"exact_base_url": sandbox.url, "sinks": "sql", **update})
    return WorkerContext(settings, sessions, client)


def control(ctx: WorkerContext, method: str, path: str, **kwargs: Any) -> httpx.Response:
    response = httpx.request(method, f"{ctx.settings.exact_base_url}/_sandbox/{path}", timeout=30, **kwargs)
    response.raise_for_status()
    return response


def calls(ctx: WorkerContext, division: int) -> int:
    return int(control(ctx, "GET", "calls", params={"division": str(division)}).json()["total"])


def mirror(ctx: WorkerContext, division: int, topic: str) -> dict[str, dict[str, Any]]:
    with ctx.sessions() as session:
        rows = session.scalars(
            select(MirrorRecord).where(MirrorRecord.division == division, MirrorRecord.topic == topic)
        )
        return {r.key: r.record for r in rows if not r.deleted and r.record is not None}


def subscribe(sessions: sessionmaker[Session], connection_id: int, division: int, topics: Sequence[str]) -> None:
    """Active subscriptions for `topics`, as if registered: the lanes a delta cycle fans out to."""
    with session_scope(sessions) as session:
        for topic in topics:
            callback = f"http://x/{uuid.uuid4()}"
            session.add(
                Subscription(
                    connection_id=connection_id, division=division, topic=topic, callback_url=callback, state="active"
                )
            )


def tombstones(ctx: WorkerContext, division: int, topic: str) -> set[str]:
    with ctx.sessions() as session:
        where = (MirrorRecord.division == division, MirrorRecord.topic == topic, MirrorRecord.deleted)
        return set(session.scalars(select(MirrorRecord.key).where(*where)))


def accepted_changes(monkeypatch: pytest.MonkeyPatch) -> list[ChangeRecord]:
    """Every change the sinks accept from now on (the real `accept` still does the work)."""
    real, seen = delivery.accept, list[ChangeRecord]()

    def spy(session: Session, changes: Sequence[ChangeRecord], settings: Settings) -> Any:
        seen.extend(changes)
        return real(session, changes, settings)

    monkeypatch.setattr(delivery, "accept", spy)
    return seen
