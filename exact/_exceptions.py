"""Exceptions of the Exact client, one tree; each carries the HTTP status and Exact's `error.message.value`.

* ExactError
  + AuthError                 401, or the token endpoint refused
    - NeedsConsent            the refresh token is dead: a person must connect again
  + RateLimited               the budget is closed until `retry_at` (429, or a wait longer than allowed)
  + EndpointBlocked           we stopped calling an endpoint that nears Exact's 10-errors-an-hour block
  + ApiError                  any other refusal of a request
    - ValidationError         400
    - Forbidden               403 (division not granted, licence, ...)
    - NotFound                404
    - DataAlreadyExists       500 "Data already exists" (a duplicate webhook subscription)
    - CallbackRejected        500 "Invalid: Post to callback URL …" (subscription validation failed)
  + ExactUnavailable          5xx, timeouts and connection errors, after the retries
  + ForeignLink               a link Exact gave (`__next`) leaves the connection's scheme, host and port: not followed
  + UnknownReference          a write names a code or GUID the target division lacks; nothing was sent
  + WriteOutcomeUnknown       a create got no answer (timeout, 5xx): it may have landed, so it is not sent again
  + WriteNotVerified          Exact took a write but the read-back differs (gotchas 1–6): the fields, both values
  + PreflightFailed           a write Exact would refuse or book wrongly (closed period, unbalanced …); nothing was sent
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

__all__ = [
    "ApiError",
    "AuthError",
    "CallbackRejected",
    "DataAlreadyExists",
    "EndpointBlocked",
    "ExactError",
    "ExactUnavailable",
    "Forbidden",
    "ForeignLink",
    "NeedsConsent",
    "NotFound",
    "PreflightFailed",
    "RateLimited",
    "FieldMismatch",
    "UnknownReference",
    "ValidationError",
    "WriteNotVerified",
    "WriteOutcomeUnknown",
]


class ExactError(Exception):
    def __init__(self, message: str, *, status: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.status = status


class AuthError(ExactError):
    pass


class NeedsConsent(AuthError):
    """The connection's refresh token is dead ("Old refresh token used", expired); run `exact-pipeline connect`."""


class RateLimited(ExactError):
    def __init__(self, message: str, *, retry_at: float, status: int | None = 429) -> None:
        super().__init__(message, status=status)
        self.retry_at = retry_at


class EndpointBlocked(ExactError):
    def __init__(self, message: str, *, endpoint: str, division: int | None) -> None:
        super().__init__(message)
        self.endpoint = endpoint
        self.division = division


class ApiError(ExactError):
    pass


class ValidationError(ApiError):
    pass


class Forbidden(ApiError):
    pass


class NotFound(ApiError):
    pass


class DataAlreadyExists(ApiError):
    pass


class CallbackRejected(ApiError):
    pass


class ExactUnavailable(ExactError):
    pass


class ForeignLink(ExactError):
    """Nothing was sent: only the connection's own origin may receive its bearer token."""

    def __init__(self, message: str, *, origin: str) -> None:
        super().__init__(message)
        self.origin = origin


class UnknownReference(ExactError):
    def __init__(self, *, field: str, value: str, division: int, entity: str) -> None:
        super().__init__(f"{field}: {value!r} is not in {entity} of division {division}; nothing was sent")
        self.field = field
        self.value = value
        self.division = division


@dataclass(frozen=True)
class FieldMismatch:
    """One written field that reads back otherwise; `field` is the write name, `read_as` the read name."""

    field: str
    read_as: str
    written: Any
    read: Any

    def __str__(self) -> str:
        name = self.field if self.field == self.read_as else f"{self.field} (read as {self.read_as})"
        return f"{name}: wrote {self.written!r}, read back {self.read!r}"


class WriteNotVerified(ExactError):
    def __init__(self, *, entity: str, key: str, division: int, mismatches: list[FieldMismatch]) -> None:
        details = "; ".join(str(m) for m in mismatches)
        super().__init__(f"{entity}(guid'{key}') in division {division} did not keep what was written: {details}")
        self.key = key
        self.division = division
        self.mismatches = mismatches


class WriteOutcomeUnknown(ExactError):
    pass


class PreflightFailed(ExactError):
    """A pre-flight check failed in the target division: `check` names it (exact._catalogue.CHECKS), `values` holds
    what it found (journal, period, difference, account, quantity open …). Nothing was sent, so `status` is None."""

    def __init__(self, check: str, message: str, values: dict[str, Any]) -> None:
        super().__init__(message)
        self.check = check
        self.values = values
