"""Sinks, where changes go: built-ins `sql` and `http`; plugins register as `exact_pipeline.sinks` entry points."""

from __future__ import annotations

from importlib.metadata import entry_points

from runtime.settings import Settings
from workers.sinks.base import Sink

__all__ = ["Sink", "UnknownSink", "load_sinks"]

GROUP = "exact_pipeline.sinks"


class UnknownSink(ValueError):
    """SINKS names a sink no installed package provides."""


def load_sinks(settings: Settings) -> list[Sink]:
    """The sinks SINKS names, in that order, each built from the settings."""
    available = {ep.name: ep for ep in entry_points(group=GROUP)}
    sinks = []
    for name in settings.sink_names:
        if name not in available:
            raise UnknownSink(
                f"SINKS names {name!r}, but no sink of that name is installed ({', '.join(sorted(available))})"
            )
        sinks.append(available[name].load()(settings))
    return sinks
