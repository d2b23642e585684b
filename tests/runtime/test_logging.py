from __future__ import annotations

import json
import logging

import pytest

from runtime.logging import JsonFormatter, RedactingFilter, log_event


def _capture(filter_: RedactingFilter) -> tuple[logging.Logger, list[str]]:
    lines: list[str] = []

    class ListHandler(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            lines.append(self.format(record))

    handler = ListHandler()
    handler.setFormatter(JsonFormatter())
    handler.addFilter(filter_)
    logger = logging.getLogger(f"test.redact.{id(lines)}")
    logger.propagate = False
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    return logger, lines


class TestRedaction:
    def test_secret_in_message_and_fields_is_masked(self) -> None:
        logger, lines = _capture(RedactingFilter(["access-token-123456"]))
        log_event(logger, "exact.call", url="https://x/?t=access-token-123456", division=101)
        logger.info("token was access-token-123456")
        assert all("access-token-123456" not in line for line in lines)
        first = json.loads(lines[0])
        assert first["event"] == "exact.call"
        assert first["division"] == 101
        assert first["url"] == "https://x/?t=***"

    @pytest.mark.parametrize("short", ["", "abc"])
    def test_short_values_are_not_registered(self, short: str) -> None:
        # Masking a 3-character value would shred unrelated text.
        logger, lines = _capture(RedactingFilter([short]))
        logger.info("abc def")
        assert json.loads(lines[0])["event"] == "abc def"


def test_a_field_named_like_a_record_attribute_is_logged_not_raised(caplog: pytest.LogCaptureFixture) -> None:
    log = logging.getLogger("tests.reserved")
    with caplog.at_level(logging.INFO, logger="tests.reserved"):
        log_event(log, "thing.made", created=True, name="n", key="k")
    [record] = caplog.records
    assert (record.created_, record.name_, record.key) == (True, "n", "k")  # type: ignore[attr-defined]
