"""Replay's acceptance: a push target that lost its store is refilled from the mirror by `push replay`, to equal
the mirror, one latest version per key, without a single Exact call."""

from __future__ import annotations

import os

from sqlalchemy import select
from typer.testing import CliRunner

from cli.main import _mount, app
from delivery.changes import event_id_of
from delivery.models import MirrorRecord
from runtime.settings import get_settings
from tests.pipeline import fresh_db
from tests.pipeline.harness import Pipeline
from tests.pipeline.push_support import PushTarget

# A database of its own: every sandbox makes the same keys, so an earlier test's versions would shadow these.
database_url, engine, session_factory = fresh_db.database_url, fresh_db.engine, fresh_db.session_factory
PATHS = {"Accounts": "crm/Accounts", "Contacts": "crm/Contacts"}
PAIRS = [(d, t) for d in (101, 202) for t in PATHS]


def wipe(target: PushTarget) -> None:
    """The receiver loses its store, the ids it deduped by included."""
    with target._lock:
        target.accepted.clear()
        target.duplicates.clear()
        target._ids.clear()


def change_everything(pipeline: Pipeline) -> None:
    """In each pair: two records made, then one changed and one deleted (so the mirror holds a tombstone)."""
    made = {}
    for division, topic in PAIRS:
        path = f"records/{division}/{PATHS[topic]}"
        made[(division, topic)] = [
            pipeline.control("POST", path, json={"Name": f"n{i}", "FirstName": f"f{i}"}).json()["record"]["ID"]
            for i in range(2)
        ]
    pipeline.await_level(PAIRS)
    for (division, topic), (changed, deleted) in made.items():
        path = f"records/{division}/{PATHS[topic]}"
        assert pipeline.control("PUT", f"{path}/{changed}", json={"Description": "later"}).status_code == 200
        assert pipeline.control("DELETE", f"{path}/{deleted}").status_code == 204
    pipeline.await_level(PAIRS)


def test_a_wiped_receiver_is_refilled_to_equal_the_mirror_with_no_exact_call(pipeline: Pipeline) -> None:
    pipeline.service.register([101, 202], list(PATHS))
    pipeline.start_worker()
    change_everything(pipeline)
    with pipeline.sessions() as session:
        mirrored = list(session.scalars(select(MirrorRecord)))
    assert any(r.deleted for r in mirrored)
    calls = pipeline.calls()
    assert calls > 0  # the counter sees the pipeline's own reads

    wipe(pipeline.push)
    assert all(pipeline.pushed(d, t) == {} for d, t in PAIRS)
    _mount()
    get_settings.cache_clear()
    result = CliRunner().invoke(
        app, ["push", "replay", "--sink", "http"], env=pipeline.settings.child_environment(os.environ)
    )
    get_settings.cache_clear()
    assert result.exit_code == 0, result.output
    assert f"replayed {len(mirrored)} record(s)" in result.output

    pipeline.await_level(PAIRS)  # the mirror and the refilled receiver both equal the sandbox
    assert all(pipeline.pushed(d, t) == pipeline.mirror(d, t) for d, t in PAIRS)
    assert pipeline.calls() == calls
    # One push per mirrored key, of its latest version, under the id it was first sent with.
    lanes = pipeline.push.lanes()
    assert set(lanes) == {(r.division, r.topic, r.key) for r in mirrored}
    for r in mirrored:
        action = "Delete" if r.deleted else "Update"
        [received] = lanes[(r.division, r.topic, r.key)]
        assert received.webhook_id == event_id_of(r.division, r.topic, r.key, r.version, action)
        assert received.payload["data"]["action"] == action
