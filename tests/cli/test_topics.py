"""`exact-pipeline topics [--json]`: every catalogue topic with its read paths, record shape, EntityTypes and writes."""

from __future__ import annotations

import json
from typing import Any

from typer.testing import CliRunner

from cli.main import _mount, app
from exact import CATALOGUE

runner = CliRunner()
KEYS = {
    "topic",
    "webhook",
    "read_path",
    "fetch_path",
    "path",
    "sync_path",
    "key",
    "shape",
    "lines",
    "line_path",
    "entity_types",
    "write",
}


def listed() -> list[dict[str, Any]]:
    _mount()
    result = runner.invoke(app, ["topics", "--json"])
    assert result.exit_code == 0, result.output
    return list(json.loads(result.output))


def test_json_lists_every_catalogue_topic_in_order_with_its_fields() -> None:
    topics = listed()
    assert [t["topic"] for t in topics] == list(CATALOGUE.topics())
    for shown in topics:
        assert set(shown) == KEYS
        entity = CATALOGUE.require(shown["topic"])
        assert shown["webhook"] is entity.webhook
        assert shown["read_path"] == ("sync" if entity.sync_path else "walk")
        assert shown["fetch_path"] == (("sync" if entity.sync_path else "keyed") if entity.webhook else None)
        assert (shown["path"], shown["sync_path"], shown["key"]) == (entity.path, entity.sync_path, entity.key)
        assert shown["shape"] == entity.shape
        assert shown["lines"] == (entity.lines.name if entity.lines else None)
        assert shown["line_path"] == (entity.lines.path if entity.lines else None)
        assert shown["entity_types"] == [t for t in (entity.deleted, entity.lines and entity.lines.deleted) if t]
        assert shown["write"] == (entity.write.name if entity.write else None)


def test_json_says_what_a_user_asks_of_a_few_topics() -> None:
    topics = {t["topic"]: t for t in listed()}
    assert not topics["GLAccounts"]["webhook"]
    assert topics["GLAccounts"]["fetch_path"] is None
    assert (topics["SalesInvoices"]["shape"], topics["SalesInvoices"]["lines"]) == ("line_rows", "SalesInvoiceLines")
    assert topics["Accounts"]["write"] == "Account"
    assert topics["Accounts"]["lines"] is None


def test_the_table_names_every_topic() -> None:
    _mount()
    result = runner.invoke(app, ["topics"])
    assert result.exit_code == 0, result.output
    for topic in CATALOGUE.topics():
        assert topic in result.output
    assert "delta sync only" in result.output
    assert "SalesInvoiceLines" in result.output
