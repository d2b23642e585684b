"""Sinks, where changes go: built-ins `sql` and `http`; plugins register as `exact_pipeline.sinks` entry points;
named http sinks come from SINKS_FILE (`delivery.sinks.routes`)."""

from __future__ import annotations

from importlib.metadata import entry_points

from delivery.sinks.base import (
    Outgoing,
    PushFailed,
    PushSink,
    Sink,
    SinkConfigError,
    SinkError,
    TargetGone,
    UnknownSink,
)
from delivery.sinks.http import HttpSink
from delivery.sinks.routes import http_targets
from runtime.settings import Settings

__all__ = [
    "GROUP",
    "Outgoing",
    "PushFailed",
    "PushSink",
    "Sink",
    "SinkConfigError",
    "SinkError",
    "TargetGone",
    "UnknownSink",
    "load_sinks",
]

GROUP = "exact_pipeline.sinks"


def load_sinks(settings: Settings) -> list[Sink]:
    """The sinks SINKS names, in that order, each built as `cls(settings)` (which may raise MissingSetting), then
    those SINKS_FILE defines, in its order (`SinkConfigError` for a wrong file or a name SINKS has too)."""
    available = {ep.name: ep for ep in entry_points(group=GROUP)}
    sinks: list[Sink] = []
    for name in dict.fromkeys(settings.sink_names):
        if name not in available:
            installed = ", ".join(sorted(available)) or "none"
            raise UnknownSink(f"SINKS names an unknown sink {name!r} (installed: {installed})")
        sink = available[name].load()(settings)
        if not isinstance(sink, Sink):
            raise UnknownSink(f"the sink {name!r} ({available[name].value}) does not implement the Sink protocol")
        sinks.append(sink)
    for target in http_targets(settings):
        if target.name in settings.sink_names:
            raise SinkConfigError(f"SINKS_FILE defines {target.name!r}, which SINKS names too: rename one")
        sinks.append(HttpSink(settings, target))
    return sinks
