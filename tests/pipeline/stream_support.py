"""A stream of changes for the fault tests: a background thread that keeps creating, updating and deleting records in
the sandbox through its control API (each change fires a webhook to the receiver) while a test breaks something.

    with ChangeStream(pipeline, [(101, "Accounts"), (202, "Contacts")]) as stream:
        ...  # kill workers, empty Redis, take the push target down
        stream.await_sent(stream.sent + 20)  # a few more changes after the fault
    print(stream.counts())

Also the delivery log's state counts and the sandbox's fault and limit views the fault tests assert on.
"""

from __future__ import annotations

import random
import threading
from collections import Counter
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any

import httpx
from sqlalchemy import func, select

from delivery.models import Delivery
from tests.pipeline.harness import Pipeline
from tests.pipeline.push_support import await_true

__all__ = ["PATHS", "ChangeStream", "await_settled", "delivery_states", "out_of_order", "sandbox_errors"]

PATHS = {"Accounts": "crm/Accounts", "Contacts": "crm/Contacts"}


def _fields(topic: str, n: int) -> dict[str, Any]:
    if topic == "Accounts":
        return {"Name": f"account {n}", "Email": f"a{n}@example.nl", "City": f"city {n}"}
    return {"FirstName": f"first {n}", "LastName": f"last {n}", "Email": f"c{n}@example.nl"}


@dataclass
class ChangeStream:
    """Changes at a steady pace from a thread: about 45% creates, 40% updates, 15% deletes of records it created."""

    pipeline: Pipeline
    pairs: list[tuple[int, str]]
    pause: float = 0.15
    seed: int = 9
    made: Counter[str] = field(default_factory=Counter)  # "create", "update", "delete"
    failed: list[str] = field(default_factory=list)  # control calls that did not do what was asked
    _keys: dict[tuple[int, str], list[str]] = field(default_factory=dict)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def sent(self) -> int:
        with self._lock:
            return sum(self.made.values())

    def counts(self) -> dict[str, int]:
        with self._lock:
            return {"sent": sum(self.made.values()), **{k: self.made[k] for k in ("create", "update", "delete")}}

    def start(self) -> ChangeStream:
        self._thread = threading.Thread(target=self._run, name="change-stream", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=150)
            assert not self._thread.is_alive(), "the change stream did not stop"
        assert not self.failed, f"the sandbox refused changes: {self.failed[:5]}"

    def await_sent(self, count: int, timeout: float = 120.0) -> None:
        """Wait until the stream has made `count` changes in all (a duration measured in changes, not seconds)."""
        await_true(lambda: self.sent >= count, timeout=timeout, what=f"{count} changes sent")

    def __enter__(self) -> ChangeStream:
        return self.start()

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self._stop.set()
        if kind is None:
            self.stop()
        elif self._thread is not None:
            self._thread.join(timeout=150)

    def _run(self) -> None:
        rng = random.Random(self.seed)
        n = 0
        while not self._stop.is_set():
            division, topic = rng.choice(self.pairs)
            keys = self._keys.setdefault((division, topic), [])
            roll, n = rng.random(), n + 1
            try:
                if keys and roll < 0.15:
                    kind, key = "delete", keys.pop(rng.randrange(len(keys)))
                    response = self._call("DELETE", f"records/{division}/{PATHS[topic]}/{key}")
                elif keys and roll < 0.55:
                    kind = "update"
                    response = self._call(
                        "PUT", f"records/{division}/{PATHS[topic]}/{rng.choice(keys)}", json=_fields(topic, n)
                    )
                else:
                    kind = "create"
                    response = self._call("POST", f"records/{division}/{PATHS[topic]}", json=_fields(topic, n))
                    if response.status_code == 201:
                        keys.append(response.json()["record"]["ID"])
            except httpx.HTTPError as exc:
                self.failed.append(f"{type(exc).__name__}: {exc}")
                continue
            if response.status_code >= 300:
                self.failed.append(f"{kind} {division}/{topic}: {response.status_code} {response.text[:200]}")
            else:
                with self._lock:
                    self.made[kind] += 1
            self._stop.wait(self.pause)

    def _call(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        return self.pipeline.control(method, path, **kwargs)


def delivery_states(pipeline: Pipeline) -> dict[str, int]:
    """Rows of the delivery log by state: pending, sending, delivered, superseded, dead."""
    with pipeline.sessions() as session:
        rows = session.execute(select(Delivery.state, func.count()).group_by(Delivery.state)).all()
    return {str(state): int(count) for state, count in rows}


def await_settled(pipeline: Pipeline, *, timeout: float, what: str = "every delivery settled") -> None:
    """Until no delivery is pending or sending; rows a lost delivery message left behind go out when the sweeper
    dispatches their lanes again."""
    await_true(
        lambda: not {"pending", "sending"} & set(delivery_states(pipeline)),
        timeout=timeout,
        what=what,
        detail=lambda: str(delivery_states(pipeline)),
    )


def out_of_order(pipeline: Pipeline) -> dict[tuple[int, str, str], list[int]]:
    """Lanes whose pushes arrived out of version order (empty: none), with the versions as they arrived."""
    found = {}
    for lane, received in pipeline.push.lanes().items():
        versions = [a.version for a in received]
        if versions != sorted(versions):
            found[lane] = versions
    return found


def sandbox_errors(pipeline: Pipeline) -> tuple[dict[tuple[int | None, str], int], list[dict[str, Any]], int]:
    """The sandbox's (Exact's) error budget: 4xx answers counted per (division, endpoint) in the last hour, the
    endpoints it blocked, and its block threshold."""
    limits = pipeline.control("GET", "limits").json()
    counts = {(e["division"], e["endpoint"]): int(e["count"]) for e in limits["errors"]}
    return counts, list(limits["blocked"]), int(limits["limits"]["error_block_threshold"])
