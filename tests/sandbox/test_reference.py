"""Every path and field the sandbox serves exists in the project's reference copy (`exact/reference.json`)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from sandbox.config import SandboxConfig
from sandbox.entities import ENTITIES, FIELD_REPORTS, RESOURCES, served_paths
from sandbox.reference_trim import dumps, trim
from tests.sandbox.conftest import Api, results

ROOT = Path(__file__).resolve().parents[2]
REFERENCE = ROOT / "exact" / "reference.json"
CATALOGUE = ROOT.parent / "shared" / "exact-catalogue.json"


def reference() -> dict[str, dict[str, str]]:
    """path (lower case) -> {field: type}; the project's copy keys resources by url."""
    data = json.loads(REFERENCE.read_text(encoding="utf-8"))
    resources: Any = data["resources"]
    items = resources.items() if isinstance(resources, dict) else ((r["url"], r) for r in resources)
    out: dict[str, dict[str, str]] = {}
    for url, res in items:
        fields = res["fields"]
        out[url.lower()] = dict(fields) if isinstance(fields, dict) else {f["name"]: f["type"] for f in fields}
    return out


def served_fields() -> dict[str, dict[str, str]]:
    data = json.loads(RESOURCES.read_text(encoding="utf-8"))
    return {r["url"]: dict(r["fields"]) for r in data["resources"]}


def reported(ref: dict[str, dict[str, str]], path: str) -> set[str]:
    """The reference's fields of `path`, with the renames production is reported to make (gotcha 5)."""
    renames = FIELD_REPORTS.get(path.lower(), {})
    return {renames.get(name, name) for name in ref[path.lower()]}


class TestAgainstTheReference:
    def test_every_served_path_and_field_exists_with_its_type(self) -> None:
        ref = reference()
        problems = []
        for path, fields in served_fields().items():
            if path.lower() not in ref:
                problems.append(f"{path}: not in exact/reference.json")
                continue
            problems += [
                f"{path}.{name}: {type_} here, {ref[path.lower()].get(name)} there"
                for name, type_ in fields.items()
                if ref[path.lower()].get(name) != type_
            ]
        assert not problems

    def test_resources_json_holds_exactly_what_is_served(self) -> None:
        assert sorted(served_fields(), key=str.lower) == sorted(served_paths(), key=str.lower)

    @pytest.mark.skipif(not CATALOGUE.exists(), reason="the shared catalogue is not beside the project")
    def test_resources_json_is_the_trim_of_the_catalogue(self) -> None:
        catalogue = json.loads(CATALOGUE.read_text(encoding="utf-8"))
        assert RESOURCES.read_text(encoding="utf-8") == dumps(trim(catalogue, served_paths()))


@pytest.fixture
def sandbox_config() -> SandboxConfig:
    """One GET per served resource is more than production's 60 a minute."""
    return SandboxConfig(minute_limit=1000)


class TestServedRecords:
    def test_every_served_record_names_only_reference_fields(self, api: Api) -> None:
        ref = reference()
        for entity in ENTITIES:
            extra = {"$filter": f"{entity.key} ne null"} if entity.mandatory_filter else {}
            if entity.service:
                record = results(api.get(f"101/{entity.path}", **extra))[0]
                assert set(record) - {"__metadata"} <= reported(ref, entity.path), entity.path
            if entity.sync_path:
                row = results(api.get(f"101/{entity.sync_path}", **{"$filter": "Timestamp gt 0L"}))[0]
                assert set(row) - {"__metadata"} <= reported(ref, entity.sync_path), entity.sync_path

    def test_the_system_resources_too(self, api: Api) -> None:
        ref = reference()
        me = results(api.get("current/Me"))[0]
        assert set(me) - {"__metadata"} <= set(ref["current/me"])
        division = results(api.get("101/system/Divisions"))[0]
        assert set(division) - {"__metadata"} <= set(ref["system/divisions"])
        api.http.delete("/_sandbox/records/101/crm/Contacts/" + results(api.get("101/crm/Contacts"))[0]["ID"])
        deleted = results(api.get("101/sync/Deleted", **{"$filter": "Timestamp gt 0L"}))[0]
        assert set(deleted) - {"__metadata"} <= set(ref["sync/deleted"])
        planted = {"Division": 101, "Topic": "Items", "CallbackURL": "https://example.nl/hook"}
        api.http.post("/_sandbox/webhooks/subscriptions", json=planted)
        subscription = results(api.get("101/webhooks/WebhookSubscriptions"))[0]
        assert set(subscription) - {"__metadata"} <= set(ref["webhooks/webhooksubscriptions"])
