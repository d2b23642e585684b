"""Migration 20261201_0003 on a database that mirrored invoices and orders as rows: they are resynced as documents."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from sqlalchemy import create_engine, inspect, text

from runtime.migrate import alembic_config, upgrade

BEFORE = "20261201_0002"


def test_invoice_and_order_lanes_start_over_and_the_document_state_comes_and_goes(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'old.db'}"
    upgrade(url, BEFORE)
    engine = create_engine(url)
    with engine.begin() as conn:
        for n, topic in enumerate(("SalesInvoices", "PurchaseOrders", "Accounts")):
            conn.execute(
                text(
                    "INSERT INTO mirror_records (division, topic, key, version, deleted, record, updated_at) "
                    "VALUES (101, :topic, :key, 5, false, '{}', '2026-11-30')"
                ),
                {"topic": topic, "key": f"k{n}"},
            )
            conn.execute(
                text(
                    "INSERT INTO lane_cursors (connection_id, division, topic, timestamp, modified_ms, "
                    "deleted_timestamp, generation, updated_at) VALUES (1, 101, :topic, 500, 600, 700, 2, '2026-11-30')"
                ),
                {"topic": topic},
            )
    upgrade(url)
    with engine.connect() as conn:
        assert conn.execute(text("SELECT topic FROM mirror_records")).scalars().all() == ["Accounts"]
        cursors = conn.execute(
            text("SELECT topic, timestamp, modified_ms, deleted_timestamp, generation FROM lane_cursors ORDER BY topic")
        ).all()
    assert [tuple(row) for row in cursors] == [
        ("Accounts", 500, 600, 700, 2),
        ("PurchaseOrders", 0, 0, 0, 3),
        ("SalesInvoices", 0, 0, 0, 3),
    ]
    assert "sync_documents" in inspect(engine).get_table_names()
    command.downgrade(alembic_config(url), BEFORE)
    assert "sync_documents" not in inspect(engine).get_table_names()
    engine.dispose()
