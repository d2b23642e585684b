"""The sandbox reproduces production's silent drops: 201 answers for writes that lost data (gotchas 1–6)."""

from __future__ import annotations

from typing import Any

from tests.sandbox.conftest import Api, results


def first(api: Api, path: str, flt: str) -> dict[str, Any]:
    return results(api.get(path, **{"$filter": flt}))[0]


def invoice(api: Api, division: int, line: dict[str, Any], **header: Any) -> dict[str, Any]:
    body = {"Currency": "EUR", "Description": "t", "SalesInvoiceLines": [line], **header}
    response = api.post(f"{division}/salesinvoice/SalesInvoices", body)
    assert response.status_code == 201, response.text
    record = response.json()["d"]
    return {"header": record, "line": record["SalesInvoiceLines"]["results"][0]}


class TestSilentDrops:
    def test_gl_account_of_another_division_is_written_as_null(self, api: Api) -> None:
        gl_202 = first(api, "202/financial/GLAccounts", "Code eq '8000'")["ID"]
        gl_101 = first(api, "101/financial/GLAccounts", "Code eq '8000'")["ID"]
        assert invoice(api, 101, {"GLAccount": gl_202, "Quantity": 1})["line"]["GLAccount"] is None
        assert invoice(api, 101, {"GLAccount": gl_101, "Quantity": 1})["line"]["GLAccount"] == gl_101

    def test_unknown_vat_code_becomes_the_division_default(self, api: Api) -> None:
        assert invoice(api, 101, {"VATCode": "1"})["line"]["VATCode"] == "1"
        assert invoice(api, 202, {"VATCode": "1"})["line"]["VATCode"] == "2"

    def test_unsupported_currency_becomes_the_division_currency(self, api: Api) -> None:
        assert invoice(api, 101, {}, Currency="USD")["header"]["Currency"] == "USD"
        assert invoice(api, 202, {}, Currency="USD")["header"]["Currency"] == "EUR"

    def test_put_is_a_full_replace(self, api: Api) -> None:
        account = first(api, "101/crm/Accounts", "Code eq '              1001'")
        response = api.put(f"101/crm/Accounts(guid'{account['ID']}')", {"Name": "Renamed"})
        assert response.status_code == 204
        after = api.get(f"101/crm/Accounts(guid'{account['ID']}')").json()["d"]
        assert after["Name"] == "Renamed"
        assert account["Email"] is not None
        assert after["Email"] is None

    def test_purchase_order_lines_read_quantity_back_as_quantity_ordered(self, api: Api) -> None:
        # Gotcha 5 (the reference lists `Quantity`; the field document reports what production returns).
        supplier = first(api, "101/crm/Accounts", "IsSupplier eq true")["ID"]
        body = {"Supplier": supplier, "Currency": "EUR", "PurchaseOrderLines": [{"Quantity": 7, "UnitPrice": 2.5}]}
        response = api.post("101/purchaseorder/PurchaseOrders", body)
        assert response.status_code == 201
        line = response.json()["d"]["PurchaseOrderLines"]["results"][0]
        assert (line["QuantityOrdered"], line["AmountDC"]) == (7, 17.5)
        assert "Quantity" not in line
        assert response.json()["d"]["SupplierCode"].strip()
        assert response.json()["d"]["AmountDC"] == 17.5

    def test_item_takes_a_guid_not_a_code(self, api: Api) -> None:
        response = api.post("101/salesinvoice/SalesInvoices", {"SalesInvoiceLines": [{"Item": "ITEM-001"}]})
        assert response.status_code == 400

    def test_item_of_another_division_is_a_phantom_link(self, api: Api) -> None:
        item_202 = first(api, "202/logistics/Items", "Code eq 'ITEM-001'")["ID"]
        item_101 = first(api, "101/logistics/Items", "Code eq 'ITEM-001'")
        assert invoice(api, 101, {"Item": item_202})["line"]["Item"] is None
        line = invoice(api, 101, {"Item": item_101["ID"]})["line"]
        assert (line["Item"], line["ItemCode"]) == (item_101["ID"], "ITEM-001")

    def test_account_codes_are_left_padded_to_18(self, api: Api) -> None:
        assert results(api.get("101/crm/Accounts", **{"$filter": "Code eq '1001'"})) == []
        assert first(api, "101/crm/Accounts", "Code eq '              1001'")["Code"] == " " * 14 + "1001"
