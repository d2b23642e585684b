"""Routing through the whole pipeline: named sinks of SINKS_FILE, each with its topic and division filters, get
exactly the changes their filters admit (delivery rows and pushes), beside PUSH_URL's sink `http`, which takes all."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from delivery.models import Delivery
from tests.pipeline.harness import Pipeline
from tests.pipeline.push_support import PushTarget, await_true
from tests.pipeline.sinks_support import serve_targets, write_sinks_file

pytestmark = pytest.mark.timeout(240)

ROUTES: dict[str, dict[str, Any]] = {
    "every": {},
    "accounts": {"topics": ["Accounts"]},
    "d101": {"divisions": [101]},
    "accounts101": {"topics": ["Accounts"], "divisions": [101]},
    "accounts202": {"topics": ["Accounts"], "divisions": [202]},
    "contacts202": {"topics": ["Contacts"], "divisions": [202]},
    "items": {"topics": ["Items"]},
}


def admits(route: dict[str, Any], division: int, topic: str) -> bool:
    return topic in route.get("topics", [topic]) and division in route.get("divisions", [division])


@pytest.fixture
def targets(pipeline: Pipeline, tmp_path: Path) -> Iterator[dict[str, PushTarget]]:
    with serve_targets(ROUTES) as (server, targets):
        path = write_sinks_file(tmp_path / "sinks.toml", server.url, ROUTES)
        pipeline.settings = pipeline.settings.model_copy(update={"sinks_file": str(path)})
        yield targets


def change(pipeline: Pipeline, division: int, path: str, fields: dict[str, Any]) -> dict[str, Any]:
    record = pipeline.control("GET", f"records/{division}/{path}").json()["records"][0]
    assert pipeline.control("PUT", f"records/{division}/{path}/{record['ID']}", json=fields).status_code == 200
    [after] = [
        r for r in pipeline.control("GET", f"records/{division}/{path}").json()["records"] if r["ID"] == record["ID"]
    ]
    return dict(after)


def received(target: PushTarget, division: int, topic: str, key: str, field: str, value: str) -> list[dict[str, Any]]:
    """The pushes of one record that carry `field` = `value`: the version the test made."""
    lane = target.lanes().get((division, topic, key), [])
    return [a.payload["data"] for a in lane if (a.payload["data"]["record"] or {}).get(field) == value]


def sinks_with_rows(pipeline: Pipeline, key: str) -> set[str]:
    with pipeline.sessions() as session:
        return set(session.scalars(select(Delivery.sink).where(Delivery.key == key.lower()).distinct()))


@pytest.mark.parametrize(
    ("division", "topic", "path", "fields"),
    [
        pytest.param(101, "Accounts", "crm/Accounts", {"City": "Routed"}, id="101-Accounts"),
        pytest.param(202, "Contacts", "crm/Contacts", {"City": "Routed"}, id="202-Contacts"),
    ],
)
def test_a_change_reaches_exactly_the_sinks_whose_filters_admit_it(
    pipeline: Pipeline,
    targets: dict[str, PushTarget],
    division: int,
    topic: str,
    path: str,
    fields: dict[str, Any],
) -> None:
    pipeline.service.register([101, 202], ["Accounts", "Contacts"])
    pipeline.start_worker()
    record = change(pipeline, division, path, fields)
    key = str(record["ID"]).lower()
    admitted = {name for name, route in ROUTES.items() if admits(route, division, topic)}
    assert admitted
    assert admitted != set(ROUTES)  # the filters both take and leave out

    everyone = {"http": pipeline.push, **{name: targets[name] for name in admitted}}
    await_true(
        lambda: all(received(t, division, topic, key, "City", "Routed") for t in everyone.values()),
        timeout=120,
        what=f"the change to reach {sorted(everyone)}",
    )
    # One transaction logged the change for every sink it routes to: the rows are all there, and only there.
    assert sinks_with_rows(pipeline, key) == {"http", *admitted}
    for name in everyone:
        [data] = received(everyone[name], division, topic, key, "City", "Routed")
        assert data["origin"] == {"kind": "exact", "modifier": record["Modifier"]}
    # Nothing any sink took lies outside its filters: the first flush also brought every seeded record of the lane.
    for name, target in targets.items():
        lanes = target.lanes()
        assert all(admits(ROUTES[name], d, t) for d, t, _ in lanes), (name, sorted({(d, t) for d, t, _ in lanes}))
    with pipeline.sessions() as session:
        logged = session.execute(select(Delivery.sink, Delivery.division, Delivery.topic).distinct()).all()
    assert all(sink == "http" or admits(ROUTES[sink], d, t) for sink, d, t in logged)
