"""End to end: changes in the sandbox reach the SQL mirror and the signed HTTP push, through a real worker."""

from __future__ import annotations

import random
from typing import Any

import pytest

from exact import CATALOGUE
from tests.pipeline import fresh_db
from tests.pipeline.harness import Pipeline

# A database of its own: every sandbox makes the same keys, so an earlier test's versions would shadow these.
database_url, engine, session_factory = fresh_db.database_url, fresh_db.engine, fresh_db.session_factory
PAIRS = [(d, t) for d in (101, 202) for t in ("Accounts", "Contacts", "PurchaseOrders")]
PATHS = {"Accounts": "crm/Accounts", "Contacts": "crm/Contacts", "PurchaseOrders": "purchaseorder/PurchaseOrders"}


def _body(pipeline: Pipeline, division: int, topic: str, n: int) -> dict[str, Any]:
    body: dict[str, Any] = {"Name": f"n{n}", "FirstName": f"f{n}", "Description": f"d{n}", "Currency": "EUR"}
    if topic == "PurchaseOrders":  # a document: Exact keeps none without lines
        item = pipeline.control("GET", f"records/{division}/logistics/Items").json()["records"][0]["ID"]
        body["PurchaseOrderLines"] = [{"Item": item, "Quantity": 2, "Description": f"l{n}"}]
    return body


@pytest.mark.slow
def test_500_changes_across_2_divisions_and_3_topics(pipeline: Pipeline) -> None:
    pipeline.service.register([101, 202], ["Accounts", "Contacts", "PurchaseOrders"])
    pipeline.start_worker()
    rng = random.Random(7)
    made: dict[tuple[int, str], list[str]] = {pair: [] for pair in PAIRS}
    changes = 0
    while changes < 500:
        division, topic = rng.choice(PAIRS)
        path, keys = PATHS[topic], made[(division, topic)]
        roll = rng.random()
        if keys and roll < 0.25:
            key = keys.pop(rng.randrange(len(keys)))
            assert pipeline.control("DELETE", f"records/{division}/{path}/{key}").status_code == 204
        elif keys and roll < 0.6:
            key = rng.choice(keys)
            fields = {"Description": f"u{changes}", "Email": f"u{changes}@x.nl", "LastName": f"u{changes}"}
            assert pipeline.control("PUT", f"records/{division}/{path}/{key}", json=fields).status_code == 200
        else:
            body = _body(pipeline, division, topic, changes)
            record = pipeline.control("POST", f"records/{division}/{path}", json=body).json()["record"]
            keys.append(record[CATALOGUE.require(topic).key])
        changes += 1
    # Every topic has a sync resource: the mirror levels with every record, the seeded ones included.
    pipeline.await_level(PAIRS)
    assert pipeline.push.rejected == 0
    for lane, received in pipeline.push.lanes().items():
        versions = [a.version for a in received]
        assert versions == sorted(versions), f"out of order for {lane}"


@pytest.mark.slow
def test_a_burst_of_1000_costs_at_most_5_calls(pipeline: Pipeline) -> None:
    pipeline.service.register([101], ["Contacts"])
    # The production window: with the harness's 0.5 s, a loaded machine spreads one burst's webhooks over more
    # windows than the burst is long, and the count would measure the machine instead of the coalescing.
    pipeline.settings = pipeline.settings.model_copy(update={"coalesce_window_seconds": 2.0})
    pipeline.start_worker()
    # A first change makes the first flush walk from cursor 0, which loads the seeded records.
    pipeline.control("POST", "records/101/crm/Contacts", json={"FirstName": "first"})
    pipeline.await_level([(101, "Contacts")])
    before = pipeline.calls(division=101)
    assert pipeline.control("POST", "records/101/crm/Contacts/bulk", json={"count": 1000}).status_code == 201
    pipeline.await_level([(101, "Contacts")])
    spent = pipeline.calls(division=101) - before
    assert spent <= 5, f"{spent} Exact calls for 1,000 changes"
    assert pipeline.calls(status=429) == 0
