"""The lane's pending events in a real Redis: an idle lane at once, then one flush per window, Delete over Update,
seen versions, the lane lock."""

from __future__ import annotations

import threading
import time
import uuid

import redis

from runtime.settings import Settings
from sync.coalesce import EVENT_LAG_MS, Admission, Batch, Coalescer, Lane

LANE = Lane(1, 101, "Contacts")


def _key() -> str:
    return str(uuid.uuid4())


def _coalescer(settings: Settings, redis_client: redis.Redis) -> Coalescer:
    return Coalescer(redis_client, settings.redis_prefix, window_seconds=0.5)


def test_the_first_event_of_an_idle_lane_schedules_a_flush_at_once(
    settings: Settings, redis_client: redis.Redis
) -> None:
    lanes = _coalescer(settings, redis_client)
    keys = [_key() for _ in range(5)]
    admitted = [lanes.admit(LANE, k, "Update", 1000 + n) for n, k in enumerate(keys)]
    assert [a.outcome for a in admitted] == ["schedule", "queued", "queued", "queued", "queued"]
    assert admitted[0].countdown == 0.0  # no fetch of this lane ever ended: nothing to wait for
    # An event twice is one key, with the later event time.
    assert lanes.add(LANE, keys[0].upper(), "Update", 5000) == "queued"
    batch = lanes.take(LANE)
    assert batch.updates == {**{k: 1000 + n for n, k in enumerate(keys)}, keys[0]: 5000}
    assert batch.deletes == {}
    # Another lane has its own window.
    assert lanes.admit(Lane(1, 202, "Contacts"), _key(), "Update", 6000) == Admission("schedule", 0.0)


def test_events_during_a_fetch_wait_for_one_next_flush_a_window_after_it(
    settings: Settings, redis_client: redis.Redis
) -> None:
    lanes = Coalescer(redis_client, settings.redis_prefix, window_seconds=60)
    first = _key()
    assert lanes.add(LANE, first, "Update", 1000) == "schedule"
    assert set(lanes.take(LANE).updates) == {first}
    # The flush runs: whatever arrives now only joins pending.
    during = [_key() for _ in range(3)]
    assert [lanes.add(LANE, k, "Update", 2000) for k in during] == ["queued"] * 3
    # Its end asks for exactly one next flush, a whole window out.
    assert lanes.done(LANE) == 60.0
    assert lanes.add(LANE, _key(), "Update", 3000) == "queued"
    assert len(lanes.take(LANE).updates) == 4
    assert lanes.done(LANE) is None  # nothing arrived meanwhile: the lane goes idle
    # Idle, but within the window after the last fetch: the flush is due when that window ends, not now.
    later = lanes.admit(LANE, _key(), "Update", 4000)
    assert later.outcome == "schedule"
    assert 0.0 < later.countdown <= 60.0
    fetched, heard = lanes.last_fetched_ms(LANE), lanes.last_heard_ms(LANE)
    assert fetched is not None
    assert heard is not None
    assert heard >= fetched  # the last event came after the last fetch ended


def test_a_lane_idle_for_a_window_fetches_at_once_again(settings: Settings, redis_client: redis.Redis) -> None:
    lanes = Coalescer(redis_client, settings.redis_prefix, window_seconds=0.05)
    lanes.add(LANE, _key(), "Update", 1000)
    lanes.take(LANE)
    assert lanes.done(LANE) is None
    time.sleep(0.1)  # more than the window: an order, not a threshold
    assert lanes.admit(LANE, _key(), "Update", 2000) == Admission("schedule", 0.0)


def test_an_empty_flush_does_not_count_as_a_fetch(settings: Settings, redis_client: redis.Redis) -> None:
    lanes = Coalescer(redis_client, settings.redis_prefix, window_seconds=60)
    assert not lanes.take(LANE)
    assert lanes.done(LANE, fetched=False) is None
    assert lanes.last_fetched_ms(LANE) is None
    assert lanes.admit(LANE, _key(), "Update", 1000) == Admission("schedule", 0.0)


def test_the_fixed_mode_always_waits_the_window(settings: Settings, redis_client: redis.Redis) -> None:
    lanes = Coalescer(redis_client, settings.redis_prefix, window_seconds=2, adaptive=False)
    assert lanes.admit(LANE, _key(), "Update", 1000) == Admission("schedule", 2.0)
    lanes.take(LANE)
    lanes.add(LANE, _key(), "Update", 2000)
    assert lanes.done(LANE) == 2.0


def test_a_delete_beats_an_update_of_the_same_key(settings: Settings, redis_client: redis.Redis) -> None:
    lanes = _coalescer(settings, redis_client)
    first, second = _key(), _key()
    lanes.add(LANE, first, "Update", 1000)
    lanes.add(LANE, first, "Delete", 2000)
    lanes.add(LANE, second, "Delete", 3000)
    lanes.add(LANE, second, "Update", 4000)  # a late Update of a deleted record
    assert lanes.take(LANE) == Batch(updates={}, deletes={first: 2000, second: 3000})


def test_a_crashed_flush_leaves_its_events_for_the_retry(settings: Settings, redis_client: redis.Redis) -> None:
    lanes = _coalescer(settings, redis_client)
    kept, updated_later, new = _key(), _key(), _key()
    lanes.add(LANE, kept, "Update", 1000)
    lanes.add(LANE, updated_later, "Update", 1000)
    assert set(lanes.take(LANE).updates) == {kept, updated_later}
    # The flush dies here (no `done`); meanwhile more events arrive, one of them deleting a taken key.
    lanes.add(LANE, new, "Update", 2000)
    lanes.add(LANE, updated_later, "Delete", 2500)
    retried = lanes.take(LANE)
    assert retried == Batch(updates={kept: 1000, new: 2000}, deletes={updated_later: 2500})
    lanes.done(LANE)
    assert not lanes.take(LANE)


def test_events_a_walk_already_covered_are_dropped(settings: Settings, redis_client: redis.Redis) -> None:
    lanes = _coalescer(settings, redis_client)
    fetched, deleted, newer = _key(), _key(), _key()
    lanes.mark_seen(LANE, {fetched: 10_000, deleted: None, newer: 10_000})
    # The fetched version was modified at (or a moment before) the event: the event is a duplicate or late.
    assert lanes.add(LANE, fetched, "Update", 10_000 + EVENT_LAG_MS) == "seen"
    assert lanes.add(LANE, deleted, "Update", 20_000) == "seen"
    assert lanes.add(LANE, deleted, "Delete", 20_000) == "seen"
    # A change after the fetched version is news.
    assert lanes.add(LANE, newer, "Update", 10_000 + EVENT_LAG_MS + 1) == "schedule"
    assert lanes.add(LANE, fetched, "Delete", 11_000) == "queued"
    # Seen later, between the event and the flush: the flush skips what a walk meanwhile accepted.
    batch = lanes.take(LANE)
    lanes.mark_seen(LANE, {newer: 10_100})
    assert lanes.unseen(LANE, batch) == Batch(updates={}, deletes={fetched: 11_000})
    lanes.forget_seen(LANE)
    assert lanes.unseen(LANE, batch) == batch


def test_no_event_is_stranded_and_one_flush_is_owed_at_a_time(settings: Settings, redis_client: redis.Redis) -> None:
    """Adders race a flusher that runs each flush it is owed; a flush is owed when an add says "schedule" or a
    flush's end returns a countdown. Never two at once, and once the last is run every event was taken."""
    lanes = _coalescer(settings, redis_client)
    taken: list[str] = []
    owed, most = [0], [0]
    guard = threading.Lock()
    adders_done = threading.Event()

    def flusher() -> None:
        while True:
            with guard:
                due = owed[0] > 0
            if not due:
                if adders_done.is_set():
                    with guard:
                        if owed[0] == 0:
                            return
                time.sleep(0.001)
                continue
            taken.extend(lanes.take(LANE).updates)
            with guard:
                owed[0] -= 1  # before `done`: once it drops the flag, an add may be owed the next one at once
            if lanes.done(LANE) is not None:
                with guard:
                    owed[0] += 1
                    most[0] = max(most[0], owed[0])

    def adder(keys: list[str]) -> None:
        for key in keys:
            if lanes.add(LANE, key, "Update", 1000) == "schedule":
                with guard:
                    owed[0] += 1
                    most[0] = max(most[0], owed[0])

    groups = [[_key() for _ in range(300)] for _ in range(4)]
    threads = [threading.Thread(target=adder, args=(g,)) for g in groups]
    taker = threading.Thread(target=flusher)
    taker.start()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    adders_done.set()
    taker.join()
    assert most[0] == 1, "two flushes owed at once"
    assert not redis_client.exists(LANE.key(settings.redis_prefix, "pending")), "events left with no flush owed"
    assert not redis_client.exists(LANE.key(settings.redis_prefix, "scheduled"))
    assert set(taken) == {k for g in groups for k in g}


def test_the_lane_lock(settings: Settings, redis_client: redis.Redis) -> None:
    lanes = _coalescer(settings, redis_client)
    first = lanes.lock(LANE, "task-1", ttl_seconds=30)
    second = lanes.lock(LANE, "task-2", ttl_seconds=30)
    assert first.acquire()
    assert not second.acquire()
    # The same task redelivered after its worker died takes its lock back at once.
    assert lanes.lock(LANE, "task-1", ttl_seconds=30).acquire()
    second.release()  # not the holder: no effect
    assert not second.acquire()
    first.release()
    assert second.acquire()
    second.release()
    # A killed holder that never comes back frees the lane when the lock expires.
    assert lanes.lock(LANE, "dead", ttl_seconds=0.2).acquire()
    deadline = time.monotonic() + 5
    while not second.acquire():
        assert time.monotonic() < deadline, "the lock never expired"
        time.sleep(0.05)


def test_every_key_lives_under_the_prefix(settings: Settings, redis_client: redis.Redis) -> None:
    lanes = _coalescer(settings, redis_client)
    lanes.add(LANE, _key(), "Update", 1)
    lanes.mark_seen(LANE, {_key(): 1})
    lanes.lock(LANE, "x", ttl_seconds=5).acquire()
    lanes.take(LANE)
    keys = [k.decode() for k in redis_client.scan_iter(f"{settings.redis_prefix}*")]
    assert keys
    assert all(k.startswith(f"{settings.redis_prefix}lane:1:101:contacts:") for k in keys)
