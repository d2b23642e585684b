"""The questions other packages ask of the subscriptions table: which pairs are tracked, which lanes are live.

They differ on purpose, from the widest to the narrowest:

* `tracked_pairs`: every webhook pair (not removed, sync-only or suspended), whatever its connection. What the receiver
  accepts: it answers without knowing about consent, and an event it hands on that no lane takes is logged by the
  worker as untracked.
* `synced_lanes`: every lane not removed or suspended on a consented connection. What the delta sync walks: the
  safety net runs for a `failed` pair too, since a pair whose webhook could not be registered gets its changes from
  nowhere else, and a `sync_only` lane (GLAccounts, VATCodes, Currencies) has no other way in at all. A `suspended`
  one's division is no longer granted: every walk would be a 403.
* `live_lanes`: (division, topic) → connection for pairs `active` or `pending` on a consented connection. Where a
  webhook event is fetched.
"""

from __future__ import annotations

from sqlalchemy import Connection as DbConnection
from sqlalchemy import select
from sqlalchemy.orm import Session

from connections.models import Connection
from connections.queries import consented
from subscriptions.models import Subscription, SubscriptionState

__all__ = ["LIVE_STATES", "live_lanes", "synced_lanes", "tracked_pairs"]

# The states of a pair whose webhooks we fetch: registered in Exact, or about to be.
LIVE_STATES = (SubscriptionState.ACTIVE, SubscriptionState.PENDING)


def tracked_pairs(db: Session | DbConnection) -> frozenset[tuple[int, str]]:
    """(division, lower-case topic) of every webhook subscription not removed or suspended, of any connection."""
    query = select(Subscription.division, Subscription.topic).where(
        Subscription.state.not_in((SubscriptionState.REMOVED, SubscriptionState.SYNC_ONLY, SubscriptionState.SUSPENDED))
    )
    return frozenset((int(d), str(t).lower()) for d, t in db.execute(query))


def synced_lanes(session: Session) -> list[tuple[int, int, str]]:
    """(connection, division, topic) of every subscription not removed or suspended on a consented connection, in
    that order."""
    query = (
        select(Subscription.connection_id, Subscription.division, Subscription.topic)
        .join(Connection, Connection.id == Subscription.connection_id)
        .where(Subscription.state.not_in((SubscriptionState.REMOVED, SubscriptionState.SUSPENDED)), consented())
        .order_by(Subscription.connection_id, Subscription.division, Subscription.topic)
    )
    return [(int(c), int(d), str(t)) for c, d, t in session.execute(query)]


def live_lanes(session: Session) -> dict[tuple[int, str], int]:
    """(division, lower-case topic) → connection, for pairs `active` or `pending` on a consented connection."""
    query = (
        select(Subscription.division, Subscription.topic, Subscription.connection_id)
        .join(Connection, Connection.id == Subscription.connection_id)
        .where(Subscription.state.in_(LIVE_STATES), consented())
        .order_by(Subscription.id)
    )
    # When two connections cover one pair (two users of one company), the newest subscription wins.
    return {(int(d), str(t).lower()): int(c) for d, t, c in session.execute(query)}
