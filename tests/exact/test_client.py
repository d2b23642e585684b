from __future__ import annotations

import httpx
import pytest

from exact import (
    DataAlreadyExists,
    EndpointBlocked,
    ExactUnavailable,
    Forbidden,
    ForeignLink,
    NotFound,
    Query,
    ValidationError,
    string_literal,
)
from tests.conftest import ServerThread
from tests.pipeline.connected import Connected


def calls(sandbox: ServerThread, **filters: object) -> int:
    params = {k: str(v) for k, v in filters.items()}
    return int(httpx.get(f"{sandbox.url}/_sandbox/calls", params=params).json()["total"])


class TestPaging:
    def test_250_records_in_5_calls_while_records_change(self, connected: Connected, sandbox: ServerThread) -> None:
        httpx.post(f"{sandbox.url}/_sandbox/records/101/crm/Contacts/bulk", json={"count": 230})
        client = connected.client()
        before = calls(sandbox, endpoint="crm/Contacts")
        seen: list[str] = []
        for number, page in enumerate(client.iter_pages(101, "crm/Contacts", Query(select=["ID", "LastName"]))):
            seen += [r["ID"] for r in page]
            # Change a record already served and one not yet served, between pages.
            if number < 3:
                for key in (seen[0], seen[-1]):
                    httpx.put(f"{sandbox.url}/_sandbox/records/101/crm/Contacts/{key}", json={"LastName": f"p{number}"})
        assert calls(sandbox, endpoint="crm/Contacts") - before == 5
        assert len(seen) == len(set(seen)) == 250

    def test_division_is_explicit_on_every_call(self, connected: Connected) -> None:
        client = connected.client()
        a = {r["ID"] for r in client.iter_records(101, "crm/Contacts")}
        b = {r["ID"] for r in client.iter_records(202, "crm/Contacts")}
        assert a
        assert b
        assert not a & b


class TestRequests:
    def test_hostile_string_stays_a_literal(self, connected: Connected) -> None:
        client = connected.client()
        hostile_name = "x' or 1 eq 1 or Name eq 'y"
        hostile = Query(filter=f"Name eq {string_literal(hostile_name)}", select=["ID"])
        assert list(client.iter_records(101, "crm/Accounts", hostile)) == []
        name = "O'Brien 7"
        quoted = Query(filter=f"Name eq {string_literal(name)}", select=["ID", "Name"])
        assert [r["Name"] for r in client.iter_records(101, "crm/Accounts", quoted)] == ["O'Brien 7"]
        # Unicode, URL metacharacters and an encoded quote reach Exact as the same characters, and match only
        # themselves.
        for tricky in ("Zoë & Ünal 'Q'", "a/b?c=d#e%27 or 1 eq 1", "‮evil"):
            created = client.create(101, "crm/Accounts", {"Name": tricky})
            query = Query(filter=f"Name eq {string_literal(tricky)}", select=["ID", "Name"])
            assert [(r["ID"], r["Name"]) for r in client.iter_records(101, "crm/Accounts", query)] == [
                (created["ID"], tricky)
            ]

    def test_create_get_update_delete(self, connected: Connected) -> None:
        client = connected.client()
        created = client.create(101, "crm/Contacts", {"FirstName": "Ann", "LastName": "de Vries"})
        key = created["ID"]
        record = client.get_by_key(101, "crm/Contacts", key)
        client.update(101, "crm/Contacts", key, {**record, "LastName": "Visser"})
        assert client.get_by_key(101, "crm/Contacts", key)["LastName"] == "Visser"
        client.delete(101, "crm/Contacts", key)
        with pytest.raises(NotFound):
            client.get_by_key(101, "crm/Contacts", key)

    def test_errors_carry_exacts_message(self, connected: Connected, sandbox: ServerThread) -> None:
        client = connected.client()
        with pytest.raises(ValidationError, match="mandatory filtering") as info:
            client.get(101, "crm/Accounts")
        assert info.value.status == 400
        httpx.post(f"{sandbox.url}/_sandbox/divisions/202", json={"granted": False})
        with pytest.raises(Forbidden, match="Forbidden - User division"):
            client.get(202, "crm/Contacts")

    def test_me_and_divisions(self, connected: Connected) -> None:
        client = connected.client()
        assert client.me()["CurrentDivision"] == 101
        assert {d["Code"] for d in client.divisions(101)} == {101, 202, 303}


class TestRetries:
    def test_5xx_are_retried_with_backoff(self, connected: Connected, sandbox: ServerThread) -> None:
        httpx.post(f"{sandbox.url}/_sandbox/faults", json={"kind": "error", "endpoint": "crm/Contacts", "count": 2})
        assert connected.client().get(101, "crm/Contacts", Query(top=1))
        assert calls(sandbox, endpoint="crm/Contacts", status=500) == 2

    def test_retries_are_bounded(self, connected: Connected, sandbox: ServerThread) -> None:
        httpx.post(f"{sandbox.url}/_sandbox/faults", json={"kind": "error", "endpoint": "crm/Contacts", "count": 50})
        with pytest.raises(ExactUnavailable):
            connected.client().get(101, "crm/Contacts")
        assert calls(sandbox, endpoint="crm/Contacts", status=500) == 4  # 1 + 3 retries

    def test_4xx_are_not_retried_and_count_towards_a_local_block(
        self, connected: Connected, sandbox: ServerThread
    ) -> None:
        client = connected.client()
        missing = "00000000-0000-0000-0000-000000000001"
        for _ in range(7):
            with pytest.raises(NotFound):
                client.get_by_key(101, "crm/Contacts", missing)
        with pytest.raises(EndpointBlocked):
            client.get(101, "crm/Contacts")
        assert calls(sandbox, endpoint="crm/Contacts", status=404) == 7
        # Exact blocks at 10: fetching stops at its share (7), leaving commands theirs (2) and one spare.
        assert client.get(101, "financial/GLAccounts")

    def test_functional_500_is_not_retried(self, connected: Connected, sandbox: ServerThread) -> None:
        client = connected.client()
        hook = ServerThread(_ok_app())
        with hook:
            body = {"Topic": "Contacts", "CallbackURL": f"{hook.url}/hook"}
            client.create(101, "webhooks/WebhookSubscriptions", body)
            with pytest.raises(DataAlreadyExists):
                client.create(101, "webhooks/WebhookSubscriptions", body)
        assert calls(sandbox, endpoint="webhooks/WebhookSubscriptions", status=500) == 1


def _ok_app() -> object:
    from starlette.applications import Starlette
    from starlette.responses import Response
    from starlette.routing import Route

    async def ok(_request: object) -> Response:
        return Response()

    return Starlette(routes=[Route("/hook", ok, methods=["POST"])])


class TestForeignLinks:
    def test_a_next_link_to_another_host_is_not_followed(self, connected: Connected, sandbox: ServerThread) -> None:
        heard: list[dict[str, str]] = []
        with ServerThread(_recording_app(heard)) as foreign:
            link = f"{foreign.url}/api/v1/101/crm/Contacts?$skiptoken=guid'00000000-0000-0000-0000-000000000001'"
            httpx.post(f"{sandbox.url}/_sandbox/faults", json={"kind": "next", "endpoint": "crm/Contacts", "url": link})
            with pytest.raises(ForeignLink) as caught:
                list(connected.client().iter_records(101, "crm/Contacts"))
        assert heard == []  # not a request, so no bearer token either
        assert caught.value.origin == foreign.url


def _recording_app(heard: list[dict[str, str]]) -> object:
    """A host that is not Exact: it records each request's headers and answers an empty page."""
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    async def page(request: Request) -> JSONResponse:
        heard.append(dict(request.headers))
        return JSONResponse({"d": {"results": []}})

    return Starlette(routes=[Route("/{path:path}", page)])
