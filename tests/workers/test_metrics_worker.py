"""A real worker's /metrics: its Exact calls equal the sandbox's counts per division, summed over its pool; beat's
/metrics: the state gauges."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import httpx
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import func, select

from delivery.models import Delivery, DeliveryState
from ops.demo_summary import DIVISIONS, TOPICS
from runtime.settings import Settings
from tests.pipeline import fresh_db
from tests.pipeline.harness import Pipeline
from tests.workers.metric_names import exposed_names, rule_and_dashboard_names

database_url, engine, session_factory = fresh_db.database_url, fresh_db.engine, fresh_db.session_factory
CHANGED = [(d, t) for d in DIVISIONS for t in ("Accounts", "Contacts")]
PATHS = {"Accounts": "crm/Accounts", "Contacts": "crm/Contacts"}


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _scrape(url: str, deadline: float) -> str:
    while True:
        try:
            return httpx.get(url, timeout=10).text
        except httpx.TransportError:
            assert time.monotonic() < deadline, f"nothing serves {url}"
            time.sleep(0.2)


def _worker_calls(text: str) -> Counter[tuple[str, str, str]]:
    return Counter(
        {
            (s.labels["division"], s.labels["endpoint"], s.labels["status"]): int(s.value)
            for family in text_string_to_metric_families(text)
            for s in family.samples
            if s.name == "exact_api_calls_total"
        }
    )


def _sandbox_calls(pipeline: Pipeline) -> Counter[tuple[str, str, str]]:
    calls: Counter[tuple[str, str, str]] = Counter()
    for row in pipeline.control("GET", "calls").json()["calls"]:
        division = "none" if row["division"] is None else str(row["division"])
        calls[(division, row["endpoint"], str(row["status"]))] += int(row["count"])
    return calls


def _by_division(calls: Counter[tuple[str, str, str]]) -> dict[str, int]:
    totals: Counter[str] = Counter()
    for (division, _endpoint, _status), count in calls.items():
        totals[division] += count
    return dict(totals)


def _sample(text: str, name: str, **labels: str) -> float | None:
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            if s.name == name and all(s.labels.get(k) == v for k, v in labels.items()):
                return s.value
    return None


def test_a_workers_calls_equal_the_sandboxs_counts_per_division(pipeline: Pipeline) -> None:
    pipeline.service.register(list(DIVISIONS), list(TOPICS))
    # The test's own set-up calls are not the worker's.
    assert pipeline.control("POST", "calls/reset").status_code == 200
    port = _free_port()
    pipeline.settings = pipeline.settings.model_copy(update={"worker_metrics_port": port})
    pipeline.start_worker()
    url = f"http://127.0.0.1:{port}/metrics"
    deadline = time.monotonic() + 60
    _scrape(url, deadline)
    # One 429 on the way, to be counted on both sides too; the client waits out its one-second reset.
    limited = {"kind": "429", "endpoint": "*", "division": DIVISIONS[1], "count": 1, "window_seconds": 1}
    assert pipeline.control("POST", "faults", json=limited).is_success
    for division in DIVISIONS:
        for n in range(2):
            pipeline.control("POST", f"records/{division}/crm/Accounts", json={"Name": f"metrics {n}"})
        pipeline.control("POST", f"records/{division}/crm/Contacts", json={"FirstName": "metrics"})
        key = pipeline.control("GET", f"records/{division}/crm/Accounts").json()["records"][0]["ID"]
        assert pipeline.control("PUT", f"records/{division}/crm/Accounts/{key}", json={"Name": "again"}).is_success
    pipeline.await_level(CHANGED)

    # A flush may still be finishing a call the sandbox has answered: wait until both sides have seen it.
    while True:
        text, expected = _scrape(url, deadline), _sandbox_calls(pipeline)
        if _worker_calls(text) == expected:
            break
        assert time.monotonic() < deadline, f"worker {dict(_worker_calls(text))} != sandbox {dict(expected)}"
        time.sleep(0.3)
    totals = _by_division(_worker_calls(text))
    assert totals == _by_division(expected)
    assert all(totals.get(str(d), 0) > 0 for d in DIVISIONS), totals
    assert _sample(text, "exact_api_rate_limited_total", division=str(DIVISIONS[1])) == 1
    assert sum(n for (d, _e, status), n in expected.items() if status == "429") == 1

    with pipeline.sessions() as session:
        delivered = session.scalar(
            select(func.count()).where(Delivery.sink == "http", Delivery.state == DeliveryState.DELIVERED)
        )
    assert delivered
    while _sample(text, "exact_pipeline_deliveries_total", sink="http", state="delivered") != delivered:
        assert time.monotonic() < deadline, "the worker's delivered count never reached the table's"
        time.sleep(0.3)
        text = _scrape(url, deadline)
    for division in DIVISIONS:
        left = _sample(text, "exact_pipeline_budget_left", division=str(division), window="day")
        limit = _sample(text, "exact_pipeline_budget_limit", division=str(division), window="day")
        assert left is not None
        assert limit is not None
        assert left < limit  # today's calls are spent
    assert _sample(text, "exact_pipeline_state_up") == 1

    # Every metric the alert rules and the dashboard name is served by the worker or the receiver.
    receiver = httpx.get(f"{pipeline.settings.public_url}/metrics", timeout=10).text
    missing = rule_and_dashboard_names() - exposed_names(text) - exposed_names(receiver)
    assert not missing, missing


def test_beat_serves_the_state_gauges_alone(settings: Settings, tmp_path: Path) -> None:
    port = _free_port()
    env = settings.model_copy(update={"beat_metrics_port": port}).child_environment(os.environ)
    schedule = str(tmp_path / "beat-schedule")
    command = [sys.executable, "-m", "celery", "-A", "workers.celery_app", "beat", "--schedule", schedule]
    beat = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        text = _scrape(f"http://127.0.0.1:{port}/metrics", time.monotonic() + 60)
    finally:
        beat.kill()
        beat.wait(timeout=30)
    names = exposed_names(text)
    assert _sample(text, "exact_pipeline_state_up") == 1
    assert {"exact_pipeline_dead_letters", "exact_pipeline_commands", "exact_pipeline_queue_depth"} <= names
    assert "exact_api_calls_total" not in names  # beat calls no API: its counters would only ever read zero
