"""A real worker whose flush meets a connection needing consent pushes `System.consent_needed`, once per episode."""

from __future__ import annotations

from pydantic import SecretStr
from sqlalchemy import select

from delivery.models import Delivery, DeliveryState
from delivery.system_events import CONSENT_NEEDED, emit_consent_needed
from runtime.crypto import generate_key
from tests.pipeline import fresh_db
from tests.pipeline.harness import Pipeline
from tests.pipeline.push_support import await_true

database_url, engine, session_factory = fresh_db.database_url, fresh_db.engine, fresh_db.session_factory


def consent_pushes(pipeline: Pipeline) -> list[dict]:  # type: ignore[type-arg]
    wanted = f"exact.{CONSENT_NEEDED}.updated"
    return [a.payload for a in pipeline.push.accepted if a.payload["type"] == wanted]


def logs(pipeline: Pipeline) -> str:
    return "".join(p.read_text(errors="replace") for p in sorted(pipeline.log_dir.glob("worker*.log")))


def test_a_flush_that_meets_needs_consent_pushes_it_once(pipeline: Pipeline) -> None:
    pipeline.service.register([101], ["Contacts"])
    # A worker given only a new key opens none of the stored tokens: the connection is parked as needing consent.
    pipeline.settings = pipeline.settings.model_copy(update={"token_encryption_key": SecretStr(generate_key())})
    pipeline.start_worker()
    pipeline.control("POST", "records/101/crm/Contacts", json={"LastName": "Jansen"})
    await_true(lambda: bool(consent_pushes(pipeline)), timeout=60, what="the push", detail=lambda: logs(pipeline))
    [pushed] = consent_pushes(pipeline)
    assert pushed["data"]["record"]["connection"] == pipeline.connection_id
    assert "rotate-key" in pushed["data"]["record"]["error"]

    # Every later find of the same episode (another task meeting it, beat's check) pushes nothing more.
    assert emit_consent_needed(pipeline.settings, pipeline.sessions) == 0

    def logged() -> list[tuple[str, str]]:
        with pipeline.sessions() as session:
            rows = session.scalars(select(Delivery).where(Delivery.topic == CONSENT_NEEDED)).all()
            return [(r.sink, r.state) for r in rows]

    # The push is marked delivered just after the target answered.
    await_true(
        lambda: logged() == [("http", DeliveryState.DELIVERED)], what="one delivered row", detail=lambda: str(logged())
    )
