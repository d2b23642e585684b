"""deploy/prometheus/alerts.yml is a valid rule file, and every metric it and the Grafana dashboard name exists."""

from __future__ import annotations

import json
import re
import shutil
import subprocess

import pytest
from prometheus_client import generate_latest

from receiver.metrics import ReceiverMetrics
from runtime.metrics import GaugeCollector, exposition
from runtime.settings import Settings
from tests.workers.metric_names import (
    DASHBOARD,
    RULES,
    exposed_names,
    metric_names,
    rule_and_dashboard_names,
    rules,
)
from workers.metrics import StateReader

_DURATION = re.compile(r"\d+[smhdwy]")
ALERTS = {
    "ExactConsentNeeded": "exact_pipeline_connection_needs_consent",
    "ExactSubscriptionSilent": "exact_pipeline_silent_subscriptions",
    "ExactDeadLetters": "exact_pipeline_dead_letters",
    "ExactLaneLagging": "exact_pipeline_lane_lag_seconds",
    "ExactDayBudgetSpent": "exact_pipeline_budget_left",
    "ExactReceiver5xx": "exact_webhook_requests_total",
}


def test_the_rule_file_has_prometheus_rule_schema() -> None:
    loaded = rules()
    assert loaded
    for rule in loaded:
        assert set(rule) <= {"alert", "expr", "for", "labels", "annotations"}, rule
        assert re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", rule["alert"])
        assert isinstance(rule["expr"], str)
        assert rule["expr"].strip()
        assert "for" not in rule or _DURATION.fullmatch(rule["for"])
        assert rule["labels"]["severity"] in {"warning", "critical"}
        assert rule["annotations"]["summary"]
        # Balanced brackets: the cheapest parse error to make by hand.
        for opening, closing in ("()", "{}", "[]"):
            assert rule["expr"].count(opening) == rule["expr"].count(closing), rule["alert"]


def test_every_alert_the_issue_asks_for_is_there() -> None:
    by_name = {rule["alert"]: metric_names(rule["expr"]) for rule in rules()}
    assert {alert: metric in by_name.get(alert, set()) for alert, metric in ALERTS.items()} == dict.fromkeys(
        ALERTS, True
    )


@pytest.mark.skipif(shutil.which("promtool") is None, reason="promtool (Debian's `prometheus`) is not installed")
def test_promtool_accepts_the_rule_file() -> None:
    run = subprocess.run(["promtool", "check", "rules", str(RULES)], capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stdout + run.stderr


def test_the_dashboard_is_grafana_json_with_a_query_per_panel() -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    ids = [panel["id"] for panel in dashboard["panels"]]
    assert len(ids) == len(set(ids))
    for panel in dashboard["panels"]:
        assert {"h", "w", "x", "y"} <= set(panel["gridPos"])
        assert panel["gridPos"]["x"] + panel["gridPos"]["w"] <= 24
        assert panel["targets"], panel["title"]
        assert all(metric_names(t["expr"]) for t in panel["targets"]), panel["title"]


def test_every_metric_named_is_exposed_by_the_worker_or_the_receiver(settings: Settings) -> None:
    worker = exposition(GaugeCollector(StateReader(settings))).decode()
    receiver = generate_latest(ReceiverMetrics.create().registry).decode()
    assert "exact_pipeline_state_up 1.0" in worker  # the state gauges were read, not only their fallback
    missing = rule_and_dashboard_names() - exposed_names(worker) - exposed_names(receiver)
    assert not missing, missing
