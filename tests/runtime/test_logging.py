from __future__ import annotations

import json
import logging
import subprocess
import sys

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

    def test_a_short_secret_is_masked_where_it_stands_alone_not_inside_words(self) -> None:
        logger, lines = _capture(RedactingFilter(["x", "k9", ""]))
        logger.info("box x, token=k9&next; xk9 k9x")
        assert json.loads(lines[0])["event"] == "box ***, token=***&next; xk9 k9x"

    @pytest.mark.parametrize(
        ("text", "masked"),
        [
            pytest.param(
                "push to https://user:hunter2@hooks.example/in", "https://user:***@hooks.example/in", id="https"
            ),
            pytest.param("broker redis://:s3@redis:6379/0 down", "redis://:***@redis:6379/0", id="no-user"),
            pytest.param("db postgresql+psycopg://app:p%40ss@db/x", "postgresql+psycopg://app:***@db/x", id="encoded"),
        ],
    )
    def test_the_password_of_any_url_is_masked(self, text: str, masked: str) -> None:
        logger, lines = _capture(RedactingFilter())
        untouched = "GET https://host:8080/p?mail=a@b.nl"  # a port, an e-mail: no password here
        logger.warning("failed: %s; %s", text, untouched)
        log_event(logger, "push.failed", target=text)
        first, second = (json.loads(line) for line in lines)
        assert masked in first["event"]
        assert untouched in first["event"]
        assert masked in second["target"]

    def test_traceback_and_stack_are_masked(self) -> None:
        logger, lines = _capture(RedactingFilter(["access-token-123456"]))
        try:
            raise RuntimeError("refused access-token-123456 at https://u:pw-in-url@x/y")
        except RuntimeError:
            logger.exception("call.failed", stack_info=True)
        line = json.loads(lines[0])
        assert "RuntimeError: refused *** at https://u:***@x/y" in line["exc"]
        assert "Traceback" in line["exc"]
        assert "Stack (most recent call last)" in line["stack"]
        assert "access-token-123456" not in lines[0]
        assert "pw-in-url" not in lines[0]

    def test_nested_extras_and_exception_objects_are_masked(self) -> None:
        logger, lines = _capture(RedactingFilter(["access-token-123456"]))
        nested = {"call": {"headers": ["Bearer access-token-123456"], "url": "https://u:pw-in-url@x/y"}}
        log_event(logger, "exact.call", detail=nested, error=ValueError("bad access-token-123456"), n=3)
        line = json.loads(lines[0])
        assert line["detail"] == {"call": {"headers": ["Bearer ***"], "url": "https://u:***@x/y"}}
        assert (line["error"], line["n"]) == ("bad ***", 3)
        assert "access-token-123456" not in lines[0]
        assert "pw-in-url" not in lines[0]


def test_a_short_secret_warns_at_start_without_saying_it() -> None:
    code = "from runtime.logging import configure_logging; configure_logging('INFO', ['q7', 'long-enough-secret'])"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60)
    [line] = [json.loads(text) for text in done.stderr.splitlines()]
    assert (line["event"], line["level"], line["count"]) == ("runtime.logging.short_secrets", "warning", 1)
    assert "q7" not in done.stderr


def test_a_field_named_like_a_record_attribute_is_logged_not_raised(caplog: pytest.LogCaptureFixture) -> None:
    log = logging.getLogger("tests.reserved")
    with caplog.at_level(logging.INFO, logger="tests.reserved"):
        log_event(log, "thing.made", created=True, name="n", key="k")
    [record] = caplog.records
    assert (record.created_, record.name_, record.key) == (True, "n", "k")  # type: ignore[attr-defined]
