"""Tokens, secrets and record contents never reach a log: a full run through a real worker, its logs grepped."""

from __future__ import annotations

import logging
import uuid

import pytest

from connections.models import Connection
from runtime.crypto import TokenCipher
from tests.pipeline import fresh_db
from tests.pipeline.harness import Pipeline

database_url, engine, session_factory = fresh_db.database_url, fresh_db.engine, fresh_db.session_factory


def _tokens(pipeline: Pipeline) -> list[str]:
    cipher = TokenCipher(pipeline.settings.secret("token_encryption_key"))
    with pipeline.sessions() as session:
        row = session.get(Connection, pipeline.connection_id)
        assert row is not None
        return [cipher.decrypt(row.access_token_enc), cipher.decrypt(row.refresh_token_enc)]


@pytest.mark.slow
def test_a_full_run_logs_no_token_secret_or_record_content(
    pipeline: Pipeline, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    pipeline.service.register([101], ["Contacts"])
    watched = set(_tokens(pipeline)) | set(pipeline.settings.secret_values())
    pipeline.start_worker()
    marker = f"private-{uuid.uuid4().hex}"
    for n in range(20):
        pipeline.control(
            "POST", "records/101/crm/Contacts", json={"LastName": f"{marker}-{n}", "Email": f"{marker}{n}@example.nl"}
        )
    pipeline.await_level([(101, "Contacts")])
    watched |= set(_tokens(pipeline))

    worker_logs = "".join(p.read_text(errors="replace") for p in sorted(pipeline.log_dir.glob("worker*.log")))
    receiver_logs = "\n".join(r.getMessage() + " " + str(vars(r)) for r in caplog.records)
    assert '"event": "' in worker_logs, "the worker logged nothing as JSON: the grep would prove nothing"
    assert "receiver.webhook" in receiver_logs
    for name, text in (("worker", worker_logs), ("receiver", receiver_logs)):
        leaked = [value[:6] + "…" for value in watched if value in text]
        assert not leaked, f"{name} logs hold secrets or tokens: {leaked}"
        assert marker not in text, f"{name} logs hold record contents"
