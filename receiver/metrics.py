"""Prometheus metrics of one receiver app, in a registry of its own: plain counts, exported at scrape time."""

from __future__ import annotations

import bisect
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry
from prometheus_client import metrics as _prometheus_metrics
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString

__all__ = ["Count", "LabelledCount", "ReceiverMetrics", "Timing"]

# A prometheus_client Counter or Histogram takes a lock per update (about 1.5 µs of a webhook's 3 updates). These are
# updated from the event loop's thread only, so a plain number each does, and the collector below writes the very
# exposition prometheus_client's Counter and Histogram would (values, order, `_created` series).
_LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0)


@dataclass
class Count:
    """A counter's value and creation time."""

    value: float = 0.0
    created: float = field(default_factory=time.time)

    def inc(self, amount: float = 1.0) -> None:
        self.value += amount


@dataclass
class LabelledCount:
    """A counter with one label; a child appears at its first `labels(value)`, as prometheus_client's."""

    name: str
    documentation: str
    label: str
    children: dict[str, Count] = field(default_factory=dict)

    def labels(self, value: str) -> Count:
        child = self.children.get(value)
        if child is None:
            child = self.children[value] = Count()
        return child


@dataclass
class Timing:
    """A histogram: per-bucket counts (cumulated at scrape time), the sum and the creation time."""

    bounds: tuple[float, ...] = _LATENCY_BUCKETS
    counts: list[float] = field(default_factory=list)
    total: float = 0.0
    created: float = field(default_factory=time.time)

    def __post_init__(self) -> None:
        self.counts = [0.0] * (len(self.bounds) + 1)  # the last is +Inf

    def observe(self, amount: float) -> None:
        self.total += amount
        self.counts[bisect.bisect_left(self.bounds, amount)] += 1.0  # the first bound >= amount, as Histogram's


@dataclass
class ReceiverMetrics:
    """One app's counters; `requests` is labelled by outcome (enqueued, duplicate, untracked, forged, ...)."""

    registry: CollectorRegistry
    requests: LabelledCount
    enqueued: Count
    duplicates: Count
    unknown_actions: Count
    unknown_topics: LabelledCount
    latency: Timing

    def outcome(self, outcome: str) -> Count:
        return self.requests.labels(outcome)

    @classmethod
    def create(cls) -> ReceiverMetrics:
        metrics = cls(
            registry=CollectorRegistry(),
            requests=LabelledCount("exact_webhook_requests", "Webhook requests by outcome", "outcome"),
            enqueued=Count(),
            duplicates=Count(),
            unknown_actions=Count(),
            unknown_topics=LabelledCount(
                "exact_webhook_unknown_topics",
                "Signed events for a topic the catalogue has no webhook entry for (answered 200, not handed on)",
                "topic",
            ),
            latency=Timing(),
        )
        metrics.registry.register(_Exported(metrics))
        return metrics


class _Exported(Collector):
    """The families in the order the Counters and the Histogram were registered in."""

    def __init__(self, metrics: ReceiverMetrics) -> None:
        self._metrics = metrics

    def collect(self) -> Iterator[Metric]:
        m = self._metrics
        yield _labelled(m.requests)
        yield _counter("exact_webhook_events_enqueued", "Events handed to the workers", m.enqueued)
        yield _counter("exact_webhook_duplicates", "Duplicate deliveries answered 200", m.duplicates)
        yield _counter(
            "exact_webhook_unknown_actions", "Signed events whose Action is not Update or Delete", m.unknown_actions
        )
        yield _labelled(m.unknown_topics)
        yield _histogram("exact_webhook_handling_seconds", "Time to handle one webhook request", m.latency)


def _created() -> bool:
    """prometheus_client's switch for `_created` series (PROMETHEUS_DISABLE_CREATED_SERIES)."""
    return bool(getattr(_prometheus_metrics, "_use_created", True))


def _counter(name: str, documentation: str, count: Count) -> Metric:
    metric = Metric(name, documentation, "counter")
    _add_count(metric, {}, count)
    return metric


def _labelled(counts: LabelledCount) -> Metric:
    metric = Metric(counts.name, counts.documentation, "counter")
    for value, count in list(counts.children.items()):
        _add_count(metric, {counts.label: value}, count)
    return metric


def _add_count(metric: Metric, labels: dict[str, str], count: Count) -> None:
    metric.add_sample(metric.name + "_total", labels, count.value)
    if _created():
        metric.add_sample(metric.name + "_created", labels, count.created)


def _histogram(name: str, documentation: str, timing: Timing) -> Metric:
    metric = Metric(name, documentation, "histogram")
    acc = 0.0
    for bound, count in zip((*timing.bounds, float("inf")), list(timing.counts), strict=True):
        acc += count
        le = floatToGoString(bound)  # type: ignore[no-untyped-call]  # untyped in prometheus_client
        metric.add_sample(name + "_bucket", {"le": le}, acc)
    metric.add_sample(name + "_count", {}, acc)
    metric.add_sample(name + "_sum", {}, timing.total)
    if _created():
        metric.add_sample(name + "_created", {}, timing.created)
    return metric
