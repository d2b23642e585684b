"""Lost webhooks: the delta sync alone brings every change."""

from __future__ import annotations

import pytest

from tests.pipeline.harness import Pipeline


@pytest.mark.slow
def test_with_webhooks_lost_the_delta_sync_alone_levels_the_mirror(pipeline: Pipeline) -> None:
    pipeline.service.register([101, 202], ["Accounts", "PurchaseOrders"])
    pipeline.control("POST", "webhooks/config", json={"delivery": False})
    pipeline.settings = pipeline.settings.model_copy(update={"delta_sync_minutes": 0.05})  # every 3 s
    for division in (101, 202):
        pipeline.control("POST", f"records/{division}/crm/Accounts/bulk", json={"count": 20})
        key = pipeline.control("GET", f"records/{division}/crm/Accounts").json()["records"][0]["ID"]
        pipeline.control("DELETE", f"records/{division}/crm/Accounts/{key}")
        item = pipeline.control("GET", f"records/{division}/logistics/Items").json()["records"][0]["ID"]
        order = {"Description": "po", "PurchaseOrderLines": [{"Item": item, "Quantity": 1}]}  # a document has lines
        pipeline.control("POST", f"records/{division}/purchaseorder/PurchaseOrders", json=order)
    pipeline.start_worker(beat=True)
    pairs = [(d, t) for d in (101, 202) for t in ("Accounts", "PurchaseOrders")]
    pipeline.await_level(pairs, timeout=120)
    assert pipeline.control("GET", "webhooks").json()["stats"]["suppressed"] > 0
