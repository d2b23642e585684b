"""What reconcile must do to make Exact's subscriptions match ours: a pure function of both sides."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

__all__ = ["Action", "Desired", "Observed", "plan"]


@dataclass(frozen=True)
class Desired:
    division: int
    topic: str
    callback_url: str


@dataclass(frozen=True)
class Observed:
    """A subscription Exact holds for this app (an app only ever sees its own)."""

    exact_id: str
    division: int
    topic: str
    callback_url: str


@dataclass(frozen=True)
class Action:
    kind: str  # create | adopt | delete | recreate | unreachable
    division: int
    topic: str
    reason: str
    exact_id: str | None = None
    callback_url: str | None = None


def plan(
    desired: Iterable[Desired],
    observed: Iterable[Observed],
    *,
    inactive: Iterable[int] = (),
    ungranted: Iterable[int] = (),
    known: Iterable[tuple[int, str, str | None]] = (),
) -> list[Action]:
    """The actions, division by division, in a stable order.

    `known` holds (division, topic, exact_id) of what our table already recorded, so an unchanged pair
    needs no action at all (and no write)."""
    inactive, ungranted = set(inactive), set(ungranted)
    recorded = {(d, t.lower()): e for d, t, e in known}
    wanted = {(d.division, d.topic.lower()): d for d in desired}
    held: dict[tuple[int, str], list[Observed]] = {}
    for o in observed:
        held.setdefault((o.division, o.topic.lower()), []).append(o)
    actions: list[Action] = []
    for pair in sorted(set(wanted) | set(held)):
        division, _topic = pair
        want, have = wanted.get(pair), held.get(pair, [])
        topic = want.topic if want else have[0].topic
        if division in ungranted:
            actions.append(Action("unreachable", division, topic, "division no longer granted to the app (403)"))
            continue
        if division in inactive:
            actions += [Action("delete", division, topic, "division archived or inactive", o.exact_id) for o in have]
            continue
        if want is None:
            actions += [Action("delete", division, topic, "not wanted: would fire into the void", o.exact_id)
                        for o in have]  # fmt: skip
            continue
        actions += _match(want, have, recorded.get(pair))
    return actions


def _match(want: Desired, have: list[Observed], recorded_id: str | None) -> list[Action]:
    same = [o for o in have if o.callback_url == want.callback_url]
    drifted = [o for o in have if o.callback_url != want.callback_url]
    actions = [
        Action("delete" if same else "recreate", want.division, want.topic,
               f"CallbackURL drifted from {want.callback_url}: {o.callback_url}", o.exact_id, want.callback_url)
        for o in drifted
    ]  # fmt: skip
    if same:
        if same[0].exact_id != recorded_id:
            actions.append(Action("adopt", want.division, want.topic, "already in Exact", same[0].exact_id))
    elif not drifted:
        actions.append(Action("create", want.division, want.topic, "missing in Exact", callback_url=want.callback_url))
    return actions
