"""What reconcile must do to make Exact's subscriptions match ours: a pure function of both sides.

Rules, per (division, topic) pair — topics compare case-insensitively, one subscription per app, division and topic:
- division no longer granted (403): Exact cannot be listed or changed there; a wanted pair is marked `unreachable`.
- division archived or inactive: every subscription Exact holds there is deleted (it would fire into the void) and a
  wanted pair is `suspend`ed until the division is active again.
- not wanted: every subscription Exact holds for the pair is deleted.
- wanted: one Exact holds with our CallbackURL is kept (`adopt`ed when our table does not record its ID yet); one
  whose CallbackURL drifted is deleted and created again (`recreate`: Exact cannot update one); duplicates are
  deleted; none at all is `create`d.
A pair that already matches gives no action, so a second reconcile with nothing changed writes nothing.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

__all__ = ["INACTIVE", "UNGRANTED", "Action", "Desired", "Observed", "plan"]

INACTIVE = "division archived or inactive"
UNGRANTED = "division no longer granted to the app (403)"


@dataclass(frozen=True)
class Desired:
    """A pair we want; `exact_id` is the ID our table records for it, `note` the reason it was last set aside."""

    division: int
    topic: str
    callback_url: str
    exact_id: str | None = None
    note: str | None = None


@dataclass(frozen=True)
class Observed:
    """A subscription Exact holds for this app (an app only ever sees its own)."""

    exact_id: str
    division: int
    topic: str
    callback_url: str


@dataclass(frozen=True)
class Action:
    kind: str  # create | adopt | delete | recreate | suspend | unreachable
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
) -> list[Action]:
    """The actions, pair by pair in (division, topic) order; deletes of a pair come before its create."""
    inactive, ungranted = set(inactive), set(ungranted)
    wanted = {(d.division, d.topic.lower()): d for d in desired}
    held: dict[tuple[int, str], list[Observed]] = {}
    for o in sorted(observed, key=lambda o: o.exact_id):
        held.setdefault((o.division, o.topic.lower()), []).append(o)
    actions: list[Action] = []
    for pair in sorted(set(wanted) | set(held)):
        want, have = wanted.get(pair), held.get(pair, [])
        if pair[0] in ungranted:
            actions += _set_aside(want, "unreachable", UNGRANTED)
        elif pair[0] in inactive:
            actions += [
                Action("delete", o.division, o.topic, f"{INACTIVE}: would fire into the void", o.exact_id) for o in have
            ]
            actions += _set_aside(want, "suspend", INACTIVE)
        elif want is None:
            actions += [
                Action("delete", o.division, o.topic, "not tracked by us: would fire into the void", o.exact_id)
                for o in have
            ]
        else:
            actions += _match(want, have)
    return actions


def _set_aside(want: Desired | None, kind: str, reason: str) -> list[Action]:
    if want is None or (want.note == reason and want.exact_id is None):
        return []
    return [Action(kind, want.division, want.topic, reason)]


def _match(want: Desired, have: list[Observed]) -> list[Action]:
    same = [o for o in have if o.callback_url == want.callback_url]
    drifted = [o for o in have if o.callback_url != want.callback_url]
    # Prefer the one our table records, so a duplicate never costs us the ID we already know.
    same.sort(key=lambda o: o.exact_id != want.exact_id)
    actions = [
        Action("delete", want.division, want.topic, "duplicate of " + same[0].exact_id, o.exact_id) for o in same[1:]
    ]
    drift = f"CallbackURL drifted from {want.callback_url}: "
    if same:
        actions += [Action("delete", want.division, want.topic, drift + o.callback_url, o.exact_id) for o in drifted]
        if same[0].exact_id != want.exact_id or want.note is not None:
            actions.append(Action("adopt", want.division, want.topic, "already in Exact", same[0].exact_id))
    elif drifted:
        first, rest = drifted[0], drifted[1:]
        actions += [Action("delete", want.division, want.topic, drift + o.callback_url, o.exact_id) for o in rest]
        actions.append(
            Action("recreate", want.division, want.topic, drift + first.callback_url, first.exact_id, want.callback_url)
        )
    else:
        gone = f"gone from Exact (was {want.exact_id})" if want.exact_id else "missing in Exact"
        actions.append(Action("create", want.division, want.topic, gone, callback_url=want.callback_url))
    return actions
