"""The workers' Prometheus metrics, multiprocess-safe under the prefork pool; the one user of prometheus_client."""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from wsgiref.simple_server import WSGIServer

import httpx
from prometheus_client import (
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
    multiprocess,
    start_http_server,
    values,
)
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

__all__ = [
    "MULTIPROC_ENV",
    "GaugeCollector",
    "GaugeFamily",
    "count_exact_call",
    "enable_multiprocess",
    "exact_call_labels",
    "exposition",
    "mark_process_dead",
    "record_deliveries",
    "record_flush",
    "serve",
]

# prometheus_client's own switch: every process of a worker writes its samples to files in this directory.
MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
_API_PATH = re.compile(r"^/api/v1/(?:(?P<division>\d+)/)?(?P<path>.+)$")
# A keyed call counts under its collection, as the sandbox and Exact's error budget count it.
_KEY_SUFFIX = re.compile(r"\((?:guid)?'[^']*'\)$")
_SIZES = (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000)


@dataclass(frozen=True)
class _Metrics:
    registry: CollectorRegistry
    calls: Counter
    rate_limited: Counter
    flush_keys: Histogram
    flush_changes: Histogram
    deliveries: Counter


@cache
def _metrics() -> _Metrics:
    # Built on first use, so that a process that enabled multiprocess mode first writes every sample to its files.
    registry = CollectorRegistry()
    return _Metrics(
        registry=registry,
        calls=Counter(
            "exact_api_calls",
            "Calls to Exact's /api/v1, by division, endpoint and status (429s and retries included)",
            ["division", "endpoint", "status"],
            registry=registry,
        ),
        rate_limited=Counter(
            "exact_api_rate_limited", "Calls Exact answered 429, by division", ["division"], registry=registry
        ),
        flush_keys=Histogram(
            "exact_pipeline_flush_keys",
            "Keys one lane flush fetched (webhook events coalesced per key)",
            ["topic"],
            buckets=_SIZES,
            registry=registry,
        ),
        flush_changes=Histogram(
            "exact_pipeline_flush_changes",
            "Changes one lane flush handed to the outbox",
            ["topic"],
            buckets=_SIZES,
            registry=registry,
        ),
        deliveries=Counter(
            "exact_pipeline_deliveries",
            "Deliveries that reached a final state, by sink and state (delivered, superseded, dead)",
            ["sink", "state"],
            registry=registry,
        ),
    )


@dataclass
class GaugeFamily:
    """One gauge read at scrape time: its samples as (label values, value)."""

    name: str
    documentation: str
    labels: tuple[str, ...] = ()
    samples: list[tuple[tuple[str, ...], float]] = field(default_factory=list)


class GaugeCollector(Collector):
    """Gauges computed when Prometheus scrapes: state that lives in the database and Redis, not in a process."""

    def __init__(self, read: Callable[[], list[GaugeFamily]]) -> None:
        self._read = read

    def collect(self) -> Iterator[Metric]:
        for family in self._read():
            gauge = GaugeMetricFamily(family.name, family.documentation, labels=list(family.labels))
            for labels, value in family.samples:
                gauge.add_metric(list(labels), value)
            yield gauge


def enable_multiprocess(directory: Path) -> None:
    """Write this process's samples, and those of every child it forks later, to files in `directory`.

    Call it before any sample is taken (the worker's main process, before the pool forks): prometheus_client picks
    its value class when it is imported, so the switch is made here as well as in the environment children inherit.
    """
    directory.mkdir(parents=True, exist_ok=True)
    os.environ[MULTIPROC_ENV] = str(directory)
    values.ValueClass = values.MultiProcessValue()  # type: ignore[no-untyped-call]
    _metrics.cache_clear()


def mark_process_dead(pid: int, directory: Path) -> None:
    """A pool child exited: drop its live gauges (its counters stay in the sums)."""
    multiprocess.mark_process_dead(pid, str(directory))  # type: ignore[no-untyped-call]


def serve(port: int, directory: Path | None, *collectors: Collector, addr: str = "0.0.0.0") -> WSGIServer:
    """Serve `/metrics` in a thread: the samples of every process writing to `directory`, and `collectors`."""
    registry = CollectorRegistry()
    if directory is not None:
        multiprocess.MultiProcessCollector(registry, path=str(directory))  # type: ignore[no-untyped-call]
    for collector in collectors:
        registry.register(collector)
    server, _thread = start_http_server(port, addr=addr, registry=registry)
    return server


def exposition(*collectors: Collector) -> bytes:
    """This process's own samples and `collectors` in the text format, without serving them (single-process use)."""
    registry = CollectorRegistry()
    registry.register(_metrics().registry)
    for collector in collectors:
        registry.register(collector)
    return generate_latest(registry)


def exact_call_labels(url: httpx.URL) -> tuple[str, str] | None:
    """(division, endpoint) of an `/api/v1` call, as the sandbox counts it; None for any other URL."""
    match = _API_PATH.match(url.path)
    if match is None:
        return None
    return match["division"] or "none", _KEY_SUFFIX.sub("", match["path"])


def count_exact_call(response: httpx.Response) -> None:
    """An httpx response hook: one answered call to Exact, by division, endpoint and status."""
    labels = exact_call_labels(response.request.url)
    if labels is None:
        return
    division, endpoint = labels
    metrics = _metrics()
    metrics.calls.labels(division, endpoint, str(response.status_code)).inc()
    if response.status_code == 429:
        metrics.rate_limited.labels(division).inc()


def record_flush(topic: str, keys: int, changes: int) -> None:
    """One lane flush: how many keys its events named and how many changes it accepted."""
    metrics = _metrics()
    metrics.flush_keys.labels(topic).observe(keys)
    metrics.flush_changes.labels(topic).observe(changes)


def record_deliveries(sink: str, *, delivered: int = 0, superseded: int = 0, dead: int = 0) -> None:
    """Deliveries of one sink that reached a final state in one drain of a lane."""
    counter = _metrics().deliveries
    for state, count in (("delivered", delivered), ("superseded", superseded), ("dead", dead)):
        if count:
            counter.labels(sink, state).inc(count)
