"""The webhook's `Content`, validated once its signature holds."""

from __future__ import annotations

import uuid

from pydantic import BaseModel, ConfigDict, Field, StrictInt, field_validator

__all__ = ["KNOWN_ACTIONS", "WebhookContent"]

# Exact sends Update (creates included) and Delete; anything else is accepted, logged and counted.
KNOWN_ACTIONS = frozenset({"Update", "Delete"})


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
        return str(uuid.UUID(value))
