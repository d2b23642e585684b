from __future__ import annotations

import re
from urllib.parse import parse_qs, urlsplit

import httpx

from tests.sandbox.conftest import Api, error_message, results

MS_DATE = re.compile(r"^/Date\(\d+\)/$")


class TestEnvelopes:
    def test_me_is_a_results_list(self, api: Api) -> None:
        me = results(api.get("current/Me"))
        assert len(me) == 1
        assert me[0]["CurrentDivision"] == 101

    def test_divisions_lists_the_granted_ones_with_status(self, api: Api) -> None:
        divisions = {d["Code"]: d["Status"] for d in results(api.get("101/system/Divisions"))}
        assert divisions == {101: 1, 202: 1, 303: 2}

    def test_top_answers_a_bare_list(self, api: Api) -> None:
        body = api.get("101/crm/Contacts", **{"$top": "2"}).json()
        assert isinstance(body["d"], list)
        assert len(body["d"]) == 2

    def test_records_carry_metadata_and_ms_dates(self, api: Api) -> None:
        record = results(api.get("101/crm/Contacts"))[0]
        assert record["__metadata"]["uri"].endswith(f"crm/Contacts(guid'{record['ID']}')")
        assert MS_DATE.match(record["Modified"])

    def test_without_accept_json_the_answer_is_xml(self, api: Api) -> None:
        headers = {"Authorization": api.headers()["Authorization"]}
        response = api.http.get("/api/v1/101/crm/Contacts", headers=headers)
        assert response.headers["content-type"].startswith("application/xml")

    def test_unknown_key_is_404_with_exacts_error_body(self, api: Api) -> None:
        response = api.get("101/crm/Contacts(guid'00000000-0000-0000-0000-000000000001')")
        assert response.status_code == 404
        assert error_message(response) == "Not found"

    def test_missing_token_is_401(self, sandbox_http: httpx.Client) -> None:
        response = sandbox_http.get("/api/v1/101/crm/Contacts", headers={"Accept": "application/json"})
        assert response.status_code == 401


class TestDivisions:
    def test_a_division_not_granted_is_forbidden(self, api: Api, sandbox_http: httpx.Client) -> None:
        sandbox_http.post("/_sandbox/divisions/202", json={"granted": False})
        response = api.get("202/crm/Contacts")
        assert response.status_code == 403
        assert error_message(response).startswith("Forbidden")

    def test_every_path_carries_its_division(self, api: Api) -> None:
        ids_101 = {r["ID"] for r in results(api.get("101/crm/Contacts"))}
        ids_202 = {r["ID"] for r in results(api.get("202/crm/Contacts"))}
        assert ids_101
        assert ids_202
        assert not ids_101 & ids_202


class TestFilter:
    def test_string_literal_with_escaped_quote(self, api: Api) -> None:
        rows = results(api.get("101/crm/Accounts", **{"$filter": "Name eq 'O''Brien 7'"}))
        assert [r["Name"] for r in rows] == ["O'Brien 7"]

    def test_guid_literal(self, api: Api) -> None:
        target = results(api.get("101/crm/Contacts"))[3]
        rows = results(api.get("101/crm/Contacts", **{"$filter": f"ID eq guid'{target['ID'].upper()}'"}))
        assert [r["ID"] for r in rows] == [target["ID"]]

    def test_int64_and_boolean_logic(self, api: Api) -> None:
        # Timestamp is a field of the sync resource only (the reference has none on crm/Accounts).
        all_rows = results(api.get("101/sync/CRM/Accounts", **{"$filter": "Timestamp gt 0L"}))
        pivot = sorted(r["Timestamp"] for r in all_rows)[10]
        expr = f"Timestamp le {pivot}L and not (IsSupplier eq true) or Name eq 'none'"
        rows = results(api.get("101/sync/CRM/Accounts", **{"$filter": expr}))
        expected = {r["ID"] for r in all_rows if r["Timestamp"] <= pivot and not r["IsSupplier"]}
        assert {r["ID"] for r in rows} == expected

    def test_datetime_literal(self, api: Api) -> None:
        assert results(api.get("101/crm/Contacts", **{"$filter": "Modified gt datetime'2000-01-01T00:00:00'"}))
        assert not results(api.get("101/crm/Contacts", **{"$filter": "Modified gt datetime'2999-01-01'"}))

    def test_hostile_string_stays_a_literal(self, api: Api) -> None:
        rows = results(api.get("101/crm/Accounts", **{"$filter": "Name eq 'x'' or 1 eq 1 or Name eq '''"}))
        assert rows == []

    def test_select_and_orderby(self, api: Api) -> None:
        rows = results(
            api.get(
                "101/crm/Accounts", **{"$filter": "IsSupplier eq true", "$select": "Code,Name", "$orderby": "Name desc"}
            )
        )
        assert set(rows[0]) == {"__metadata", "Code", "Name"}
        assert [r["Name"] for r in rows] == sorted((r["Name"] for r in rows), reverse=True)

    def test_unknown_select_field_is_400(self, api: Api) -> None:
        assert api.get("101/crm/Contacts", **{"$select": "Nope"}).status_code == 400

    def test_mandatory_filtering_on_accounts_and_items(self, api: Api) -> None:
        for path in ("101/crm/Accounts", "101/logistics/Items"):
            response = api.get(path)
            assert response.status_code == 400
            assert "mandatory filtering" in error_message(response)


class TestPaging:
    def test_pages_of_60_follow_next_with_skiptoken(self, api: Api, sandbox_http: httpx.Client) -> None:
        sandbox_http.post("/_sandbox/records/101/crm/Contacts/bulk", json={"count": 130})
        first = api.get("101/crm/Contacts", **{"$select": "ID,FirstName"}).json()["d"]
        assert len(first["results"]) == 60
        query = parse_qs(urlsplit(first["__next"]).query)
        assert query["$select"] == ["ID,FirstName"]
        assert query["$skiptoken"][0].startswith("guid'")
        seen = [r["ID"] for r in first["results"]]
        url = first["__next"]
        while url:
            page = api.get(url).json()["d"]
            seen += [r["ID"] for r in page["results"]]
            url = page.get("__next")
        assert len(seen) == len(set(seen)) == 150

    def test_skip_is_ignored(self, api: Api) -> None:
        assert results(api.get("101/crm/Contacts", **{"$skip": "10"})) == results(api.get("101/crm/Contacts"))

    def test_changes_between_pages_neither_miss_nor_repeat(self, api: Api, sandbox_http: httpx.Client) -> None:
        sandbox_http.post("/_sandbox/records/101/crm/Contacts/bulk", json={"count": 100})
        first = api.get("101/crm/Contacts").json()["d"]
        for row in first["results"][:30]:
            sandbox_http.put(f"/_sandbox/records/101/crm/Contacts/{row['ID']}", json={"LastName": "changed"})
        second = api.get(first["__next"]).json()["d"]
        ids = [r["ID"] for r in first["results"] + second["results"]]
        assert len(ids) == len(set(ids)) == 120


class TestWrites:
    def test_post_201_get_put_full_replace_delete(self, api: Api) -> None:
        created = api.post("101/crm/Contacts", {"FirstName": "Anna", "LastName": "Jansen", "Email": "a@x.nl"})
        assert created.status_code == 201
        record = created.json()["d"]
        key = record["ID"]
        assert record["FullName"] == "Anna Jansen"
        assert api.get(f"101/crm/Contacts(guid'{key}')").json()["d"]["Email"] == "a@x.nl"
        # PUT is a full replace: Email, not sent, becomes null.
        assert api.put(f"101/crm/Contacts(guid'{key}')", {"FirstName": "Anna", "LastName": "Bakker"}).status_code == 204
        after = api.get(f"101/crm/Contacts(guid'{key}')").json()["d"]
        assert (after["LastName"], after["Email"]) == ("Bakker", None)
        assert api.delete(f"101/crm/Contacts(guid'{key}')").status_code == 204
        assert api.get(f"101/crm/Contacts(guid'{key}')").status_code == 404

    def test_iso_dates_are_written_and_read_as_ms(self, api: Api) -> None:
        body = {"InvoiceTo": None, "Currency": "EUR", "InvoiceDate": "2026-03-01T00:00:00", "SalesInvoiceLines": []}
        record = api.post("101/salesinvoice/SalesInvoices", body).json()["d"]
        assert record["InvoiceDate"] == "/Date(1772323200000)/"

    def test_invalid_json_is_400(self, api: Api) -> None:
        response = api.http.post("/api/v1/101/crm/Contacts", content=b"{nope", headers=api.headers())
        assert response.status_code == 400
