from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from exact import format_date, normalize_record, parse_date


class TestParse:
    def test_ms_date_is_utc(self) -> None:
        assert parse_date("/Date(1718150400000)/") == datetime(2024, 6, 12, tzinfo=UTC)

    def test_offset_keeps_the_moment_and_shows_the_zone(self) -> None:
        value = parse_date("/Date(1718150400000+0200)/")
        assert value == datetime(2024, 6, 12, tzinfo=UTC)
        assert value.utcoffset() == timedelta(hours=2)

    def test_negative_offset_and_pre_epoch(self) -> None:
        value = parse_date("/Date(-86400000-0130)/")
        assert value == datetime(1969, 12, 31, tzinfo=UTC)
        assert value.utcoffset() == -timedelta(hours=1, minutes=30)

    @pytest.mark.parametrize(
        ("text", "expected"),
        [
            pytest.param("2020-01-06T16:26:08.587", datetime(2020, 1, 6, 16, 26, 8, 587000, tzinfo=UTC), id="naive"),
            pytest.param("2020-01-06T16:26:08Z", datetime(2020, 1, 6, 16, 26, 8, tzinfo=UTC), id="zulu"),
        ],
    )
    def test_iso_values(self, text: str, expected: datetime) -> None:
        assert parse_date(text) == expected


class TestWrite:
    def test_iso_in_utc_without_zone(self) -> None:
        local = datetime(2024, 6, 12, 2, 0, tzinfo=timezone(timedelta(hours=2)))
        assert format_date(local) == "2024-06-12T00:00:00"


class TestNormalize:
    def test_normal_form(self) -> None:
        record = {
            "__metadata": {"uri": "x", "type": "t"},
            "ID": "k",
            "Modified": "/Date(1718150400000)/",
            "Lines": {"__deferred": {"uri": "y"}},
            "Items": {"results": [{"__metadata": {}, "Created": "/Date(0)/"}]},
            "Name": "/Date( not a date",
        }
        assert normalize_record(record) == {
            "ID": "k",
            "Modified": "2024-06-12T00:00:00.000Z",
            "Items": [{"Created": "1970-01-01T00:00:00.000Z"}],
            "Name": "/Date( not a date",
        }
