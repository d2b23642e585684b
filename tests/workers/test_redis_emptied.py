"""Issue 9: Redis emptied mid-run, while a stream of changes flows; the delta sync and the sweeper restore it all.

The other half, the receiver answering 503 while Redis is down and recovering by itself, is
tests/receiver/test_redis_down.py. The shared Redis serves other runs: only this test's prefix is deleted.
"""

from __future__ import annotations

import time

import pytest
import redis

from runtime.contracts import DELIVERIES_QUEUE, EVENTS_QUEUE
from runtime.redis import clear_prefix
from tests.pipeline import fresh_db
from tests.pipeline.harness import Pipeline
from tests.pipeline.push_support import await_true
from tests.pipeline.stream_support import ChangeStream, await_settled, delivery_states, out_of_order

pytestmark = pytest.mark.slow
# A database of its own: every sandbox makes the same keys, so an earlier test's versions would shadow these.
database_url, engine, session_factory = fresh_db.database_url, fresh_db.engine, fresh_db.session_factory

PAIRS = [(d, t) for d in (101, 202) for t in ("Accounts", "Contacts")]


def test_redis_emptied_mid_stream_the_delta_sync_restores_every_change(
    pipeline: Pipeline, redis_client: redis.Redis
) -> None:
    """Broke: with a worker and beat running and creates, updates and deletes flowing in 2 divisions x 2 topics,
    every key under this test's Redis prefix is deleted at once: both Celery queues and their unacknowledged
    messages, the webhook events gathered per lane, the lane locks, the receiver's dedupe keys, the rate-limit
    windows and error budgets. The changes keep flowing afterwards.
    Checked: the delta sync (every 3 s) and the delivery sweeper bring the SQL mirror and the push target level
    with the sandbox, and every key's pushes arrived in non-decreasing version order.
    """
    pipeline.settings = pipeline.settings.model_copy(
        update={"delta_sync_minutes": 0.05, "delivery_sweep_after_seconds": 2.0}
    )
    prefix = pipeline.settings.redis_prefix
    pipeline.service.register([101, 202], ["Accounts", "Contacts"])
    started = time.monotonic()
    pipeline.start_worker(beat=True)
    with ChangeStream(pipeline, PAIRS) as stream:
        stream.await_sent(40)
        await_true(lambda: len(pipeline.push.accepted) >= 20, timeout=120, what="pushes under way")
        queued = {q: redis_client.llen(prefix + q) for q in (EVENTS_QUEUE, DELIVERIES_QUEUE)}
        unacked = redis_client.hlen(prefix + "unacked")
        sent_before = stream.sent
        deleted = clear_prefix(redis_client, prefix)
        stream.await_sent(sent_before + 40)
    pipeline.await_level(PAIRS, timeout=240)
    await_settled(pipeline, timeout=180)  # the sweeper runs every 60 s
    mirrored = sum(len(pipeline.mirror(d, t)) for d, t in PAIRS)
    print(
        f"\nredis-emptied: {stream.counts()} sent_before_clear={sent_before} keys_deleted={deleted} "
        f"queued_at_clear={queued} unacked_at_clear={unacked} mirror={mirrored} pushes_accepted="
        f"{len(pipeline.push.accepted)} duplicates={len(pipeline.push.duplicates)} "
        f"deliveries={delivery_states(pipeline)} total={time.monotonic() - started:.0f}s"
    )
    assert deleted > 0
    assert pipeline.push.rejected == 0
    assert out_of_order(pipeline) == {}
    assert "dead" not in delivery_states(pipeline)
