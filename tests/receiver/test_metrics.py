"""The receiver's plain counts export the very text prometheus_client's Counter and Histogram would."""

from __future__ import annotations

import re

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest

from receiver.metrics import ReceiverMetrics

# Observations on both sides of every bucket bound, one exactly on a bound, one past the last.
LATENCIES = (0.0002, 0.001, 0.003, 0.02, 0.07, 0.3, 0.9, 2.5, 0.0049)


def _reference() -> tuple[CollectorRegistry, dict[str, Counter], Histogram]:
    """The metrics as they were, prometheus_client's own classes."""
    registry = CollectorRegistry()
    counters = {
        "requests": Counter("exact_webhook_requests", "Webhook requests by outcome", ["outcome"], registry=registry),
        "enqueued": Counter("exact_webhook_events_enqueued", "Events handed to the workers", registry=registry),
        "duplicates": Counter("exact_webhook_duplicates", "Duplicate deliveries answered 200", registry=registry),
        "unknown_actions": Counter(
            "exact_webhook_unknown_actions", "Signed events whose Action is not Update or Delete", registry=registry
        ),
        "unknown_topics": Counter(
            "exact_webhook_unknown_topics",
            "Signed events for a topic the catalogue has no webhook entry for (answered 200, not handed on)",
            ["topic"],
            registry=registry,
        ),
    }
    latency = Histogram(
        "exact_webhook_handling_seconds",
        "Time to handle one webhook request",
        buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0),
        registry=registry,
    )
    return registry, counters, latency


def _masked(text: bytes) -> str:
    """The exposition with the creation timestamps' values blanked: the one thing that differs between two runs."""
    return re.sub(r"^(\S+_created(?:\{[^}]*\})?) \S+$", r"\1 T", text.decode(), flags=re.MULTILINE)


def test_the_exposition_is_prometheus_clients() -> None:
    registry, counters, latency = _reference()
    metrics = ReceiverMetrics.create()
    assert _masked(generate_latest(metrics.registry)) == _masked(generate_latest(registry))  # nothing counted yet
    for outcome in ("enqueued", "enqueued", "forged", "duplicate", "enqueued"):
        metrics.outcome(outcome).inc()
        counters["requests"].labels(outcome).inc()
    for name in ("enqueued", "duplicates", "unknown_actions"):
        getattr(metrics, name).inc()
        counters[name].inc()
    metrics.enqueued.inc()
    counters["enqueued"].inc()
    for topic in ("NotATopic", 'Odd "topic"\n', "NotATopic"):
        metrics.unknown_topics.labels(topic).inc()
        counters["unknown_topics"].labels(topic).inc()
    for seconds in LATENCIES:
        metrics.latency.observe(seconds)
        latency.observe(seconds)
    exposed = _masked(generate_latest(metrics.registry))
    assert exposed == _masked(generate_latest(registry))
    assert 'exact_webhook_requests_total{outcome="enqueued"} 3.0' in exposed
    assert 'exact_webhook_handling_seconds_bucket{le="0.005"} 4.0' in exposed
