"""The command as connected systems send it (`POST /commands`, `exact-pipeline write`), and how it is shown back."""

from __future__ import annotations

import hashlib
import json
import re
import uuid
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictBool,
    StrictFloat,
    StrictInt,
    StrictStr,
    field_validator,
    model_validator,
)

from exact import SPECS, WriteSpec, check_values, check_writable, normalise

__all__ = ["MAX_DEPTH", "Command", "CommandView", "NotJson", "Scalar", "load_json"]

# A command nests three levels (body → lines → line); json.loads of a 100k-deep array is a RecursionError.
MAX_DEPTH = 16
_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1


def _float_only(value: Any) -> Any:
    # A strict float still takes an int, and so would let a 2**70 past the 64-bit bound of the int branch.
    if not isinstance(value, float):
        raise ValueError("an integer beyond 64 bits")
    return value


_INT64 = Annotated[StrictInt, Field(ge=_INT64_MIN, le=_INT64_MAX)]
_FINITE = Annotated[StrictFloat, Field(allow_inf_nan=False), BeforeValidator(_float_only)]
Scalar = StrictStr | _INT64 | _FINITE | StrictBool | None
_LATER_DEFAULTS: dict[str, Any] = {"match_on": None, "dedupe": True}
_STRINGS = re.compile(r'"(?:[^"\\]|\\.)*"')
_BRACKETS = re.compile(r"[\[\]{}]")


class NotJson(ValueError):
    """The body is not JSON a command can be read from (syntax, NaN, nesting); the message says where."""


def load_json(raw: bytes | str) -> Any:
    """JSON as RFC 8259 has it: no NaN or Infinity, nested at most MAX_DEPTH deep (checked before parsing). Integers
    beyond 64 bits are left to the model, which names the field."""
    try:
        text = raw.decode("utf-8") if isinstance(raw, bytes) else raw
    except UnicodeDecodeError as exc:
        raise NotJson(f"not UTF-8: {exc.reason} at byte {exc.start}") from None
    depth = 0
    for bracket in _BRACKETS.finditer(_STRINGS.sub("", text)):
        depth += 1 if bracket.group() in "[{" else -1
        if depth > MAX_DEPTH:
            raise NotJson(f"nested deeper than {MAX_DEPTH} levels")
    try:
        return json.loads(text, parse_constant=_no_constant)
    except NotJson:
        raise
    except ValueError as exc:  # JSONDecodeError, and ints of more than 4,300 digits
        raise NotJson(str(exc)) from None


def _no_constant(name: str) -> Any:
    raise NotJson(f"{name} is not a JSON number")


class Command(BaseModel):
    """One write. Reference fields take human codes (GL `8000`, VAT `2`, item `ITEM-001`, account `1001`, currency
    `EUR`), resolved in `division`; a GUID is accepted only if it exists there.

    {"key": "shop-order-1234", "division": 101, "entity": "SalesInvoice", "action": "create",
     "fields": {"InvoiceTo": "1001", "Currency": "EUR"},
     "lines": [{"Item": "ITEM-001", "Quantity": 2, "GLAccount": "8000", "VATCode": "2"}]}

    `action: "upsert"` with `match_on` (natural keys of the entity: an Account's VATNumber, ChamberOfCommerce or
    Code; an entry's or invoice's YourRef) updates the one record whose values match (normalised), creates one when
    none does, and fails naming them when several do. A new Account is first looked for by VAT and KvK number
    unless `dedupe` is false.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    key: str = Field(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9._:@/-]+$")
    division: StrictInt = Field(gt=0, le=2**31 - 1)  # Exact's division codes are Int32, as is our column
    entity: StrictStr = Field(description="a writable entity: one of exact.SPECS")
    action: Literal["create", "update", "upsert"]
    id: uuid.UUID | None = Field(default=None, description="the record to update; only with action 'update'")
    match_on: list[StrictStr] | None = Field(default=None, min_length=1, max_length=3)
    dedupe: StrictBool = True
    fields: dict[str, Scalar] = Field(default_factory=dict)
    lines: list[dict[str, Scalar]] | None = Field(default=None, max_length=500)

    @field_validator("entity")
    @classmethod
    def _writable(cls, entity: str) -> str:
        if entity not in SPECS:
            raise ValueError(f"cannot write {entity!r}; writable: {', '.join(sorted(SPECS))}")
        return entity

    @model_validator(mode="after")
    def _fits_the_entity(self) -> Command:
        spec = SPECS[self.entity]
        if self.action == "update" and self.id is None:
            raise ValueError("action 'update' needs the record's 'id'")
        if self.action != "update" and self.id is not None:
            raise ValueError(f"action {self.action!r} takes no 'id'")
        self._check_match_on(spec)
        if not self.fields and not self.lines:
            raise ValueError("nothing to write: 'fields' and 'lines' are both empty")
        check_writable("fields", spec.fields, self.fields)
        check_values("fields", spec, self.fields)
        if self.lines is not None:
            if spec.lines is None:
                raise ValueError(f"{self.entity} has no lines")
            for number, line in enumerate(self.lines, start=1):
                check_writable(f"lines[{number}]", spec.lines.fields, line)
                check_values(f"lines[{number}]", spec.lines, line)
        return self

    def _check_match_on(self, spec: WriteSpec) -> None:
        if self.action != "upsert":
            if self.match_on is not None:
                raise ValueError("'match_on' goes only with action 'upsert'")
            return
        if not self.match_on:
            raise ValueError("action 'upsert' needs 'match_on': the natural keys to find the record by")
        keys = spec.natural_keys
        for name in self.match_on:
            if name not in keys:
                allowed = ", ".join(keys) or "none"
                raise ValueError(f"match_on: {self.entity} cannot be matched on {name!r}; natural keys: {allowed}")
            if not normalise(name, self.fields.get(name)):
                raise ValueError(f"match_on: {name!r} needs a value in 'fields'")

    def fingerprint(self) -> str:
        """Equal for equal commands, whatever the key order: tells a repeated submit from a reused key."""
        shown = self.model_dump(mode="json")
        # Keys added since commands were first kept count only when set, so a kept command's fingerprint stands.
        for name, default in _LATER_DEFAULTS.items():
            if shown.get(name) == default:
                del shown[name]
        canonical = json.dumps(shown, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canonical.encode()).hexdigest()


class CommandView(BaseModel):
    """A command's state as `GET /commands/{key}` shows it and the sinks receive it."""

    key: str
    division: int
    entity: str
    action: str
    status: str
    attempts: int
    result: dict[str, Any] | None
    created_at: datetime
    updated_at: datetime
