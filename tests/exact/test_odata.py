from __future__ import annotations

import uuid
from datetime import UTC, datetime
from urllib.parse import quote

import pytest

from exact import Query, datetime_literal, guid_literal, int64_literal, key_filters, string_literal, unwrap, unwrap_page


class TestLiterals:
    @pytest.mark.parametrize(
        ("value", "expected"),
        [
            pytest.param("O'Brien", "'O''Brien'", id="quote"),
            pytest.param("' or 1 eq 1 or Name eq '", "''' or 1 eq 1 or Name eq '''", id="injection"),
            pytest.param("Zoë ü", "'Zoë ü'", id="unicode"),
        ],
    )
    def test_strings(self, value: str, expected: str) -> None:
        assert string_literal(value) == expected

    def test_guid_is_validated(self) -> None:
        key = uuid.uuid4()
        assert guid_literal(str(key).upper()) == f"guid'{key}'"
        with pytest.raises(ValueError, match="badly formed"):
            guid_literal("1' or 1 eq 1")

    def test_datetime_and_int64(self) -> None:
        assert datetime_literal(datetime(2024, 1, 1, 12, tzinfo=UTC)) == "datetime'2024-01-01T12:00:00'"
        assert int64_literal(123) == "123L"


class TestQuery:
    def test_params(self) -> None:
        query = Query(filter="Code eq '1'", select=["ID", "Code"], orderby="Code", top=1)
        assert query.params() == {"$filter": "Code eq '1'", "$select": "ID,Code", "$orderby": "Code", "$top": "1"}

    def test_key_filters_stay_under_the_url_limit(self) -> None:
        keys = [str(uuid.uuid4()) for _ in range(1000)]
        filters = list(key_filters(keys))
        assert len(filters) > 1
        assert all(len(quote(f, safe="")) <= 4500 for f in filters)
        joined = " or ".join(filters)
        assert all(f"guid'{k}'" in joined for k in keys)


class TestEnvelopes:
    def test_collection(self) -> None:
        page = unwrap_page({"d": {"results": [{"ID": 1}], "__next": "https://x/next"}})
        assert (page.records, page.next_url) == ([{"ID": 1}], "https://x/next")

    def test_top_list(self) -> None:
        assert unwrap({"d": [{"ID": 1}]}) == [{"ID": 1}]
        assert unwrap_page({"d": [{"ID": 1}]}).next_url is None

    def test_single_record(self) -> None:
        assert unwrap({"d": {"ID": 1}}) == {"ID": 1}

    def test_not_an_envelope(self) -> None:
        with pytest.raises(ValueError, match="envelope"):
            unwrap({"error": {}})
