"""The Exact Online API client: every call goes through the division's budget, a valid token and bounded retries."""

from __future__ import annotations

import copy
import logging
import random
import re
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import httpx

from exact._classes import CLASS_HEADER, current_budget_class
from exact._envelope import unwrap, unwrap_page
from exact._exceptions import (
    ApiError,
    AuthError,
    CallbackRejected,
    DataAlreadyExists,
    ExactUnavailable,
    Forbidden,
    ForeignLink,
    NotFound,
    RateLimited,
    ValidationError,
)
from exact._odata import MAX_URL_LENGTH, Query, int64_literal
from exact._ratelimit import ErrorBudget, RateHeaders, RateLimiter
from exact._tokens import TokenManager
from runtime.logging import log_event

__all__ = ["ExactClient", "SyncPage"]

log = logging.getLogger(__name__)
_KEY_SUFFIX = re.compile(r"\(guid'[^']*'\)")


@dataclass(frozen=True)
class SyncPage:
    """One page of a `sync/…` walk; persist `cursor` once what the page holds is safe."""

    records: list[dict[str, Any]]
    cursor: int


class ExactClient:
    """Calls Exact Online for one connection. The division is an argument of every call; nothing is "current".

    client = ExactClient(base_url=..., tokens=token_manager, limiter=limiter, errors=error_budget)
    for record in client.iter_records(101, "crm/Contacts", Query(select=["ID", "FullName"])):
        ...
    """

    def __init__(
        self,
        *,
        base_url: str,
        tokens: TokenManager,
        limiter: RateLimiter,
        errors: ErrorBudget,
        http: httpx.Client | None = None,
        timeout: float = 30.0,
        max_retries: int = 3,
        backoff: float = 0.5,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self._tokens = tokens
        self.limiter = limiter
        self._errors = errors
        self._http = http or httpx.Client(timeout=timeout)
        self.max_retries = max_retries
        self._backoff = backoff
        self._sleep = sleep

    # -- the request loop
    def request(
        self,
        method: str,
        division: int | None,
        path: str,
        *,
        params: dict[str, str] | None = None,
        json: Any = None,
        url: str | None = None,
        idempotent: bool = True,
    ) -> httpx.Response:
        """Send one call: budget, token, retries of 5xx/timeouts, one refresh on 401, waits on 429.

        A call that is not `idempotent` (a POST that creates) is retried only when it surely never arrived (a refused
        connection, a 429, a 401); a timeout or a 5xx may have created the record, and a retry would create it twice.
        """
        target = url or self._url(division, path)
        endpoint = _endpoint(path)
        if url is not None:
            _check_origin(url, self.base_url, endpoint)
        self._errors.check(division, endpoint)
        request = self._http.build_request(method, target, params=params, json=json)
        if len(str(request.url)) > MAX_URL_LENGTH:
            raise ValidationError(f"URL of {len(str(request.url))} characters exceeds Exact's {MAX_URL_LENGTH}")
        failures = refreshed = limited = 0
        spends_for = current_budget_class()
        # Exact ignores the header; the sandbox counts each class's calls by it (`/_sandbox/calls`).
        request.headers[CLASS_HEADER] = spends_for
        while True:
            self.limiter.acquire(division, spends_for)
            tokens = self._tokens.current()
            request.headers.update({"Authorization": f"Bearer {tokens.access_token}", "Accept": "application/json"})
            try:
                response = self._http.send(request)
            except httpx.TransportError as exc:
                failures += 1
                unsent = isinstance(exc, httpx.ConnectError | httpx.ConnectTimeout)
                if failures > self.max_retries or not (idempotent or unsent):
                    raise ExactUnavailable(f"{method} {endpoint}: {type(exc).__name__} after {failures} tries") from exc
                self._pause(failures)
                continue
            self.limiter.observe(division, response.headers, response.status_code)
            status = response.status_code
            log_event(log, "exact.call", method=method, endpoint=endpoint, division=division, status=status)
            if status == 429 and limited < 3:
                limited += 1
                continue
            if status == 401 and not refreshed:
                refreshed = 1
                self._tokens.refresh(seen_version=tokens.version, force=True)
                continue
            if status >= 500 and idempotent and not _functional(response) and failures < self.max_retries:
                failures += 1
                self._pause(failures)
                continue
            if status >= 400:
                self._errors.record(division, endpoint, status)
                raise _error(response, endpoint)
            return response

    def _pause(self, attempt: int) -> None:
        self._sleep(self._backoff * (2 ** (attempt - 1)) * (0.5 + random.random()))

    def _url(self, division: int | None, path: str) -> str:
        if division is None:
            return f"{self.base_url}/api/v1/{path}"
        return f"{self.base_url}/api/v1/{division}/{path}"

    # -- reads
    def get(self, division: int | None, path: str, query: Query | None = None) -> Any:
        return unwrap(self.request("GET", division, path, params=query.params() if query else None).json())

    def iter_pages(self, division: int, path: str, query: Query | None = None) -> Iterator[list[dict[str, Any]]]:
        """Pages as Exact serves them, following `__next` verbatim (never `$skip`)."""
        response = self.request("GET", division, path, params=query.params() if query else None)
        while True:
            page = unwrap_page(response.json())
            yield page.records
            if not page.next_url:
                return
            next_url = str(response.url.join(page.next_url))
            response = self.request("GET", division, path, url=next_url)

    def iter_records(self, division: int, path: str, query: Query | None = None) -> Iterator[dict[str, Any]]:
        for records in self.iter_pages(division, path, query):
            yield from records

    def get_by_key(self, division: int, path: str, key: str, select: list[str] | None = None) -> dict[str, Any]:
        query = Query(select=select) if select else None
        return dict(self.get(division, f"{path}(guid'{key}')", query))

    def me(self) -> dict[str, Any]:
        return dict(self.get(None, "current/Me")[0])

    def divisions(self, division: int) -> list[dict[str, Any]]:
        return list(self.iter_records(division, "system/Divisions"))

    # -- sync API
    def sync(self, division: int, sync_path: str, cursor: int, select: list[str]) -> Iterator[SyncPage]:
        """Walk `sync/…` from `cursor` (`Timestamp gt cursor`), 1,000 a page; each page carries the cursor after it."""
        query = Query(
            filter=f"Timestamp gt {int64_literal(cursor)}", select=list(dict.fromkeys(["Timestamp", *select]))
        )
        for records in self.iter_pages(division, sync_path, query):
            cursor = max([cursor, *(int(r["Timestamp"]) for r in records)])
            yield SyncPage(records, cursor)

    def deleted(self, division: int, cursor: int, entity_type: int | Sequence[int] | None = None) -> Iterator[SyncPage]:
        """Walk `sync/Deleted` from `cursor`, of one EntityType or several (one walk: `… or …`), or of all."""
        flt = f"Timestamp gt {int64_literal(cursor)}"
        types = [entity_type] if isinstance(entity_type, int) else list(entity_type or ())
        if types:
            either = " or ".join(f"EntityType eq {int(t)}" for t in types)
            flt += f" and ({either})" if len(types) > 1 else f" and {either}"
        query = Query(filter=flt, select=["Timestamp", "EntityKey", "EntityType", "Division", "DeletedDate"])
        for records in self.iter_pages(division, "sync/Deleted", query):
            cursor = max([cursor, *(int(r["Timestamp"]) for r in records)])
            yield SyncPage(records, cursor)

    # -- writes
    def create(self, division: int, path: str, body: dict[str, Any]) -> dict[str, Any]:
        return dict(unwrap(self.request("POST", division, path, json=body, idempotent=False).json()))

    def update(self, division: int, path: str, key: str, body: dict[str, Any]) -> None:
        """PUT: Exact replaces the whole record, so `body` must be the whole record."""
        self.request("PUT", division, f"{path}(guid'{key}')", json=body)

    def delete(self, division: int, path: str, key: str) -> None:
        self.request("DELETE", division, f"{path}(guid'{key}')")

    def with_errors(self, errors: ErrorBudget) -> ExactClient:
        """This client (same HTTP pool, tokens and call budget) counting its 4xx in `errors`: commands' own share."""
        clone = copy.copy(self)
        clone._errors = errors
        return clone


def _origin(url: httpx.URL) -> str:
    # httpx drops a default port (":443" on https) and lowercases the host, so equal origins compare equal.
    return f"{url.scheme}://{url.host}" + (f":{url.port}" if url.port is not None else "")


def _check_origin(url: str, base_url: str, endpoint: str) -> None:
    """Exact's `__next` is an absolute URL on the connection's own host; anywhere else would get the bearer token."""
    theirs, ours = _origin(httpx.URL(url)), _origin(httpx.URL(base_url))
    if theirs != ours:
        raise ForeignLink(f"{endpoint}: a link to {theirs} is not on {ours}; not followed", origin=theirs)


def _endpoint(path: str) -> str:
    """`crm/Accounts(guid'…')` and `crm/Accounts` count as one endpoint for Exact's error budget."""
    return _KEY_SUFFIX.sub("", path.split("?", 1)[0])


def _message(response: httpx.Response) -> str:
    try:
        return str(response.json()["error"]["message"]["value"])
    except (ValueError, KeyError, TypeError):
        return response.text[:200] or response.reason_phrase


def _functional(response: httpx.Response) -> bool:
    """Exact answers some refusals with 500; retrying them cannot help."""
    message = _message(response).lower()
    return "already exists" in message or "bestaat reeds" in message or "invalid: post to callback" in message


def _error(response: httpx.Response, endpoint: str) -> Exception:
    status, message = response.status_code, _message(response)
    text = f"{endpoint}: {status} {message}"
    if status == 429:
        reset_ms = RateHeaders.of(response.headers).reset_ms
        retry_at = reset_ms / 1000 if reset_ms is not None else time.time() + 60
        return RateLimited(text, retry_at=retry_at)
    mapped: dict[int, type[ApiError] | type[AuthError]] = {
        400: ValidationError,
        401: AuthError,
        403: Forbidden,
        404: NotFound,
    }
    if status in mapped:
        return mapped[status](message, status=status)
    if "already exists" in message.lower() or "bestaat reeds" in message.lower():
        return DataAlreadyExists(message, status=status)
    if "invalid: post to callback" in message.lower():
        return CallbackRejected(message, status=status)
    if status >= 500:
        return ExactUnavailable(text, status=status)
    return ApiError(message, status=status)
