"""Structured JSON logs, one line an event, with secrets masked before they are written."""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Iterable
from typing import Any

__all__ = ["RedactingFilter", "configure_logging", "log_event"]

_RESERVED = set(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime"}


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
        return json.dumps(payload, default=str, ensure_ascii=False)


class RedactingFilter(logging.Filter):
    """Replaces any registered secret value in a formatted record with `***`."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        super().__init__()
        self._secrets: set[str] = {s for s in secrets if s and len(s) >= 6}

    def add(self, secret: str) -> None:
        if secret and len(secret) >= 6:
            self._secrets.add(secret)

    def filter(self, record: logging.LogRecord) -> bool:
        if not self._secrets:
            return True
        message = record.getMessage()
        extras = {k: v for k, v in vars(record).items() if k not in _RESERVED}
        for secret in self._secrets:
            if secret in message:
                message = message.replace(secret, "***")
            for key, value in extras.items():
                if isinstance(value, str) and secret in value:
                    extras[key] = value.replace(secret, "***")
        record.msg, record.args = message, None
        for key, value in extras.items():
            setattr(record, key, value)
        return True


REDACTOR = RedactingFilter()


def configure_logging(level: str = "INFO", secrets: Iterable[str] = ()) -> None:
    """JSON lines on stderr for the whole process; idempotent."""
    for secret in secrets:
        REDACTOR.add(secret)
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


# A LogRecord's own attributes: `extra` may not set them.
_RECORD_ATTRIBUTES = frozenset(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime"}


def log_event(logger: logging.Logger, event: str, level: int = logging.INFO, **fields: Any) -> None:
    """Log a dotted event name with fields: `log_event(log, "exact.token.refreshed", division=1)`.

    A field named like a LogRecord attribute (`created`, `name`, `msg`, ...) would make logging raise, inside a
    request; it is logged with a trailing underscore instead."""
    logger.log(level, event, extra={f"{k}_" if k in _RECORD_ATTRIBUTES else k: v for k, v in fields.items()})
