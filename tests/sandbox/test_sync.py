from __future__ import annotations

import httpx
import pytest

from sandbox.config import SandboxConfig
from tests.sandbox.conftest import Api, results


def walk(api: Api, path: str, cursor: int, select: str = "ID,Timestamp") -> tuple[list[dict[str, object]], int]:
    url, rows, calls = f"{path}", [], 0
    params: dict[str, str] = {"$filter": f"Timestamp gt {cursor}L", "$select": select}
    while url:
        response = api.get(url, **params) if calls == 0 else api.get(url)
        calls += 1
        page = response.json()["d"]
        rows += page["results"]
        url = page.get("__next")
    return rows, calls


class TestSync:
    def test_pages_of_1000_ordered_by_timestamp(self, api: Api, sandbox_http: httpx.Client) -> None:
        sandbox_http.post("/_sandbox/records/101/crm/Contacts/bulk", json={"count": 2100})
        rows, calls = walk(api, "101/sync/CRM/Contacts", 0)
        assert calls == 3
        stamps = [r["Timestamp"] for r in rows]
        assert stamps == sorted(stamps)
        assert len(set(stamps)) == len(stamps) == 2120

    def test_cursor_returns_only_later_changes(self, api: Api, sandbox_http: httpx.Client) -> None:
        rows, _ = walk(api, "101/sync/CRM/Accounts", 0)
        cursor = max(int(r["Timestamp"]) for r in rows)  # type: ignore[call-overload]
        target = rows[5]["ID"]
        sandbox_http.put(f"/_sandbox/records/101/crm/Accounts/{target}", json={"City": "Delft"})
        later, _ = walk(api, "101/sync/CRM/Accounts", cursor)
        assert [r["ID"] for r in later] == [target]

    def test_a_timestamp_filter_is_required(self, api: Api) -> None:
        assert api.get("101/sync/CRM/Accounts", **{"$select": "ID"}).status_code == 400

    def test_select_star_is_refused(self, api: Api) -> None:
        assert api.get("101/sync/CRM/Accounts", **{"$filter": "Timestamp gt 1L", "$select": "*"}).status_code == 400

    def test_deleted_lists_deletions_with_entity_type(self, api: Api, sandbox_http: httpx.Client) -> None:
        target = results(api.get("101/crm/Contacts"))[0]["ID"]
        sandbox_http.delete(f"/_sandbox/records/101/crm/Contacts/{target}")
        rows = results(api.get("101/sync/Deleted", **{"$filter": "Timestamp gt 1L and EntityType eq 5"}))
        assert [(r["EntityKey"], r["EntityType"], r["Division"]) for r in rows] == [(target, 5, 101)]

    def test_division_move_regenerates_timestamps(self, api: Api, sandbox_http: httpx.Client) -> None:
        rows, _ = walk(api, "101/sync/CRM/Accounts", 0)
        cursor = max(int(r["Timestamp"]) for r in rows)  # type: ignore[call-overload]
        moved = sandbox_http.post("/_sandbox/divisions/101", json={"move": True}).json()
        assert moved["DivisionMoveDate"] is not None
        later, _ = walk(api, "101/sync/CRM/Accounts", cursor)
        assert len(later) == len(rows)


class TestSyncPageSize:
    @pytest.fixture
    def sandbox_config(self) -> SandboxConfig:
        return SandboxConfig(sync_page_size=10, page_size=7)

    def test_page_sizes_are_configurable(self, api: Api) -> None:
        _, calls = walk(api, "101/sync/CRM/Accounts", 0)
        assert calls == 4  # 32 seeded accounts, 10 a page
        assert len(results(api.get("101/crm/Contacts"))) == 7
