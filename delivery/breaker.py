"""A circuit breaker per push target, in Redis so that every worker process shares it; and the 410 stop flag.

Closed: POSTs go out. After `failures` failed POSTs in a row it opens for `cooldown` seconds (a key with that TTL):
deliveries wait without a POST. When the key expires it is half-open: the one task that takes the probe key POSTs,
the others keep waiting; a success closes it, a failure opens it again. A target that answered 410 Gone is stopped
(a key without TTL) until `resume`. Redis losing the keys closes the breaker: the worst case is one more failure run.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

from redis import Redis

from runtime.dates import iso_utc
from runtime.db import utc_now

__all__ = ["Breaker", "Gate", "stopped_targets"]

# Failure counts of a target nobody pushes to any more fade out after this.
FAILURES_TTL_SECONDS = 7 * 24 * 3600


@dataclass(frozen=True)
class Gate:
    """Whether a task may POST now; `wait` is when to look again when it may not, None when stopped for good."""

    allowed: bool
    wait: float | None = None
    probe: bool = False

    @property
    def stopped(self) -> bool:
        return not self.allowed and self.wait is None


class Breaker:
    """The breaker of one push target, `sink` at the address `target` (only its hash is stored).

    breaker = Breaker(client, "exact-pipeline:", "http", url, failures=5, cooldown=60.0, probe_ttl=60.0)
    gate = breaker.gate(owner)      # before a POST
    breaker.failed()                # after a failed one; breaker.succeeded() after a good one
    """

    def __init__(
        self,
        client: Redis,
        prefix: str,
        sink: str,
        target: str,
        *,
        failures: int,
        cooldown: float,
        probe_ttl: float,
        probe_wait: float,
    ) -> None:
        digest = hashlib.sha256(target.encode()).hexdigest()[:16]
        self._sink_keys = f"{prefix}breaker:{sink}:"
        base = f"{self._sink_keys}{digest}"
        self._failures_key, self._open_key, self._probe_key = f"{base}:failures", f"{base}:open", f"{base}:probe"
        self.gone_key = f"{base}:gone"
        self._client, self.sink = client, sink
        self._threshold, self._cooldown_ms = max(1, failures), max(1, int(cooldown * 1000))
        self._probe_ttl_ms, self._probe_wait = max(1, int(probe_ttl * 1000)), probe_wait

    def gate(self, owner: str) -> Gate:
        pipe = self._client.pipeline(transaction=False)
        pipe.exists(self.gone_key)
        pipe.pttl(self._open_key)
        pipe.get(self._failures_key)
        pipe.get(self._probe_key)
        gone, open_ms, failures, probe = pipe.execute()
        if gone:
            return Gate(False)
        if open_ms and open_ms > 0:
            return Gate(False, wait=open_ms / 1000)
        if int(failures or 0) < self._threshold:
            return Gate(True)
        # Half-open: one probe at a time; a redelivered task (same owner) keeps its probe.
        if probe == owner.encode() or self._client.set(self._probe_key, owner, nx=True, px=self._probe_ttl_ms):
            return Gate(True, probe=True)
        return Gate(False, wait=self._probe_wait)

    def failed(self) -> bool:
        """Count a failed POST; True when that opened the breaker."""
        pipe = self._client.pipeline(transaction=False)
        pipe.incr(self._failures_key)
        pipe.expire(self._failures_key, FAILURES_TTL_SECONDS)
        failures = int(pipe.execute()[0])
        if failures < self._threshold:
            return False
        pipe = self._client.pipeline(transaction=False)
        pipe.set(self._open_key, 1, px=self._cooldown_ms)
        pipe.delete(self._probe_key)
        pipe.execute()
        return True

    def succeeded(self) -> None:
        self._client.delete(self._failures_key, self._open_key, self._probe_key)

    def stop(self, shown_url: str, error: str) -> None:
        """Hold the breaker open for good: the target answered 410 Gone."""
        since = iso_utc(utc_now(), timespec="seconds")
        mapping: dict[Any, Any] = {"sink": self.sink, "url": shown_url, "error": error, "since": since}
        pipe = self._client.pipeline(transaction=False)
        pipe.hset(self.gone_key, mapping=mapping)
        pipe.delete(self._probe_key)
        pipe.execute()

    def resume(self) -> int:
        """Clear every breaker key of this sink (any URL it had): sending starts again. Returns keys removed."""
        keys = list(self._client.scan_iter(match=_glob_escape(self._sink_keys) + "*", count=500))
        return int(self._client.delete(*keys)) if keys else 0


def stopped_targets(client: Redis, prefix: str) -> list[dict[str, Any]]:
    """Every push target stopped by a 410, for `status`: sink, url (masked), error and since."""
    found = []
    for key in client.scan_iter(match=_glob_escape(f"{prefix}breaker:") + "*:gone", count=500):
        found.append({_text(k): _text(v) for k, v in client.hgetall(key).items()})
    return sorted(found, key=lambda t: (t.get("sink", ""), t.get("since", "")))


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _glob_escape(text: str) -> str:
    return "".join(f"\\{c}" if c in "*?[]\\" else c for c in text)
