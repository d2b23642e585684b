"""Adaptive coalescing through a real worker: an idle lane's first change is fetched without waiting the window."""

from __future__ import annotations

from tests.pipeline import fresh_db
from tests.pipeline.harness import Pipeline

# A database of its own: every sandbox makes the same keys, so an earlier test's versions would shadow these.
database_url, engine, session_factory = fresh_db.database_url, fresh_db.engine, fresh_db.session_factory


def test_the_first_change_of_an_idle_lane_does_not_wait_the_window(pipeline: Pipeline) -> None:
    pipeline.service.register([101], ["Contacts"])
    # An hour's window: with a flush that waited it, nothing would arrive before `await_level` gives up.
    pipeline.settings = pipeline.settings.model_copy(update={"coalesce_window_seconds": 3600.0})
    pipeline.start_worker()
    pipeline.control("POST", "records/101/crm/Contacts", json={"FirstName": "at once"})
    pipeline.await_level([(101, "Contacts")])
    assert pipeline.calls(status=429) == 0
