"""The Exact Online API client: OAuth with rotating refresh tokens, a shared per-division budget, OData and dates."""

from __future__ import annotations

from exact._client import ExactClient, SyncPage
from exact._connections import save_connection, save_divisions
from exact._dates import format_date, normalize_record, parse_date
from exact._envelope import Page, unwrap, unwrap_page
from exact._exceptions import (
    ApiError,
    AuthError,
    CallbackRejected,
    DataAlreadyExists,
    EndpointBlocked,
    ExactError,
    ExactUnavailable,
    FieldMismatch,
    Forbidden,
    ForeignLink,
    NeedsConsent,
    NotFound,
    RateLimited,
    UnknownReference,
    ValidationError,
    WriteNotVerified,
    WriteOutcomeUnknown,
)
from exact._models import Connection, Division
from exact._oauth import OAuthApp, TokenNotExpired, TokenSet
from exact._odata import (
    MAX_URL_LENGTH,
    Query,
    datetime_literal,
    guid_literal,
    int64_literal,
    key_filters,
    string_literal,
)
from exact._ratelimit import BudgetUsage, ErrorBudget, RateLimiter
from exact._references import References, account_code
from exact._tokens import REFRESH_MIN_AGE, SqlTokenStore, StoredTokens, TokenManager
from exact._values import check_values, write_date
from exact._writes import SPECS, LineSpec, WriteProgress, Writer, WriteResult, WriteSpec, check_writable, spec_named

__all__ = [
    "ApiError",
    "AuthError",
    "BudgetUsage",
    "CallbackRejected",
    "Connection",
    "DataAlreadyExists",
    "Division",
    "EndpointBlocked",
    "ErrorBudget",
    "ExactClient",
    "ExactError",
    "ExactUnavailable",
    "FieldMismatch",
    "Forbidden",
    "ForeignLink",
    "LineSpec",
    "MAX_URL_LENGTH",
    "NeedsConsent",
    "NotFound",
    "OAuthApp",
    "Page",
    "Query",
    "REFRESH_MIN_AGE",
    "RateLimited",
    "RateLimiter",
    "References",
    "SPECS",
    "SqlTokenStore",
    "StoredTokens",
    "SyncPage",
    "TokenManager",
    "TokenNotExpired",
    "TokenSet",
    "UnknownReference",
    "ValidationError",
    "WriteNotVerified",
    "WriteOutcomeUnknown",
    "WriteProgress",
    "WriteResult",
    "WriteSpec",
    "Writer",
    "account_code",
    "check_values",
    "check_writable",
    "datetime_literal",
    "format_date",
    "guid_literal",
    "int64_literal",
    "key_filters",
    "normalize_record",
    "parse_date",
    "save_connection",
    "save_divisions",
    "spec_named",
    "string_literal",
    "unwrap",
    "unwrap_page",
    "write_date",
]
