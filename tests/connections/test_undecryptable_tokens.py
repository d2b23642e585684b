"""A worker whose TOKEN_ENCRYPTION_KEY opens none of a connection's tokens parks the connection and says what to do,
instead of failing every task of it."""

from __future__ import annotations

from pydantic import SecretStr

from connections.models import Connection
from runtime.crypto import generate_key
from tests.pipeline import fresh_db
from tests.pipeline.harness import Pipeline
from tests.pipeline.push_support import await_true

database_url, engine, session_factory = fresh_db.database_url, fresh_db.engine, fresh_db.session_factory

CRASHED = ("Traceback", "raised unexpected")


def _logs(pipeline: Pipeline) -> str:
    return "".join(p.read_text(errors="replace") for p in sorted(pipeline.log_dir.glob("worker*.log")))


def _consent_error(pipeline: Pipeline) -> str | None:
    with pipeline.sessions() as session:
        row = session.get(Connection, pipeline.connection_id)
        assert row is not None
        return row.consent_error if row.needs_consent else None


def test_a_worker_without_the_key_parks_the_connection_with_a_logged_error(pipeline: Pipeline) -> None:
    pipeline.service.register([101], ["Contacts"])
    # The tokens were stored under the session's key; this worker was given only a new one (a rotation gone wrong).
    pipeline.settings = pipeline.settings.model_copy(update={"token_encryption_key": SecretStr(generate_key())})
    worker = pipeline.start_worker()
    pipeline.control("POST", "records/101/crm/Contacts", json={"LastName": "Jansen"})
    await_true(
        lambda: "exact.token.undecryptable" in _logs(pipeline) or any(c in _logs(pipeline) for c in CRASHED),
        timeout=60,
        what="the flush",
        detail=lambda: _logs(pipeline)[-3000:],
    )
    assert worker.poll() is None, _logs(pipeline)[-3000:]
    logs = _logs(pipeline)
    assert not [c for c in CRASHED if c in logs], logs[-3000:]
    assert '"level": "error"' in next(line for line in logs.splitlines() if "exact.token.undecryptable" in line)
    consent_error = _consent_error(pipeline)
    assert consent_error is not None, "the connection is not parked"
    assert "rotate-key" in consent_error
    assert "connect" in consent_error
