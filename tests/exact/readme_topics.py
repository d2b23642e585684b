"""The README's table of topics, made from the catalogue, so a test can hold the README to it."""

from __future__ import annotations

from exact import Catalogue, Entity

__all__ = ["HEADER", "rows"]

HEADER = (
    "| topic | webhooks | delta sync reads | a webhook's change is fetched by | record | sync/Deleted types "
    "| commands |\n|---|---|---|---|---|---|---|"
)


def _row(entity: Entity) -> str:
    webhooks = ("yes" if entity.confirmed else "yes, unconfirmed") if entity.webhook else "no (delta sync only)"
    read = f"`{entity.sync_path}` by Timestamp" if entity.sync_path else f"`{entity.path}` by `Modified`"
    fetch = (
        ("the same sync walk" if entity.sync_path else f"keyed batches of `{entity.key}`") if entity.webhook else "–"
    )
    if entity.lines is None:
        record = f"flat, keyed by `{entity.key}`"
    elif entity.shape == "line_rows":
        record = f"document + `lines` ({entity.lines.name}, from line rows), keyed by `{entity.key}`"
    else:
        record = f"document + `lines` (`$expand={entity.lines.name}`), keyed by `{entity.key}`"
    types = ", ".join(str(t) for t in entity.entity_types) or "– (deletes by webhook)"
    writes = entity.write.name if entity.write else "–"
    return f"| {entity.topic} | {webhooks} | {read} | {fetch} | {record} | {types} | {writes} |"


def rows(catalogue: Catalogue) -> list[str]:
    return [_row(entity) for entity in catalogue.entities.values()]
