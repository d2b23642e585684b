"""The README's "Writing to Exact" table, made from the write specs, so a test can hold the README to it."""

from __future__ import annotations

from collections.abc import Mapping

from exact import Catalogue, WriteSpec

__all__ = ["HEADER", "rows"]

HEADER = (
    "| entity | resource | references (field: kind) | pre-flight checks | upsert `match_on` | read back as |\n"
    "|---|---|---|---|---|---|"
)


def _references(references: Mapping[str, str], prefix: str = "") -> list[str]:
    return [f"{prefix}{name}: {kind}" for name, kind in sorted(references.items())]


def _row(spec: WriteSpec) -> str:
    resource = f"`{spec.path}`" + (f" + `{spec.lines.name}`" if spec.lines else "")
    references = _references(spec.references) + (_references(spec.lines.references, "lines.") if spec.lines else [])
    checks = ", ".join(spec.checks) or "–"
    match_on = ", ".join(spec.natural_keys) or "–"
    renamed = dict(spec.lines.read_names) if spec.lines else {}
    read_back = "every written field" + (
        "; lines: " + ", ".join(f"{w} → {r}" for w, r in sorted(renamed.items())) if renamed else ""
    )
    return f"| {spec.name} | {resource} | {', '.join(references) or '–'} | {checks} | {match_on} | {read_back} |"


def rows(catalogue: Catalogue) -> list[str]:
    return [_row(spec) for spec in sorted(catalogue.writes.values(), key=lambda s: s.name)]
