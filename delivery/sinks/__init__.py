"""Sinks, where changes go: built-ins `sql` and `http`; plugins register as `exact_pipeline.sinks` entry points."""

from __future__ import annotations

from importlib.metadata import entry_points

from delivery.sinks.base import Outgoing, PushFailed, PushSink, Sink, SinkError, TargetGone, UnknownSink
from runtime.settings import Settings

__all__ = [
    "GROUP",
    "Outgoing",
    "PushFailed",
    "PushSink",
    "Sink",
    "SinkError",
    "TargetGone",
    "UnknownSink",
    "load_sinks",
]

GROUP = "exact_pipeline.sinks"


def load_sinks(settings: Settings) -> list[Sink]:
    """The sinks SINKS names, in that order, each built as `cls(settings)` (which may raise MissingSetting)."""
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
    return sinks
