"""`exact-pipeline topics [--json]`: every topic of the entity catalogue, how it is read and what its record holds."""

from __future__ import annotations

import json
from typing import Any

import typer
from rich.console import Console
from rich.table import Table

from exact import CATALOGUE, Entity

__all__ = ["describe", "topics"]

console = Console(width=200)


def describe(entity: Entity) -> dict[str, Any]:
    """One topic as `topics --json` prints it (the keys are documented on `topics`)."""
    return {
        "topic": entity.topic,
        "webhook": entity.webhook,
        "read_path": entity.read_path,
        "fetch_path": entity.flush_path if entity.webhook else None,
        "path": entity.path,
        "sync_path": entity.sync_path,
        "key": entity.key,
        "shape": entity.shape,
        "lines": entity.lines.name if entity.lines else None,
        "line_path": entity.lines.path if entity.lines else None,
        "entity_types": list(entity.entity_types),
        "write": entity.write.name if entity.write else None,
    }


def topics(as_json: bool = typer.Option(False, "--json", help="A JSON list instead of a table.")) -> None:
    """Every supported topic: how the delta sync and a webhook read it, its record, EntityTypes and writes.

    `--json` prints a list in catalogue order, one object per topic with these keys (new keys may be added, none
    renamed):

    \b
      topic         the topic (webhook topic, or lane name for a read-only lane), in the catalogue's spelling
      webhook       true when Exact sends webhooks for it; false: a read-only lane, read by the delta sync only
      read_path     how the delta sync reads it: "sync" (sync/… by Timestamp) or "walk" (a `Modified` walk of path)
      fetch_path    how a webhook's changes are fetched: "sync" or "keyed" (batches of keys); null without webhooks
      path          the service resource read by key or walked (null when there is none)
      sync_path     the sync resource (null when there is none)
      key           the record's key field, which a webhook's Key names
      shape         "flat", "line_rows" (sync rows are lines, grouped by key) or "expanded" (header + $expand)
      lines         the lines' name in a record with lines (null for a flat record)
      line_path     the lines' resource (null for a flat record)
      entity_types  the sync/Deleted EntityTypes of the record, then of its lines
      write         the entity name `exact-pipeline write` and POST /commands take (null: not writable)
    """
    described = [describe(entity) for entity in CATALOGUE.entities.values()]
    if as_json:
        typer.echo(json.dumps(described, indent=2))
        return
    table = Table("topic", "webhooks", "delta sync", "webhook fetch", "record", "EntityTypes", "write", title="Topics")
    for d in described:
        record = "flat" if d["lines"] is None else f"with lines ({d['lines']}, {d['shape']})"
        table.add_row(
            d["topic"],
            "yes" if d["webhook"] else "no (delta sync only)",
            f"{d['read_path']} ({d['sync_path'] or d['path']})",
            d["fetch_path"] or "",
            record,
            ", ".join(str(t) for t in d["entity_types"]),
            d["write"] or "",
        )
    console.print(table)
