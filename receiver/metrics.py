"""Prometheus metrics of one receiver app, in a registry of its own."""

from __future__ import annotations

from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter, Histogram

__all__ = ["ReceiverMetrics"]


@dataclass
class ReceiverMetrics:
    """One app's counters; `requests` is labelled by outcome (enqueued, duplicate, untracked, forged, ...)."""

    registry: CollectorRegistry
    requests: Counter
    enqueued: Counter
    duplicates: Counter
    unknown_actions: Counter
    unknown_topics: Counter
    latency: Histogram

    @classmethod
    def create(cls) -> ReceiverMetrics:
        registry = CollectorRegistry()
        return cls(
            registry=registry,
            requests=Counter("exact_webhook_requests", "Webhook requests by outcome", ["outcome"], registry=registry),
            enqueued=Counter("exact_webhook_events_enqueued", "Events handed to the workers", registry=registry),
            duplicates=Counter("exact_webhook_duplicates", "Duplicate deliveries answered 200", registry=registry),
            unknown_actions=Counter(
                "exact_webhook_unknown_actions", "Signed events whose Action is not Update or Delete", registry=registry
            ),
            unknown_topics=Counter(
                "exact_webhook_unknown_topics",
                "Signed events for a topic the catalogue has no webhook entry for (answered 200, not handed on)",
                ["topic"],
                registry=registry,
            ),
            latency=Histogram(
                "exact_webhook_handling_seconds",
                "Time to handle one webhook request",
                buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0),
                registry=registry,
            ),
        )
