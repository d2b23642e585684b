"""The sandbox's records: divisions, the user, entity rows per division, Timestamps, deletions and change events."""

from __future__ import annotations

import random
import threading
import uuid
from datetime import UTC, datetime
from typing import Any

from sandbox import quirks
from sandbox.clock import SandboxClock
from sandbox.config import SandboxConfig
from sandbox.entities import Entity, by_path
from sandbox.records import Action, Change, Listener, NotFoundError, WriteError
from sandbox.seed import seed_store

# Change and the errors live in `records` (quirks raise them too); they are re-exported for the store's callers.
__all__ = ["Change", "NotFoundError", "Store", "WriteError"]


class Store:
    def __init__(self, config: SandboxConfig, clock: SandboxClock) -> None:
        self.config = config
        self.clock = clock
        self.lock = threading.RLock()
        self._tables: dict[tuple[int, str], dict[str, dict[str, Any]]] = {}
        self._deleted: list[dict[str, Any]] = []
        self._divisions: dict[int, dict[str, Any]] = {}
        self._users: dict[str, dict[str, Any]] = {}
        self._granted: dict[str, set[int]] = {}
        self._listeners: list[Listener] = []
        self._timestamp = 100_000
        self.rng = random.Random(config.seed)
        self.default_user_id = self.new_id()
        seed_store(self)

    # identity and time
    def new_id(self) -> str:
        return str(uuid.UUID(int=self.rng.getrandbits(128), version=4))

    def now(self) -> datetime:
        return datetime.fromtimestamp(self.clock.now(), UTC)

    def next_timestamp(self) -> int:
        self._timestamp += 1
        return self._timestamp

    # users and divisions
    def add_division(self, code: int, **fields: Any) -> None:
        self._divisions[code] = {
            "Code": code,
            "Description": f"Division {code}",
            "Status": 1,
            "BlockingStatus": 0,
            "Country": "NL",
            "Currency": "EUR",
            "IsMainDivision": False,
            "DivisionMoveDate": None,
            "DivisionHRLinkUnlinkDate": None,
            "Created": self.now(),
            "Modified": self.now(),
            "Current": False,
            **fields,
        }

    def add_user(self, user_id: str, granted: set[int], **fields: Any) -> None:
        self._users[user_id] = {"UserID": user_id, **fields}
        self._granted[user_id] = set(granted)

    def user(self, user_id: str) -> dict[str, Any]:
        return self._users[user_id]

    def user_divisions(self, user_id: str) -> list[int]:
        return sorted(self._granted.get(user_id, set()))

    def current_division(self, user_id: str) -> int:
        return int(self._users[user_id]["CurrentDivision"])

    def division(self, code: int) -> dict[str, Any] | None:
        return self._divisions.get(code)

    def can_access(self, user_id: str, division: int) -> bool:
        return division in self._divisions and division in self._granted.get(user_id, set())

    def set_division_status(self, code: int, status: int) -> None:
        self._divisions[code]["Status"] = status

    def set_grant(self, user_id: str, code: int, granted: bool) -> None:
        (self._granted[user_id].add if granted else self._granted[user_id].discard)(code)

    def move_division(self, code: int) -> None:
        """A division move regenerates every Timestamp in it; Exact says: resync all data."""
        with self.lock:
            self._divisions[code]["DivisionMoveDate"] = self.now()
            for (division, _path), rows in self._tables.items():
                if division == code:
                    for row in rows.values():
                        row["Timestamp"] = self.next_timestamp()

    # listeners
    def subscribe(self, listener: Listener) -> None:
        self._listeners.append(listener)

    def _emit(self, division: int, entity: Entity, key: str, action: Action) -> None:
        if entity.topic is None:
            return
        change = Change(division, entity.topic, key, action, entity.path, self.clock.now())
        for listener in self._listeners:
            listener(change)

    # records
    def table(self, division: int, path: str) -> dict[str, dict[str, Any]]:
        return self._tables.setdefault((division, path), {})

    def rows(self, division: int, entity: Entity) -> list[dict[str, Any]]:
        return list(self.table(division, entity.path).values())

    def get(self, division: int, entity: Entity, key: str) -> dict[str, Any]:
        row = self.table(division, entity.path).get(_key(key))
        if row is None:
            raise NotFoundError(key)
        return row

    def lines_of(self, division: int, entity: Entity, header_id: str) -> list[dict[str, Any]]:
        if entity.line_path is None:
            return []
        ref = quirks.header_ref(entity)
        rows = self.table(division, entity.line_path).values()
        return sorted((r for r in rows if r.get(ref) == header_id), key=lambda r: r.get("LineNumber") or 0)

    def create(self, division: int, entity: Entity, body: dict[str, Any], *, emit: bool = True) -> dict[str, Any]:
        with self.lock:
            row = self._build(division, entity, body, key=_key(body.get("ID") or self.new_id()))
            row["Created"] = row["Modified"] = self.now()
            self.table(division, entity.path)[row["ID"]] = row
            self._write_lines(division, entity, row, body)
        if emit:
            self._emit(division, entity, row["ID"], Action.UPDATE)
        return row

    def replace(self, division: int, entity: Entity, key: str, body: dict[str, Any]) -> dict[str, Any]:
        """PUT: a full replace. Every writable field not in `body` becomes null (gotcha 4)."""
        with self.lock:
            old = self.get(division, entity, key)
            row = self._build(division, entity, body, key=old["ID"])
            row["Created"], row["Modified"] = old["Created"], self.now()
            self.table(division, entity.path)[row["ID"]] = row
            if entity.lines and entity.lines in body:
                self._drop_lines(division, entity, row["ID"])
                self._write_lines(division, entity, row, body)
        self._emit(division, entity, row["ID"], Action.UPDATE)
        return row

    def delete(self, division: int, entity: Entity, key: str) -> None:
        with self.lock:
            row = self.get(division, entity, key)
            del self.table(division, entity.path)[row["ID"]]
            self._drop_lines(division, entity, row["ID"])
            if entity.entity_type is not None:
                self._deleted.append(
                    {
                        "ID": self.new_id(),
                        "Timestamp": self.next_timestamp(),
                        "EntityKey": row["ID"],
                        "EntityType": entity.entity_type,
                        "Division": division,
                        "DeletedDate": self.now(),
                        "DeletedBy": self.default_user_id,
                    }
                )
        self._emit(division, entity, row["ID"], Action.DELETE)

    def deleted(self, division: int) -> list[dict[str, Any]]:
        return [d for d in self._deleted if d["Division"] == division]

    def _build(self, division: int, entity: Entity, body: dict[str, Any], *, key: str) -> dict[str, Any]:
        writable = {f: body.get(f) for f in entity.fields if f not in quirks.READ_ONLY and f != entity.lines}
        row = quirks.apply_header(self, division, entity, writable)
        row.update({"ID": key, "Division": division, "Timestamp": self.next_timestamp()})
        if entity.lines:
            row[quirks.header_ref(entity)] = key
        return row

    def _write_lines(self, division: int, entity: Entity, header: dict[str, Any], body: dict[str, Any]) -> None:
        if not entity.lines or not entity.line_path:
            return
        line_entity = by_path(entity.line_path)
        assert line_entity is not None
        for number, line in enumerate(body.get(entity.lines) or [], start=1):
            row = quirks.apply_line(self, division, line_entity, line)
            row.update(
                {
                    "ID": self.new_id(),
                    "Division": division,
                    quirks.header_ref(entity): header["ID"],
                    "LineNumber": line.get("LineNumber") or number,
                    "Timestamp": self.next_timestamp(),
                    "Created": self.now(),
                    "Modified": self.now(),
                }
            )
            self.table(division, line_entity.path)[row["ID"]] = row

    def _drop_lines(self, division: int, entity: Entity, header_id: str) -> None:
        if entity.line_path:
            table = self.table(division, entity.line_path)
            for line in self.lines_of(division, entity, header_id):
                del table[line["ID"]]


def _key(value: Any) -> str:
    try:
        return str(uuid.UUID(str(value)))
    except ValueError as exc:
        raise WriteError(f"Invalid key: {value}") from exc
