"""A safety-net cycle: the divisions due (`plan_cycle`) and one division's run (`run_division`): its due lanes walked,
then one sync/Deleted call for all its lanes, each row handed to the lanes of its EntityType."""

from __future__ import annotations

import logging
from contextlib import ExitStack
from datetime import UTC, datetime

from sqlalchemy import select

from exact import CATALOGUE, AuthError, ExactError, ExactUnavailable, RateLimited, budget_class
from runtime.db import stored_utc
from runtime.logging import log_event
from subscriptions.models import Subscription, SubscriptionState
from subscriptions.queries import synced_lanes
from subscriptions.silence import is_silent, last_webhook, last_webhooks
from sync.coalesce import Lane
from sync.context import WorkerContext
from sync.safety_net import DivisionRun, SafetyNet, max_level, next_level, plan

__all__ = ["LanesBusy", "move_dates", "plan_cycle", "run_division", "safety_net", "synced"]

log = logging.getLogger(__name__)


class LanesBusy(RuntimeError):
    """Some lanes of a division run were held by a flush or walk; `rest` is the run of just those lanes."""

    def __init__(self, rest: DivisionRun) -> None:
        super().__init__(f"division {rest.division}: {', '.join((*rest.full, *rest.walk, *rest.deleted))} busy")
        self.rest = rest


def safety_net(ctx: WorkerContext) -> SafetyNet:
    settings = ctx.settings
    top = max_level(settings.delta_sync_minutes, settings.delta_sync_max_minutes)
    return SafetyNet(ctx.redis, settings.redis_prefix, top=top)


def synced(ctx: WorkerContext) -> list[Lane]:
    """The lanes the delta sync walks (`subscriptions.queries.synced_lanes`); a topic the catalogue lacks is
    skipped, with a warning."""
    with ctx.sessions() as session:
        pairs = synced_lanes(session)
    for connection_id, division, topic in pairs:
        if CATALOGUE.get(topic) is None:
            where = {"connection": connection_id, "division": division}
            log_event(log, "workers.delta_sync.unknown_topic", logging.WARNING, topic=topic, **where)
    return [Lane(c, d, entity.topic) for c, d, t in pairs if (entity := CATALOGUE.get(t))]


def move_dates(ctx: WorkerContext, lanes: list[Lane]) -> dict[int, dict[int, str | None]]:
    """DivisionMoveDate per connection and division: one `system/Divisions` call per connection."""
    found: dict[int, dict[int, str | None]] = {}
    for connection_id in dict.fromkeys(lane.connection_id for lane in lanes):
        division = next(lane.division for lane in lanes if lane.connection_id == connection_id)
        try:
            with budget_class("delta"):
                rows = ctx.client(connection_id).divisions(division)
        except ExactError as exc:
            log_event(
                log, "workers.delta_sync.divisions_failed", logging.WARNING, connection=connection_id, error=exc.message
            )
            continue
        found[connection_id] = {int(r["Code"]): _text(r.get("DivisionMoveDate")) for r in rows if "Code" in r}
    return found


def plan_cycle(ctx: WorkerContext, now: datetime | None = None) -> list[DivisionRun]:
    """This cycle's division runs. SQL: the synced lanes, the active subscriptions, and a cursor note only for lanes
    whose DivisionMoveDate is not the one Redis says their cursor noted; Redis: seven round trips. DivisionMoveDate
    is read (one call per connection) only for connections with a division due: a move found a few cycles later is
    resynced as fully, and an idle division does not pay a call every cycle for it."""
    net, lanes = safety_net(ctx), synced(ctx)
    sound = _healthy(ctx, net, now or datetime.now(UTC))
    healthy = [lane for lane in lanes if (lane.connection_id, lane.division, lane.topic.lower()) in sound]
    # An unhealthy lane's stored level does not count: it is walked at the base interval this cycle.
    levels, cycle = net.levels(healthy), net.next_cycle()
    deletes = [lane for lane in lanes if CATALOGUE.require(lane.topic).entity_types]
    runs = plan(lanes, levels=levels, cycle=cycle, healthy=healthy, deletes=deletes)
    due = {(run.connection_id, run.division) for run in runs}
    moved = _moved(ctx, net, [lane for lane in lanes if (lane.connection_id, lane.division) in due])
    if not moved:
        return runs
    return plan(lanes, levels=levels, cycle=cycle, moved=moved, healthy=healthy, deletes=deletes)


def run_division(ctx: WorkerContext, run: DivisionRun, owner: str, *, ttl_seconds: float) -> int:
    """Walk the run's lanes, then read sync/Deleted once for all of them, each lane under its lock; set their levels.
    Returns the changes accepted. Lanes held by someone else are left out and raised as `LanesBusy` at the end."""
    topics = list(dict.fromkeys((*run.full, *run.walk, *run.deleted)))
    locks = {t: ctx.coalescer.lock(run.lane(t), owner, ttl_seconds=ttl_seconds) for t in topics}
    held = {t for t, lock in locks.items() if lock.acquire()}
    try:
        with ExitStack() as stack:
            for topic in held:
                stack.enter_context(locks[topic].kept())
            accepted = _run(ctx, run, held)
    finally:
        for topic in held:
            locks[topic].release()
    if busy := [t for t in topics if t not in held]:
        keep = set(busy)
        raise LanesBusy(
            DivisionRun(
                run.connection_id,
                run.division,
                walk=tuple(t for t in run.walk if t in keep),
                full=tuple(t for t in run.full if t in keep),
                deleted=tuple(t for t in run.deleted if t in keep),
                healthy=run.healthy,
            )
        )
    return accepted


def _run(ctx: WorkerContext, run: DivisionRun, held: set[str]) -> int:
    net, found, walked = safety_net(ctx), dict[str, int](), set[str]()
    cursors = ctx.cursors.many(run.connection_id, run.division, [t for t in (*run.walk, *run.deleted) if t in held])
    for topic in (t for t in run.full if t in held):
        with budget_class("backfill"):
            found[topic] = ctx.lane_sync(run.lane(topic)).walk(full=True)
    recent = _flushed_since(ctx, run, held)
    for topic in (t for t in run.walk if t in held):
        if topic in recent:
            continue  # its webhook flush walked the sync cursor within the interval
        try:
            with budget_class("delta"):
                found[topic] = ctx.lane_sync(run.lane(topic)).walk(deleted=False, cursor=cursors[topic])
        except (RateLimited, ExactUnavailable, AuthError):
            raise  # the division's budget, Exact itself or the connection: the other lanes would fail the same way
        except ExactError as exc:
            # This lane's endpoint (a 4xx, paused by the error budget): the next due cycle tries it again.
            fields = {"division": run.division, "topic": topic, "error": exc.message}
            log_event(log, "workers.delta_sync.failed", logging.WARNING, **fields)
            continue
        walked.add(topic)
    deleted = [t for t in run.deleted if t in held]
    if deleted:
        syncs = {t: ctx.lane_sync(run.lane(t)) for t in deleted}
        types = sorted({kind for t in deleted for kind in CATALOGUE.require(t).entity_types})
        start = min(cursors[t].deleted_timestamp for t in deleted)
        with budget_class("delta"):
            for page in ctx.client(run.connection_id).deleted(run.division, start, types):
                for topic, lane_sync in syncs.items():
                    found[topic] = found.get(topic, 0) + lane_sync.deleted_page(cursors[topic], page)[0]
    _settle(net, run, found, walked)
    return sum(found.values())


def _flushed_since(ctx: WorkerContext, run: DivisionRun, held: set[str]) -> set[str]:
    """Due lanes whose webhook flush walked their sync cursor (a topic flushed by a sync walk) within one base
    interval: the coalescer's `last_fetched_ms`, against Redis's clock."""
    candidates = [t for t in run.walk if t in held and CATALOGUE.require(t).flush_path == "sync"]
    if not candidates:
        return set()
    seconds, micros = ctx.redis.time()
    now_ms, interval_ms = seconds * 1000 + micros // 1000, ctx.settings.delta_sync_minutes * 60_000
    recent = set()
    for topic in candidates:
        fetched = ctx.coalescer.last_fetched_ms(run.lane(topic))
        if fetched is not None and now_ms - fetched < interval_ms:
            recent.add(topic)
    return recent


def _settle(net: SafetyNet, run: DivisionRun, found: dict[str, int], walked: set[str]) -> None:
    """Walked lanes step off (quiet, healthy) or back to base; a lane resynced or with a delete no flush took
    goes back to base; the rest keep their level."""
    lanes = [run.lane(t) for t in dict.fromkeys((*run.full, *walked, *found))]
    levels, new = net.levels(lanes), dict[Lane, int]()
    for lane in lanes:
        if lane.topic in run.full or (lane.topic not in walked and found.get(lane.topic)):
            new[lane] = 0
        elif lane.topic in walked:
            quiet = not found.get(lane.topic)
            new[lane] = next_level(levels.get(lane, 0), found=not quiet, healthy=lane.topic in run.healthy, top=net.top)
    net.settle(new)


def _moved(ctx: WorkerContext, net: SafetyNet, lanes: list[Lane]) -> set[Lane]:
    """Lanes whose division's DivisionMoveDate changed since their cursor noted it. The cursor (SQL) decides; Redis
    keeps what each cursor noted last, so a division whose date is unchanged costs no SQL."""
    dates = move_dates(ctx, lanes)
    known = net.noted_moves(lanes)
    moved, noted = set[Lane](), dict[Lane, str]()
    for lane in lanes:
        if lane.division not in dates.get(lane.connection_id, {}):
            continue
        date = dates[lane.connection_id][lane.division] or ""
        if known.get(lane) == date:
            continue
        if ctx.cursors.note_move_date(lane.connection_id, lane.division, lane.topic, date):
            log_event(log, "workers.delta_sync.division_moved", division=lane.division, topic=lane.topic)
            moved.add(lane)
        noted[lane] = date
    net.note_moves(noted)
    return moved


def _healthy(ctx: WorkerContext, net: SafetyNet, now: datetime) -> set[tuple[int, int, str]]:
    """(connection, division, lower-case topic) of the active subscriptions that may back off: not silent
    (`subscriptions.silence`), or silent in an episode an earlier cycle already answered with a walk at base.

    Going silent sends a lane back to base once; if the walks at base then find nothing, the division is idle, not
    deaf, and backs off again (an idle division is silent after SILENT_SUBSCRIPTION_HOURS, and walking it at base
    every cycle from then on would cost some 580 calls a day). Webhooks that are lost while changes go on are caught
    by the other rule: a walk that finds a change no webhook fetched sends the lane back to base."""
    seen = last_webhooks(ctx.redis, ctx.settings.redis_prefix)
    hours = ctx.settings.silent_subscription_hours
    with ctx.sessions() as session:
        rows = list(session.scalars(select(Subscription).where(Subscription.state == SubscriptionState.ACTIVE)))
    episodes = {
        (r.connection_id, r.division, r.topic.lower()): (last_webhook(r, seen) or stored_utc(r.created_at)).isoformat()
        for r in rows
        if is_silent(r, hours, now, seen)
    }
    answered = net.silent_episodes()
    net.note_silent_episodes(episodes)
    return {
        (r.connection_id, r.division, r.topic.lower())
        for r in rows
        if (pair := (r.connection_id, r.division, r.topic.lower())) not in episodes
        or answered.get(pair) == episodes[pair]
    }


def _text(value: object) -> str | None:
    return None if value is None else str(value)
