"""`POST /_sandbox/divisions`: a division added to a user's grant, seeded as 101 and 202 are."""

from __future__ import annotations

import httpx

from sandbox.clock import SandboxClock
from sandbox.config import SandboxConfig
from sandbox.entities import ENTITIES
from sandbox.store import Store
from tests.sandbox.conftest import Api, results


def counts(http: httpx.Client, division: int) -> dict[str, int]:
    """Records per resource of a division, as the control API lists them."""
    return {e.path: len(http.get(f"/_sandbox/records/{division}/{e.path}").json()["records"]) for e in ENTITIES}


def user_id(api: Api) -> str:
    return str(results(api.get("current/Me"))[0]["UserID"])


class TestAddDivision:
    def test_a_new_division_is_granted_listed_and_seeded_like_202(self, api: Api, sandbox_http: httpx.Client) -> None:
        response = sandbox_http.post("/_sandbox/divisions", json={"code": 404, "granted_to": user_id(api)})
        assert response.status_code == 201, response.text
        assert (response.json()["Code"], response.json()["Status"]) == (404, 1)
        assert {d["Code"]: d["Status"] for d in results(api.get("101/system/Divisions"))} == {
            101: 1,
            202: 1,
            303: 2,
            404: 1,
        }
        seeded = counts(sandbox_http, 404)
        assert seeded == counts(sandbox_http, 202)
        assert all(seeded.values())
        synced = results(api.get("404/sync/CRM/Accounts", **{"$filter": "Timestamp gt 1", "$select": "ID"}))
        assert len(synced) == seeded["crm/Accounts"]

    def test_granted_to_nobody_is_listed_for_no_one(self, api: Api, sandbox_http: httpx.Client) -> None:
        assert sandbox_http.post("/_sandbox/divisions", json={"code": 505, "granted_to": None}).status_code == 201
        assert 505 not in {d["Code"] for d in results(api.get("101/system/Divisions"))}
        assert api.get("505/crm/Accounts").status_code == 403
        assert sandbox_http.post("/_sandbox/divisions/505", json={"granted": True}).status_code == 200
        assert 505 in {d["Code"] for d in results(api.get("101/system/Divisions"))}

    def test_refused_for_an_existing_division_an_unknown_user_or_no_code(self, sandbox_http: httpx.Client) -> None:
        assert sandbox_http.post("/_sandbox/divisions", json={"code": 202}).status_code == 409
        assert sandbox_http.post("/_sandbox/divisions", json={"code": 404, "granted_to": "nobody"}).status_code == 400
        assert sandbox_http.post("/_sandbox/divisions", json={}).status_code == 400
        assert sandbox_http.post("/_sandbox/divisions", json={"code": 404}).status_code == 201  # nothing was made


class TestSeedOfANewDivision:
    def test_the_same_in_every_sandbox_and_the_start_seed_untouched(self) -> None:
        plain, added, again = (Store(SandboxConfig(), SandboxClock()) for _ in range(3))
        for store in (added, again):
            store.add_granted_division(404, store.default_user_id)
        accounts = next(e for e in ENTITIES if e.path == "crm/Accounts")
        assert [r["ID"] for r in added.rows(404, accounts)] == [r["ID"] for r in again.rows(404, accounts)]
        assert {r["ID"] for r in added.rows(404, accounts)}.isdisjoint(r["ID"] for r in added.rows(101, accounts))
        # Its own rng: the ids drawn after it are the ones a sandbox without it draws.
        assert added.new_id() == plain.new_id()
