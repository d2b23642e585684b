"""End to end: changes in the sandbox reach the SQL mirror and the signed HTTP push, through a real worker."""

from __future__ import annotations

import random

import pytest

from tests.pipeline import fresh_db
from tests.pipeline.harness import Pipeline

# A database of its own: every sandbox makes the same keys, so an earlier test's versions would shadow these.
database_url, engine, session_factory = fresh_db.database_url, fresh_db.engine, fresh_db.session_factory
PAIRS = [(d, t) for d in (101, 202) for t in ("Accounts", "Contacts", "PurchaseOrders")]
PATHS = {"Accounts": "crm/Accounts", "Contacts": "crm/Contacts", "PurchaseOrders": "purchaseorder/PurchaseOrders"}


@pytest.mark.slow
def test_500_changes_across_2_divisions_and_3_topics(pipeline: Pipeline) -> None:
    pipeline.service.register([101, 202], ["Accounts", "Contacts", "PurchaseOrders"])
    pipeline.start_worker()
    rng = random.Random(7)
    made: dict[tuple[int, str], list[str]] = {pair: [] for pair in PAIRS}
    touched: dict[tuple[int, str], set[str]] = {pair: set() for pair in PAIRS if pair[1] == "PurchaseOrders"}
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
            body = {"Name": f"n{changes}", "FirstName": f"f{changes}", "Description": f"d{changes}", "Currency": "EUR"}
            keys.append(pipeline.control("POST", f"records/{division}/{path}", json=body).json()["record"]["ID"])
            if (division, topic) in touched:
                touched[(division, topic)].add(keys[-1])
        changes += 1
    # Purchase orders have no sync endpoint: the mirror holds the ones whose webhooks arrived, not the seeded ones.
    pipeline.await_level(PAIRS, only=touched)
    assert pipeline.push.rejected == 0
    for lane, received in pipeline.push.lanes().items():
        versions = [a.version for a in received]
        assert versions == sorted(versions), f"out of order for {lane}"


@pytest.mark.slow
def test_a_burst_of_1000_costs_at_most_5_calls(pipeline: Pipeline) -> None:
    pipeline.service.register([101], ["Contacts"])
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
