"""TOPIC_FIELDS narrows what a lane reads, and a typo in it is refused at start; topics the catalogue lacks are
skipped loudly, never silently."""

from __future__ import annotations

import json
import logging
import uuid

import pytest
import redis
from sqlalchemy.orm import Session, sessionmaker

from exact import CATALOGUE
from runtime.settings import Settings
from sync.coalesce import Lane
from sync.context import WorkerContext
from sync.reading import InvalidTopicFields, Reading, topic_fields
from sync.tasks import fan_out, handle
from tests.conftest import ServerThread
from tests.pipeline import fresh_db
from tests.pipeline.connected import connect_to
from tests.sync.lanes import make_ctx, mirror, subscribe

database_url, engine, session_factory = fresh_db.database_url, fresh_db.engine, fresh_db.session_factory
NARROW = {"contacts": ["FirstName"], "SalesInvoices": ["InvoiceNumber", "Quantity"]}


def test_narrowed_topics_read_and_keep_only_those_fields_with_keys_and_versions(
    settings: Settings, sandbox: ServerThread, session_factory: sessionmaker[Session], redis_client: redis.Redis
) -> None:
    ctx = make_ctx(settings, sandbox, session_factory, redis_client, topic_fields=json.dumps(NARROW))
    connection_id = connect_to(ctx.settings)
    assert topic_fields(ctx.settings) == {"Contacts": ("FirstName",), "SalesInvoices": ("InvoiceNumber", "Quantity")}
    ctx.lane_sync(Lane(connection_id, 101, "Contacts")).walk()
    contacts = mirror(ctx, 101, "Contacts")
    assert contacts
    assert {frozenset(r) for r in contacts.values()} == {
        frozenset({"ID", "Division", "Modified", "Modifier", "Timestamp", "FirstName"})
    }
    ctx.lane_sync(Lane(connection_id, 101, "SalesInvoices")).walk()
    invoices = mirror(ctx, 101, "SalesInvoices")
    assert invoices
    assert {frozenset(r) for r in invoices.values()} == {
        frozenset({"InvoiceID", "Division", "Modified", "Modifier", "InvoiceNumber", "lines"})
    }
    lines = [line for r in invoices.values() for line in r["lines"]]
    assert {frozenset(line) for line in lines} == {frozenset({"ID", "Division", "Timestamp", "LineNumber", "Quantity"})}
    # A topic left out reads every field.
    assert Reading.of(CATALOGUE.require("Items")).select == tuple(CATALOGUE.require("Items").select())


@pytest.mark.parametrize(
    ("value", "named"),
    [
        ('{"Nonsense": ["Name"]}', "Nonsense"),
        ('{"Accounts": ["Name", "NoSuchField"]}', "NoSuchField"),
        ('{"SalesInvoices": ["Quantity", "Quantityy"]}', "Quantityy"),
        ("Accounts=Name", "not JSON"),
        ('{"Accounts": "Name"}', "field-name lists"),
    ],
)
def test_a_typo_in_topic_fields_stops_the_worker_context_naming_it(
    settings: Settings, session_factory: sessionmaker[Session], redis_client: redis.Redis, value: str, named: str
) -> None:
    bad = settings.model_copy(update={"topic_fields": value})
    with pytest.raises(InvalidTopicFields, match=named):
        WorkerContext(bad, session_factory, redis_client)


def test_lanes_and_events_of_unknown_topics_are_skipped_with_a_warning(
    settings: Settings,
    sandbox: ServerThread,
    session_factory: sessionmaker[Session],
    redis_client: redis.Redis,
    caplog: pytest.LogCaptureFixture,
) -> None:
    ctx = make_ctx(settings, sandbox, session_factory, redis_client)
    connection_id = connect_to(ctx.settings)
    subscribe(session_factory, connection_id, 101, ("Contacts", "PayrollRuns"))
    caplog.set_level(logging.INFO)
    started: list[Lane] = []
    fan_out(ctx, lambda lane, _full: started.append(lane))
    assert [lane.topic for lane in started if lane.connection_id == connection_id] == ["Contacts"]
    [skipped] = [r for r in caplog.records if r.getMessage() == "workers.delta_sync.unknown_topic"]
    assert (skipped.levelno, vars(skipped)["topic"]) == (logging.WARNING, "PayrollRuns")
    event = {"division": 101, "topic": "PayrollRuns", "key": str(uuid.uuid4()), "action": "Update"}
    assert handle(ctx, event, lambda lane, _countdown: started.append(lane)) == "unknown-topic"
    [dropped] = [r for r in caplog.records if r.getMessage() == "workers.event.unknown_topic"]
    assert dropped.levelno == logging.WARNING
