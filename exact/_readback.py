"""A write read back: every field sent compared with what Exact kept, through the write → read names (gotchas 1–6)."""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from exact._catalogue import LineSpec, WriteSpec
from exact._dates import parse_date
from exact._exceptions import FieldMismatch
from exact._references import is_guid

__all__ = ["compare"]

_ABSENT = "<absent>"


def compare(
    spec: WriteSpec, record: Mapping[str, Any], body: Mapping[str, Any], lines: list[dict[str, Any]] | None
) -> tuple[dict[str, Any], list[dict[str, Any]] | None, list[FieldMismatch]]:
    """What was read of each written field (read names), the lines as read back (when written and all equal), and
    every field that differs."""
    mismatches: list[FieldMismatch] = []
    verified: dict[str, Any] = {}
    for name, written in body.items():
        if spec.lines is not None and name == spec.lines.name:
            continue
        read = record.get(name, _ABSENT)
        verified[name] = read
        if not _same(written, read, is_date=name in spec.dates):
            mismatches.append(FieldMismatch(name, name, written, read))
    verified_lines: list[dict[str, Any]] | None = None
    if lines is not None and spec.lines is not None:
        read_lines = _lines_of(record, spec.lines.name)
        mismatches += _compare_lines(spec.lines, lines, read_lines)
        if not mismatches:
            verified_lines = [_picked(spec.lines, w, r) for w, r in zip(lines, read_lines, strict=True)]
    return verified, verified_lines, mismatches


def _lines_of(record: Mapping[str, Any], name: str) -> list[dict[str, Any]]:
    value = record.get(name)
    rows = value.get("results", []) if isinstance(value, Mapping) else value if isinstance(value, list) else []
    return sorted((dict(r) for r in rows), key=lambda r: r.get("LineNumber") or 0)


def _compare_lines(spec: LineSpec, written: list[dict[str, Any]], read: list[dict[str, Any]]) -> list[FieldMismatch]:
    if len(written) != len(read):
        return [FieldMismatch(spec.name, spec.name, f"{len(written)} lines", f"{len(read)} lines")]
    mismatches = []
    for number, (sent, back) in enumerate(zip(written, read, strict=True), start=1):
        for name, value in sent.items():
            read_as = spec.read_names.get(name, name)
            got = back.get(read_as, _ABSENT)
            if not _same(value, got, is_date=name in spec.dates):
                mismatches.append(
                    FieldMismatch(f"{spec.name}[{number}].{name}", f"{spec.name}[{number}].{read_as}", value, got)
                )
    return mismatches


def _picked(spec: LineSpec, written: Mapping[str, Any], read: Mapping[str, Any]) -> dict[str, Any]:
    """The line as read back: its ID and each written field under its read name."""
    names = [spec.read_names.get(n, n) for n in written]
    return {"ID": read.get("ID"), **{name: read.get(name) for name in names}}


def _same(written: Any, read: Any, *, is_date: bool) -> bool:
    if read is _ABSENT:
        return False
    if written is None or read is None:
        return written is None and read is None
    if is_date:
        return bool(_moment(written) == _moment(read))
    if isinstance(written, bool) or isinstance(read, bool):
        return written is read
    if isinstance(written, int | float) and isinstance(read, int | float):
        return math.isclose(written, read, rel_tol=1e-9, abs_tol=1e-9)
    if isinstance(written, str) and isinstance(read, str):
        return written == read or (is_guid(written) and written.lower() == read.lower())
    return bool(written == read)


def _moment(value: Any) -> datetime | None:
    try:
        return parse_date(value)
    except (TypeError, ValueError):
        return None
