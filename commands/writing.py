"""The `exact.Writer` a command runs through, with what it keeps per connection for the process: the pre-flight
checks' caches and the index of natural keys (so an idle lookup of a VAT number costs one call)."""

from __future__ import annotations

import threading
from dataclasses import dataclass

from exact import ExactClient, Matcher, MatchIndex, Preflight, References, Writer
from runtime.settings import Settings

__all__ = ["command_writer"]


@dataclass(frozen=True)
class _Kept:
    preflight: Preflight
    index: MatchIndex


# Keyed by the connection's own client, which the process's context keeps for good (one per connection).
_KEPT: dict[ExactClient, _Kept] = {}
_LOCK = threading.Lock()


def command_writer(settings: Settings, connection: ExactClient, client: ExactClient, references: References) -> Writer:
    """A Writer over `client` (the commands' view of `connection`'s client), checking before it sends."""
    with _LOCK:
        kept = _KEPT.get(connection)
        if kept is None:
            preflight = Preflight(client, references, ttl=settings.reference_cache_seconds)
            kept = _KEPT[connection] = _Kept(preflight, MatchIndex())
    return Writer(
        client,
        references,
        kept.preflight,
        matcher=Matcher(client, kept.index),
        settle_seconds=settings.commands_settle_seconds,
    )
