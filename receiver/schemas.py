"""The webhook's `Content`, validated once its signature holds."""

from __future__ import annotations

import re
import uuid

from pydantic import BaseModel, ConfigDict, Field, StrictInt, field_validator

__all__ = ["KNOWN_ACTIONS", "WebhookContent"]

# Exact sends Update (creates included) and Delete; anything else is accepted, logged and counted.
KNOWN_ACTIONS = frozenset({"Update", "Delete"})
# str(uuid.UUID(key)) of a key already in this form is the key itself: the usual case, checked without the object.
_CANONICAL = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


class WebhookContent(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    Topic: str = Field(min_length=1, max_length=100)
    ClientId: str = Field(min_length=1, max_length=100)
    Division: StrictInt = Field(gt=0)
    Action: str = Field(min_length=1, max_length=40)
    Key: str
    ExactOnlineEndpoint: str | None = Field(default=None, max_length=2000)
    EventCreatedOn: str | None = Field(default=None, max_length=40)

    @field_validator("Key")
    @classmethod
    def _guid(cls, value: str) -> str:
        if _CANONICAL.fullmatch(value):
            return value
        return str(uuid.UUID(value))
