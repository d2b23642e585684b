"""Named http sinks from SINKS_FILE, and routes: which changes a sink takes (topics, divisions, echoes).

SINKS_FILE is TOML, one table per sink; its name is the delivery log's `sink` and `--sink` everywhere:

    [sinks.crm]
    url = "https://crm.example.com/hooks/exact"
    secret = "whsec_..."            # Standard Webhooks, as PUSH_SECRET
    topics = ["Accounts", "Contacts"]  # left out: every topic (`Commands` is the topic of command results)
    divisions = [101]                # left out: every division
    suppress_echo = true             # no push of a version a command of client `crm` wrote (not its result)
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
import tomllib
from dataclasses import dataclass
from pathlib import Path

from pydantic import BaseModel, ConfigDict, SecretStr, ValidationError, field_validator

from delivery.changes import COMMANDS_TOPIC, ChangeRecord
from delivery.sinks.base import SinkConfigError
from delivery.sinks.urls import url_secrets
from exact import CATALOGUE
from runtime.logging import REDACTOR
from runtime.settings import Settings

__all__ = ["HttpTarget", "Route", "http_targets", "is_echo", "sinks_file_digest"]

# The delivery log's `sink` column holds 50 characters; a name also appears in Redis keys and on the command line.
_NAME = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,49}$")
# Changes the service makes itself (the schema guard's) are `System.<what>`.
_SYSTEM_PREFIX = "System."


def is_echo(sink: str, change: ChangeRecord) -> bool:
    """The version was written by a command of the client named `sink`. A command's own result is no echo: the
    client waits for it."""
    origin = change.origin or {}
    return change.topic != COMMANDS_TOPIC and origin.get("kind") == "command" and origin.get("source") == sink


@dataclass(frozen=True)
class Route:
    """What a sink takes: these topics (None: all), these divisions (None: all), and echoes unless suppressed."""

    topics: frozenset[str] | None = None
    divisions: frozenset[int] | None = None
    suppress_echo: bool = False

    def admits(self, sink: str, change: ChangeRecord) -> bool:
        if self.topics is not None and change.topic not in self.topics:
            return False
        if self.divisions is not None and change.division not in self.divisions:
            return False
        return not (self.suppress_echo and is_echo(sink, change))


@dataclass(frozen=True)
class HttpTarget:
    """One named http sink of SINKS_FILE: where it posts, its Standard Webhooks secret, and its route."""

    name: str
    url: str
    secret: SecretStr
    route: Route


class _Entry(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    url: str
    secret: SecretStr
    topics: list[str] | None = None
    divisions: list[int] | None = None
    suppress_echo: bool = False

    @field_validator("url")
    @classmethod
    def _http(cls, value: str) -> str:
        if not re.match(r"^https?://[^/\s]+", value):
            raise ValueError("must be an http:// or https:// URL")
        return value

    @field_validator("secret")
    @classmethod
    def _standard(cls, value: SecretStr) -> SecretStr:
        try:
            base64.b64decode(value.get_secret_value().removeprefix("whsec_"), validate=True)
        except binascii.Error:
            raise ValueError("must be 'whsec_' followed by base64 (Standard Webhooks)") from None
        return value

    @field_validator("topics")
    @classmethod
    def _topics(cls, value: list[str] | None) -> list[str] | None:
        if value is None:
            return None
        if not value:
            raise ValueError("list at least one topic, or leave `topics` out for every topic")
        return [_topic(name) for name in value]

    @field_validator("divisions")
    @classmethod
    def _divisions(cls, value: list[int] | None) -> list[int] | None:
        if value is not None and not value:
            raise ValueError("list at least one division, or leave `divisions` out for every division")
        return value


class _File(BaseModel):
    model_config = ConfigDict(extra="forbid")

    sinks: dict[str, _Entry]


def _topic(name: str) -> str:
    if name == COMMANDS_TOPIC or name.startswith(_SYSTEM_PREFIX):
        return name
    entity = CATALOGUE.get(name)
    if entity is None:
        raise ValueError(f"unknown topic {name!r}; known: {', '.join(CATALOGUE.topics())}, {COMMANDS_TOPIC}")
    return entity.topic  # the catalogue's spelling: changes carry it


def http_targets(settings: Settings) -> list[HttpTarget]:
    """The sinks SINKS_FILE defines, in file order; none when it is unset. `SinkConfigError` says what is wrong."""
    if not settings.sinks_file:
        return []
    path = Path(settings.sinks_file)
    try:
        parsed = _File.model_validate(tomllib.loads(path.read_text(encoding="utf-8")))
    except OSError as exc:
        raise SinkConfigError(f"SINKS_FILE {path}: cannot read it ({exc.strerror})") from None
    except UnicodeDecodeError:
        raise SinkConfigError(f"SINKS_FILE {path}: not UTF-8") from None
    except tomllib.TOMLDecodeError as exc:
        raise SinkConfigError(f"SINKS_FILE {path}: not TOML: {exc}") from None
    except ValidationError as exc:
        # Locations and messages only: the input of a wrong entry may be its secret.
        raise SinkConfigError(f"SINKS_FILE {path}: {_problems(exc)}") from None
    targets = []
    for name, entry in parsed.sinks.items():
        if not _NAME.match(name):
            rule = "a-z, 0-9, _, . or -, at most 50 characters (a client's name, for suppress_echo)"
            raise SinkConfigError(f"SINKS_FILE {path}: sink name {name!r}: {rule}")
        route = Route(
            frozenset(entry.topics) if entry.topics is not None else None,
            frozenset(entry.divisions) if entry.divisions is not None else None,
            entry.suppress_echo,
        )
        # The file's secrets are settings too: none may reach a log line (the settings' own are registered at start).
        for secret in (entry.secret.get_secret_value(), *url_secrets(entry.url)):
            REDACTOR.add(secret)
        targets.append(HttpTarget(name, entry.url, entry.secret, route))
    return targets


def sinks_file_digest(settings: Settings) -> str:
    """What the file holds now, for telling apart sinks built from two versions of it."""
    if not settings.sinks_file:
        return ""
    try:
        return hashlib.sha256(Path(settings.sinks_file).read_bytes()).hexdigest()
    except OSError:
        return "unreadable"


def _problems(exc: ValidationError) -> str:
    return "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors(include_input=False))
