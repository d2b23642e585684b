"""The Exact Online API client: OAuth with rotating refresh tokens, a shared per-division budget, OData and dates."""

from __future__ import annotations

from exact._client import ExactClient, SyncPage
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
from exact._tokens import REFRESH_MIN_AGE, UNDECRYPTABLE, StoredTokens, TokenManager, TokenStore
from exact._values import check_values, write_date
from exact._writes import SPECS, LineSpec, WriteProgress, Writer, WriteResult, WriteSpec, check_writable

__all__ = [
    "account_code",
    "ApiError",
    "AuthError",
    "BudgetUsage",
    "CallbackRejected",
    "check_values",
    "check_writable",
    "DataAlreadyExists",
    "datetime_literal",
    "EndpointBlocked",
    "ErrorBudget",
    "ExactClient",
    "ExactError",
    "ExactUnavailable",
    "FieldMismatch",
    "Forbidden",
    "ForeignLink",
    "format_date",
    "guid_literal",
    "int64_literal",
    "key_filters",
    "LineSpec",
    "MAX_URL_LENGTH",
    "NeedsConsent",
    "normalize_record",
    "NotFound",
    "OAuthApp",
    "Page",
    "parse_date",
    "Query",
    "RateLimited",
    "RateLimiter",
    "References",
    "REFRESH_MIN_AGE",
    "SPECS",
    "StoredTokens",
    "string_literal",
    "SyncPage",
    "TokenManager",
    "TokenNotExpired",
    "TokenSet",
    "TokenStore",
    "UNDECRYPTABLE",
    "UnknownReference",
    "unwrap",
    "unwrap_page",
    "ValidationError",
    "write_date",
    "WriteNotVerified",
    "WriteOutcomeUnknown",
    "WriteProgress",
    "Writer",
    "WriteResult",
    "WriteSpec",
]
