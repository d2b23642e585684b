"""Structured JSON logs, one line an event, with secrets masked before they are written."""

from __future__ import annotations

import json
import logging
import re
import sys
from collections.abc import Iterable
from typing import Any

__all__ = ["MASK", "SHORT_SECRET", "RedactingFilter", "configure_logging", "log_event"]

# A LogRecord's own attributes: never extras, and `extra` may not set them.
_RESERVED = frozenset(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime"}
MASK = "***"
# A secret shorter than this is masked only where it stands alone, not inside a longer word: masked everywhere, a
# one-letter secret would turn every line into asterisks (and tell anyone reading which letter it is).
SHORT_SECRET = 6
# The password of any URL, `scheme://user:pass@host` (up to the last `@` before the path).
_URL_PASSWORD = re.compile(r"(?P<head>\b[A-Za-z][A-Za-z0-9+.-]*://[^\s/:@]*:)[^\s/]+@")
# How deep extras are walked; anything deeper is masked as the text the formatter would print.
_MAX_DEPTH = 8
_TRACEBACKS = logging.Formatter()


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        payload: dict[str, Any] = {
            "ts": self.formatTime(record, "%Y-%m-%dT%H:%M:%S"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "event": record.getMessage(),
        }
        payload.update({k: v for k, v in vars(record).items() if k not in _RESERVED and not k.startswith("_")})
        if record.exc_info:
            payload["exc"] = self.formatException(record.exc_info)
        elif record.exc_text:
            payload["exc"] = record.exc_text
        if record.stack_info:
            payload["stack"] = record.stack_info
        return json.dumps(payload, default=str, ensure_ascii=False)


class RedactingFilter(logging.Filter):
    """Masks every registered secret, of any length, and the password of any URL, wherever a record carries text:
    the message and its args, the `exc_info` traceback, `stack_info`, and extras at any depth (dicts, lists,
    exceptions, any object as the text the formatter would print)."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        super().__init__()
        self._long: list[str] = []
        self._short: set[str] = set()
        self._short_pattern: re.Pattern[str] | None = None
        for secret in secrets:
            self.add(secret)

    def add(self, secret: str) -> bool:
        """Register `secret`; True when it is new and short (masked only where it stands alone)."""
        if not secret or secret in self._long or secret in self._short:
            return False
        if len(secret) >= SHORT_SECRET:
            # Longest first: a secret that contains another is masked whole.
            self._long = sorted([*self._long, secret], key=len, reverse=True)
            return False
        self._short.add(secret)
        words = "|".join(re.escape(s) for s in sorted(self._short, key=len, reverse=True))
        self._short_pattern = re.compile(rf"(?<![A-Za-z0-9])(?:{words})(?![A-Za-z0-9])")
        return True

    def redact(self, text: str) -> str:
        text = _URL_PASSWORD.sub(rf"\g<head>{MASK}@", text)
        for secret in self._long:
            text = text.replace(secret, MASK)
        return self._short_pattern.sub(MASK, text) if self._short_pattern else text

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg, record.args = self.redact(_message(record)), None
        if record.exc_info:
            # Formatted here, once, and dropped: every formatter prints `exc_text` in its place.
            record.exc_text, record.exc_info = self.redact(_TRACEBACKS.formatException(record.exc_info)), None
        elif record.exc_text:
            record.exc_text = self.redact(record.exc_text)
        if record.stack_info:
            record.stack_info = self.redact(record.stack_info)
        for key, value in list(vars(record).items()):
            if key not in _RESERVED:
                setattr(record, key, self._scrub(value, 0))
        return True

    def _scrub(self, value: Any, depth: int) -> Any:
        if isinstance(value, str):
            return self.redact(value)
        if value is None or isinstance(value, bool | int | float):
            return value
        if depth < _MAX_DEPTH and isinstance(value, dict):
            return {self._scrub(k, depth + 1): self._scrub(v, depth + 1) for k, v in value.items()}
        if depth < _MAX_DEPTH and isinstance(value, list | tuple | set | frozenset):
            return [self._scrub(v, depth + 1) for v in value]
        text = str(value)  # what the formatter prints (json's default=str): exceptions, models, anything else
        masked = self.redact(text)
        return value if masked == text else masked


def _message(record: logging.LogRecord) -> str:
    try:
        return record.getMessage()
    except (TypeError, ValueError):
        # Args that do not fit the template: logging would print them raw on stderr; log the template alone.
        return str(record.msg)


REDACTOR = RedactingFilter()


def configure_logging(level: str = "INFO", secrets: Iterable[str] = ()) -> None:
    """JSON lines on stderr for the whole process; idempotent. Warns (without saying which) when a secret is short."""
    short = sum(REDACTOR.add(secret) for secret in secrets)
    root = logging.getLogger()
    root.setLevel(level.upper())
    if not any(getattr(h, "_exact_pipeline", False) for h in root.handlers):
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(JsonFormatter())
        handler.addFilter(REDACTOR)
        handler._exact_pipeline = True  # type: ignore[attr-defined]
        root.addHandler(handler)
    for noisy in ("httpx", "httpcore"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    if short:
        log_event(
            logging.getLogger(__name__),
            "runtime.logging.short_secrets",
            logging.WARNING,
            count=short,
            min_length=SHORT_SECRET,
            hint="masked only where they stand alone: use longer secrets",
        )


def log_event(logger: logging.Logger, event: str, level: int = logging.INFO, **fields: Any) -> None:
    """Log a dotted event name with fields: `log_event(log, "exact.token.refreshed", division=1)`.

    A field named like a LogRecord attribute (`created`, `name`, `msg`, ...) would make logging raise, inside a
    request; it is logged with a trailing underscore instead."""
    logger.log(level, event, extra={f"{k}_" if k in _RESERVED else k: v for k, v in fields.items()})
