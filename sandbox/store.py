"""The sandbox's records: divisions, the user, entity rows per division, Timestamps, deletions and change events.

Rows are kept per (division, resource path), keyed by the entity's key field (`ID`, `InvoiceID`, `EntryID`,
`Code`). A row holds every stored field of its resource plus `Timestamp`, the rowversion the sync resources serve.
Documents (a header and its lines) are changed through `documents`, which keeps a document's rows together.
"""

from __future__ import annotations

import random
import threading
import uuid
from datetime import UTC, datetime
from typing import Any

from sandbox import bookings, documents, quirks
from sandbox.clock import SandboxClock
from sandbox.config import SandboxConfig
from sandbox.entities import Entity, header_of
from sandbox.records import Action, Change, Listener, NotFoundError, WriteError
from sandbox.seed import seed_division, seed_store

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

    def user_ids(self) -> frozenset[str]:
        return frozenset(self._users)

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

    def add_granted_division(self, code: int, user_id: str | None, **fields: Any) -> dict[str, Any]:
        """A new division seeded as 101 and 202 are (`seed.seed_division`), granted to `user_id` (None: no one)."""
        with self.lock:
            seed_division(self, code, random.Random(f"{self.config.seed}:{code}"), **fields)
            if user_id is not None:
                self._granted[user_id].add(code)
            return self._divisions[code]

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

    def emit(self, division: int, entity: Entity, key: str, action: Action) -> None:
        """A webhook-worthy change; a line's change is its document's (topic and key of the header)."""
        if entity.header_path is not None:
            entity = header_of(entity)
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
        row = self.table(division, entity.path).get(key_of(entity, key))
        if row is None:
            raise NotFoundError(key)
        return row

    def insert(self, division: int, entity: Entity, row: dict[str, Any]) -> dict[str, Any]:
        """Store a row as given (the seed's path: no write rules, no webhook); it gets Division and a Timestamp."""
        row["Division"] = division
        row["Timestamp"] = self.next_timestamp()
        self.table(division, entity.path)[row[entity.key]] = row
        return row

    def stamp(self, entity: Entity, row: dict[str, Any], *, old: dict[str, Any] | None = None) -> None:
        """Who and when: Created/Creator kept from `old` (a replace), Modified/Modifier now, a fresh Timestamp."""
        name = self._users.get(self.default_user_id, {}).get("FullName")
        now, user = self.now(), self.default_user_id
        fresh = {"Created": now, "Creator": user, "CreatorFullName": name}
        if old is not None:
            fresh = {k: old.get(k, v) for k, v in fresh.items()}
        fresh.update({"Modified": now, "Modifier": user, "ModifierFullName": name})
        fields = entity.data_fields
        row.update({k: v for k, v in fresh.items() if k in fields})
        row["Timestamp"] = self.next_timestamp()

    def create(self, division: int, entity: Entity, body: dict[str, Any], *, emit: bool = True) -> dict[str, Any]:
        orders: list[tuple[Entity, str]] = []  # orders a delivery or receipt added to
        with self.lock:
            if entity.header_path is not None:
                row, header_key = documents.add_line(self, division, entity, body)
            else:
                key = key_of(entity, body.get(entity.key) or self._fresh_key(entity, body))
                row = self._build(division, entity, body, key=key)
                self.stamp(entity, row)
                self.table(division, entity.path)[key] = row
                if entity.is_document:
                    documents.write_lines(self, division, entity, row, body.get(entity.lines or "") or [])
                    orders = bookings.deliver(self, division, entity, row)
                header_key = key
        if emit:
            self.emit(division, entity, header_key, Action.UPDATE)
            for order, order_key in orders:
                self.emit(division, order, order_key, Action.UPDATE)
        return row

    def replace(
        self, division: int, entity: Entity, key: str, body: dict[str, Any], *, emit: bool = True
    ) -> dict[str, Any]:
        """PUT: a full replace. Every writable field not in `body` becomes null (gotcha 4)."""
        with self.lock:
            if entity.header_path is not None:
                row, header_key = documents.replace_line(self, division, entity, key, body)
            else:
                old = self.get(division, entity, key)
                header_key = old[entity.key]
                if "EntryNumber" in entity.data_fields and body.get("EntryNumber") is None:
                    body = {**body, "EntryNumber": old.get("EntryNumber")}  # Exact keeps an entry's number
                row = {**quirks.derived(old), **self._build(division, entity, body, key=header_key)}
                self.stamp(entity, row, old=old)
                self.table(division, entity.path)[header_key] = row
                if entity.is_document:
                    documents.replace_lines(self, division, entity, row, body)
        if emit:
            self.emit(division, entity, header_key, Action.UPDATE)
        return row

    def delete(self, division: int, entity: Entity, key: str, *, emit: bool = True) -> None:
        with self.lock:
            if entity.header_path is not None:
                header_key = documents.delete_line(self, division, entity, key)
                action = Action.UPDATE  # the document changed; it is still there
            else:
                row = self.get(division, entity, key)
                header_key = row[entity.key]
                del self.table(division, entity.path)[header_key]
                if entity.is_document:
                    documents.drop_lines(self, division, entity, header_key, deleted=True)
                self.record_deleted(division, entity.entity_type, header_key)
                action = Action.DELETE
        if emit:
            self.emit(division, entity, header_key, action)

    def record_deleted(self, division: int, entity_type: int | None, key: str) -> None:
        """A row in sync/Deleted, if the resource has an EntityType."""
        if entity_type is None:
            return
        self._deleted.append(
            {
                "ID": self.new_id(),
                "Timestamp": self.next_timestamp(),
                "EntityKey": key,
                "EntityType": entity_type,
                "Division": division,
                "DeletedDate": self.now(),
                "DeletedBy": self.default_user_id,
            }
        )

    def deleted(self, division: int) -> list[dict[str, Any]]:
        return [d for d in self._deleted if d["Division"] == division]

    def _fresh_key(self, entity: Entity, body: dict[str, Any]) -> str | None:
        if entity.key == "Code":
            return None
        return str(body.get("ID") or self.new_id())

    def _build(self, division: int, entity: Entity, body: dict[str, Any], *, key: str) -> dict[str, Any]:
        writable = {f: body.get(f) for f in entity.data_fields if f not in quirks.READ_ONLY and f != entity.key}
        row = quirks.apply_header(self, division, entity, writable)
        bookings.fill_header(self, division, entity, row, body)
        row.update({entity.key: key, "Division": division})
        return row


def key_of(entity: Entity, value: Any) -> str:
    """The stored form of a key: a GUID in its canonical form; `Code` keys (Currencies) as given."""
    if entity.key == "Code":
        if not value:
            raise WriteError("Mandatory: Code")
        return str(value)
    try:
        return str(uuid.UUID(str(value)))
    except ValueError as exc:
        raise WriteError(f"Invalid key: {value}") from exc
