"""The Procfile under honcho: web, worker, pusher and beat come up, carry one webhook end to end, and stop
together."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
import redis
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from connections.factory import client_from_settings
from delivery.models import MirrorRecord
from runtime.serving import free_port
from runtime.settings import Settings
from subscriptions.service import SubscriptionService
from tests.conftest import ServerThread
from tests.pipeline import fresh_db
from tests.pipeline.connected import connect_to

# A database of its own: beat's sweepers and delta sync would otherwise pick up the commands and subscriptions other
# tests left in the shared one, and spend the sandbox's budget on them while this test waits for its one change.
database_url, engine, session_factory = fresh_db.database_url, fresh_db.engine, fresh_db.session_factory
PROCFILE = Path(__file__).resolve().parents[2] / "Procfile"


def _wait(
    what: str, check: Callable[[], bool], timeout: float, honcho: subprocess.Popen[bytes], logged: Callable[[], str]
) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert honcho.poll() is None, f"honcho exited while waiting for {what}:\n{logged()[-4000:]}"
        assert time.monotonic() < deadline, f"no {what} within {timeout:.0f}s:\n{logged()[-4000:]}"
        time.sleep(0.2)


def _answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


@pytest.mark.slow
def test_honcho_runs_web_worker_pusher_and_beat_end_to_end(
    settings: Settings,
    sandbox: ServerThread,
    session_factory: sessionmaker[Session],
    redis_client: redis.Redis,
    tmp_path: Path,
) -> None:
    port = free_port()
    settings = settings.model_copy(
        update={
            "exact_base_url": sandbox.url,
            "public_url": f"http://127.0.0.1:{port}",
            "sinks": "sql",
            "coalesce_window_seconds": 0.5,
        }
    )
    connection_id = connect_to(settings)
    env = settings.child_environment(os.environ)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env.pop("PORT", None)
    log_path = tmp_path / "honcho.log"
    log = log_path.open("wb")

    def logged() -> str:
        return log_path.read_text(errors="replace")

    honcho = subprocess.Popen(
        [
            str(Path(sys.executable).parent / "honcho"),
            "start",
            "-f",
            str(PROCFILE),
            "-d",
            str(tmp_path),
            "-p",
            str(port),
        ],
        env=env,
        cwd=tmp_path,
        # A file, not a pipe: nobody reads a pipe while the test waits, and four processes' logs would fill it and
        # block them mid-write.
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        _wait("receiver", lambda: _answers(f"http://127.0.0.1:{port}/readyz"), 60, honcho, logged)
        client = client_from_settings(settings, session_factory, connection_id)
        service = SubscriptionService(settings, session_factory, client, connection_id, redis_client)
        service.register([101], ["Contacts"])  # Exact checks the callback: that is honcho's web
        name = f"honcho-{uuid.uuid4().hex[:8]}"
        created = httpx.post(f"{sandbox.url}/_sandbox/records/101/crm/Contacts", json={"LastName": name}, timeout=30)
        key = created.json()["record"]["ID"]

        def mirrored() -> bool:
            with session_factory() as session:
                row = session.scalar(select(MirrorRecord).where(MirrorRecord.key == key))
                return row is not None and (row.record or {}).get("LastName") == name

        _wait("mirrored record", mirrored, 90, honcho, logged)
    finally:
        honcho.send_signal(signal.SIGINT)  # what Ctrl-C does in a terminal
        honcho.wait(timeout=60)
        log.close()
    text = logged()
    for process in ("web", "worker", "pusher", "beat"):
        assert f"{process}.1" in text, text
    assert not _answers(f"http://127.0.0.1:{port}/readyz"), "web still answers after honcho stopped"
    with pytest.raises(ProcessLookupError):
        os.killpg(honcho.pid, 0)  # nothing of the group is left
