"""End to end, one pass per catalogue topic: creates, updates, line edits and deletes in two divisions reach the SQL
mirror and the verifying HTTP receiver, documents with their lines, through one real worker shared by the module."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import redis

from exact import CATALOGUE, Entity
from ops.levels import control_path, record_fields
from runtime.broker import producer
from runtime.contracts import DELTA_SYNC, EVENTS_QUEUE
from runtime.db import make_engine, make_session_factory
from sandbox.app import create_sandbox_app
from sandbox.config import SandboxConfig
from tests.conftest import REDIS_URL, ServerThread, make_settings
from tests.pipeline.fresh_db import fresh_database
from tests.pipeline.harness import Pipeline, running_pipeline

DIVISIONS = (101, 202)
# Words a record of any topic can take in a text field of its own; the first one the record has is edited.
_TEXT = ("Description", "Name", "Notes", "Remarks", "LastName", "YourRef", "ItemDescription", "JournalDescription")
_NUMBERS = ("CurrentStock", "Price", "Quantity", "AmountDC")


@pytest.fixture(scope="module")
def every_topic(tmp_path_factory: pytest.TempPathFactory, redis_prefix: str, encryption_key: str) -> Iterator[Pipeline]:
    """One sandbox, database, receiver and worker for all the topics: each pass registers its own topic."""
    tmp = tmp_path_factory.mktemp("every-topic")
    # A functional pass, not a budget test: 25 topics in two divisions would wait minutes on 60 calls a minute.
    app = create_sandbox_app(SandboxConfig(minute_limit=100_000, day_limit=1_000_000))
    with fresh_database(tmp) as url, ServerThread(app) as sandbox:
        sandbox.state = app.state.sandbox  # type: ignore[attr-defined]
        settings = make_settings(url, redis_prefix, encryption_key).model_copy(
            update={"rate_limit_per_minute": 100_000, "rate_limit_per_day": 1_000_000}
        )
        engine = make_engine(url)
        client = redis.Redis.from_url(REDIS_URL)
        try:
            with running_pipeline(settings, sandbox, make_session_factory(engine), client, tmp) as pipeline:
                pipeline.start_worker()
                yield pipeline
        finally:
            for key in client.scan_iter(f"{settings.redis_prefix}*"):
                client.delete(key)
            client.close()
            engine.dispose()


def _records(pipeline: Pipeline, division: int, path: str) -> list[dict[str, Any]]:
    return list(pipeline.control("GET", f"records/{division}/{path}").json()["records"])


def _edit(entity_fields: list[str], record: dict[str, Any], n: int) -> dict[str, Any]:
    """A field the record compares if it has one (else any it has: the document moves on all the same)."""
    text = next((f for f in _TEXT if f in entity_fields and f in record), None)
    text = text or next((f for f in _TEXT if f in record), None)
    if text is not None:
        return {text: f"edited {n}"}
    number = next(f for f in _NUMBERS if f in record)
    return {number: 40.0 + n}


def _line(entity: Entity, n: int) -> dict[str, Any]:
    assert entity.lines is not None
    line = {"Description": f"line {n}", "Quantity": float(n), "UnitPrice": 12.5, "AmountDC": 12.5 * n}
    return {k: v for k, v in line.items() if k in entity.lines.fields or k == "Quantity"}


def _churn(pipeline: Pipeline, entity: Entity, division: int) -> None:
    """A create, an update, and for a document a line edit and a line delete; then a delete (where Exact can say)."""
    path, key, compared = control_path(entity), entity.key, record_fields(entity)
    body: dict[str, Any] = {"Description": f"new in {division}"}
    if key == "Code":  # Currencies: the code is the key
        body["Code"] = f"X{division % 100:02d}"
    if entity.lines is not None:
        body[entity.lines.name] = [_line(entity, n) for n in (1, 2, 3)]
    created = pipeline.control("POST", f"records/{division}/{path}", json=body)
    assert created.status_code == 201, created.text
    new = created.json()["record"]
    edit = pipeline.control("PUT", f"records/{division}/{path}/{new[key]}", json=_edit(compared, new, 1))
    assert edit.status_code == 200, edit.text
    if entity.lines is not None:
        lines = [r for r in _records(pipeline, division, entity.lines.path) if r[key] == new[key]]
        assert len(lines) == 3
        line_edit = _edit(list(entity.lines.fields), lines[0], 2)
        edited = pipeline.control("PUT", f"records/{division}/{entity.lines.path}/{lines[0]['ID']}", json=line_edit)
        assert edited.status_code == 200, edited.text
        assert pipeline.control("DELETE", f"records/{division}/{entity.lines.path}/{lines[1]['ID']}").status_code == 204
    if entity.entity_types or entity.webhook:
        # Read-only lanes without an EntityType (VATCodes, Currencies) could never show a delete: neither a webhook
        # nor sync/Deleted tells of it (the README says so).
        victim = next(r for r in _records(pipeline, division, path) if r[key] != new[key])
        assert pipeline.control("DELETE", f"records/{division}/{path}/{victim[key]}").status_code == 204


@pytest.mark.parametrize("topic", CATALOGUE.topics())
def test_every_topic_reaches_the_mirror_and_the_push_target(every_topic: Pipeline, topic: str) -> None:
    pipeline, entity = every_topic, CATALOGUE.require(topic)
    pipeline.service.register(list(DIVISIONS), [topic])
    for division in DIVISIONS:
        _churn(pipeline, entity, division)
    if entity.sync_path is None or not entity.webhook:
        # A walk topic's webhooks fetch only what changed, and a lane has none: the delta sync brings the rest.
        app = producer(pipeline.settings)
        for division in DIVISIONS:
            app.send_task(DELTA_SYNC, args=[pipeline.connection_id, division, entity.topic], queue=EVENTS_QUEUE)
    pipeline.await_level([(d, entity.topic) for d in DIVISIONS], timeout=120)
    assert pipeline.push.rejected == 0
    if entity.lines is not None:
        documents = [r for r in pipeline.mirror(101, topic).values() if r["lines"]]
        assert documents
        assert all(
            [line["LineNumber"] for line in d["lines"]] == sorted(line["LineNumber"] for line in d["lines"])
            for d in documents
        )
