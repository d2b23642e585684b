"""A named client's share of a division's budget, on the real database and Redis: spent per client and division,
lowered with the division's own limits, the day counted too, and no share for the all-access client."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator

import pytest
from sqlalchemy import delete
from sqlalchemy.orm import Session, sessionmaker

from commands import clients
from commands.models import DEFAULT_CLIENT, CommandClient
from commands.schema import Command
from commands.share import ShareSpent, calls_at_most, spend_share
from commands.store import submit
from connections.factory import limiter_from_settings
from connections.models import Connection
from runtime.settings import Settings
from sync.context import WorkerContext
from tests.connections.two_apps import BE, be_entry, with_apps
from tests.factories import create_connection


@pytest.fixture
def session(session_factory: sessionmaker[Session]) -> Iterator[Session]:
    with session_factory() as session:
        yield session
        # The run shares one database, and a named client turns commands on without COMMANDS_TOKEN.
        session.execute(delete(CommandClient))
        session.commit()


def kept(session: Session, client: str, division: int = 101) -> tuple[str, Command]:
    """A kept Account create of `client`: it names no reference, so it costs 2 calls (the write, its read-back)."""
    command = Command(
        key=f"k-{uuid.uuid4().hex}",
        division=division,
        entity="Account",
        action="create",
        fields={"Code": "9001", "Name": "Co"},
    )
    submit(session, command, client=client)
    return command.key, command


# No connection is stored under this id: it is the `default` app's, as every connection is with EXACT_APPS unset.
UNSTORED = 0


def spend(
    ctx: WorkerContext, session: Session, client: str, division: int = 101, connection_id: int = UNSTORED
) -> None:
    spend_share(ctx, *kept(session, client, division), connection_id)


def test_a_client_spends_at_most_its_share_and_others_keep_theirs(settings: Settings, session: Session) -> None:
    ctx = WorkerContext.from_settings(settings.model_copy(update={"rate_limit_per_minute": 20}))
    shop, erp = f"shop-{uuid.uuid4().hex[:6]}", f"erp-{uuid.uuid4().hex[:6]}"
    for name in (shop, erp):
        clients.add(session, name, divisions=None, share=0.2)  # 4 of the division's 20 calls a minute
    spend(ctx, session, shop)
    spend(ctx, session, shop)
    with pytest.raises(ShareSpent, match=shop) as spent:
        spend(ctx, session, shop)
    assert 0 < spent.value.retry_at - time.time() <= ctx.settings.rate_limit_window_seconds * 1.1
    spend(ctx, session, shop, division=202)  # a share per division
    spend(ctx, session, erp)  # and per client
    for _ in range(5):
        spend(ctx, session, DEFAULT_CLIENT)  # the all-access client has no share to keep to


def test_the_division_limit_exact_gives_lowers_the_share(settings: Settings, session: Session) -> None:
    ctx = WorkerContext.from_settings(settings)
    limiter_from_settings(settings).observe(101, {"X-RateLimit-Minutely-Limit": "20"}, 200)
    shop = f"shop-{uuid.uuid4().hex[:6]}"
    clients.add(session, shop, divisions=None, share=0.1)  # 6 of 60 by the settings, 2 of the 20 Exact allows
    spend(ctx, session, shop)
    with pytest.raises(ShareSpent):
        spend(ctx, session, shop)


def test_the_share_is_of_the_connections_app_not_the_default_apps(settings: Settings, session: Session) -> None:
    # Exact told app `be` its division allows 20 a minute; the default app's stays at the settings' 60.
    two = with_apps(settings, {"be": be_entry(settings.exact_base_url)})
    ctx = WorkerContext.from_settings(two)
    connection = create_connection(session)
    connection.app, connection.client_id = "be", BE.client_id
    session.commit()
    division = 300 + uuid.uuid4().int % 600
    limiter_from_settings(two, client_id=BE.client_id).observe(division, {"X-RateLimit-Minutely-Limit": "20"}, 200)
    shop = f"shop-{uuid.uuid4().hex[:6]}"
    clients.add(session, shop, divisions=None, share=0.1)  # 2 of be's 20 a minute; 6 of the default app's 60
    spend(ctx, session, shop, division, connection_id=connection.id)
    with pytest.raises(ShareSpent):
        spend(ctx, session, shop, division, connection_id=connection.id)
    session.execute(delete(Connection).where(Connection.id == connection.id))
    session.commit()


def test_the_day_is_shared_too(settings: Settings, session: Session) -> None:
    ctx = WorkerContext.from_settings(settings.model_copy(update={"rate_limit_per_day": 10}))
    shop = f"shop-{uuid.uuid4().hex[:6]}"
    clients.add(session, shop, divisions=None, share=0.3)  # 3 calls a day: one command of 2
    spend(ctx, session, shop)
    with pytest.raises(ShareSpent) as spent:
        spend(ctx, session, shop)
    midnight = (time.time() // 86400 + 1) * 86400
    assert abs(spent.value.retry_at - midnight) < 5


def test_a_command_costs_the_calls_its_write_can_make() -> None:
    line = {"Item": "ITEM-001", "Quantity": 2, "GLAccount": "8000", "VATCode": "2"}
    invoice = Command(
        key="k",
        division=101,
        entity="SalesInvoice",
        action="create",
        fields={"InvoiceTo": "1001", "Currency": "EUR", "YourRef": "x"},
        lines=[line, dict(line)],
    )
    assert calls_at_most(invoice) == 5 + 2  # five distinct references, the POST, the read-back
    update = Command(key="k", division=101, entity="Account", action="update", id=uuid.uuid4(), fields={"City": "A"})
    assert calls_at_most(update) == 3  # the read, the PUT, the read-back
