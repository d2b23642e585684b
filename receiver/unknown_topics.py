"""Signed webhooks for a topic the catalogue has no webhook entry for: answered 200, never handed on, counted.

The set is built once from `exact.CATALOGUE`, so the route's check is one lookup. Counts go to Prometheus (this
app's `exact_webhook_unknown_topics_total{topic}`) and to a Redis hash under the settings' prefix that
`exact-pipeline status` reads (the process's counter is gone when it restarts; the hash is not).
"""

from __future__ import annotations

import redis
import redis.asyncio

from exact import CATALOGUE

__all__ = ["UNKNOWN_TOPICS_KEY", "WEBHOOK_TOPICS", "count_unknown", "unknown_topic_counts"]

# Under the settings' Redis prefix: topic as Exact sent it → signed webhooks received for it.
UNKNOWN_TOPICS_KEY = "receiver:unknown_topics"
# Lower-cased: Exact's topics are case-insensitive. A read-only lane (GLAccounts...) is not in it: Exact sends none.
WEBHOOK_TOPICS = frozenset(topic.lower() for topic in CATALOGUE.topics(webhook=True))


async def count_unknown(client: redis.asyncio.Redis, prefix: str, topic: str) -> None:
    """One more webhook for `topic`; raises what Redis raises."""
    await client.hincrby(prefix + UNKNOWN_TOPICS_KEY, topic, 1)


def unknown_topic_counts(client: redis.Redis, prefix: str) -> dict[str, int]:
    """Topic → webhooks received for it, most first (then by name)."""
    raw = client.hgetall(prefix + UNKNOWN_TOPICS_KEY)
    counts = {(k.decode() if isinstance(k, bytes) else str(k)): int(v) for k, v in raw.items()}
    return dict(sorted(counts.items(), key=lambda item: (-item[1], item[0])))
