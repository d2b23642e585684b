"""The metric names the alert rules and the Grafana dashboard use, and those an exposition serves."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml
from prometheus_client.parser import text_string_to_metric_families

ROOT = Path(__file__).resolve().parents[2]
RULES = ROOT / "deploy" / "prometheus" / "alerts.yml"
DASHBOARD = ROOT / "deploy" / "grafana" / "exact-pipeline.json"

_KEYWORDS = {"by", "without", "on", "ignoring", "group_left", "group_right", "and", "or", "unless", "bool", "offset"}
_STRIP = (
    re.compile(r'"(?:[^"\\]|\\.)*"'),  # strings (label values, quantiles of humanize…)
    re.compile(r"\{[^}]*\}"),  # label matchers
    re.compile(r"\[[^\]]*\]"),  # range selectors
    re.compile(r"\b(?:by|without|on|ignoring)\s*\([^)]*\)"),  # label lists
)
_NAME = re.compile(r"\b([a-zA-Z_:][a-zA-Z0-9_:]*)\b(?!\s*\()")
_SUFFIXES = {"counter": ("_total",), "histogram": ("_bucket", "_sum", "_count"), "summary": ("_sum", "_count")}


def metric_names(expr: str) -> set[str]:
    """The metric names of a PromQL expression: what is left once strings, matchers, ranges, label lists and
    function calls are taken out."""
    for pattern in _STRIP:
        expr = pattern.sub(" ", expr)
    return {name for name in _NAME.findall(expr) if name not in _KEYWORDS and not re.fullmatch(r"\d\w*", name)}


def rules() -> list[dict[str, Any]]:
    return [rule for group in yaml.safe_load(RULES.read_text())["groups"] for rule in group["rules"]]


def dashboard_exprs() -> Iterator[str]:
    for panel in json.loads(DASHBOARD.read_text())["panels"]:
        for target in panel.get("targets", []):
            yield str(target["expr"])


def rule_and_dashboard_names() -> set[str]:
    exprs = [str(rule["expr"]) for rule in rules()] + list(dashboard_exprs())
    return {name for expr in exprs for name in metric_names(expr)}


def exposed_names(text: str) -> set[str]:
    """Every sample name an exposition can hold, a labelled family with no sample yet included."""
    names: set[str] = set()
    for family in text_string_to_metric_families(text):
        names.add(family.name)
        names.update(family.name + suffix for suffix in _SUFFIXES.get(family.type, ()))
        names.update(s.name for s in family.samples)
    return names
