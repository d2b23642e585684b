"""The command as connected systems send it (`POST /commands`, `exact-pipeline write`), and how it is shown back."""

from __future__ import annotations

import hashlib
import json
import uuid
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictFloat, StrictInt, StrictStr, model_validator

from exact import SPECS, check_writable

__all__ = ["Command", "CommandView", "Scalar"]

Scalar = StrictStr | StrictInt | StrictFloat | StrictBool | None


class Command(BaseModel):
    """One write. Reference fields take human codes (GL `8000`, VAT `2`, item `ITEM-001`, account `1001`, currency
    `EUR`), resolved in `division`; a GUID is accepted only if it exists there.

    {"key": "shop-order-1234", "division": 101, "entity": "SalesInvoice", "action": "create",
     "fields": {"InvoiceTo": "1001", "Currency": "EUR"},
     "lines": [{"Item": "ITEM-001", "Quantity": 2, "GLAccount": "8000", "VATCode": "2"}]}
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    key: str = Field(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9._:@/-]+$")
    division: int = Field(gt=0)
    entity: Literal["SalesInvoice", "PurchaseOrder", "Account", "TimeTransaction"]
    action: Literal["create", "update"]
    id: uuid.UUID | None = Field(default=None, description="the record to update; only with action 'update'")
    fields: dict[str, Scalar] = Field(default_factory=dict)
    lines: list[dict[str, Scalar]] | None = Field(default=None, max_length=500)

    @model_validator(mode="after")
    def _fits_the_entity(self) -> Command:
        spec = SPECS[self.entity]
        if self.action == "update" and self.id is None:
            raise ValueError("action 'update' needs the record's 'id'")
        if self.action == "create" and self.id is not None:
            raise ValueError("action 'create' takes no 'id'")
        if not self.fields and not self.lines:
            raise ValueError("nothing to write: 'fields' and 'lines' are both empty")
        check_writable("fields", spec.fields, self.fields)
        if self.lines is not None:
            if spec.lines is None:
                raise ValueError(f"{self.entity} has no lines")
            for number, line in enumerate(self.lines, start=1):
                check_writable(f"lines[{number}]", spec.lines.fields, line)
        return self

    def fingerprint(self) -> str:
        """Equal for equal commands, whatever the key order: tells a repeated submit from a reused key."""
        canonical = json.dumps(self.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))
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
