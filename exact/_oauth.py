"""Exact's OAuth endpoints: the authorize URL, code exchange and refresh, with Exact's answers mapped to errors."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import urlencode

import httpx
from authlib.common.security import generate_token

from exact._exceptions import AuthError, ExactUnavailable, NeedsConsent

__all__ = ["OAuthApp", "TokenNotExpired", "TokenSet"]


class TokenNotExpired(AuthError):
    """The token endpoint refused a refresh before 570 s: the current access token is still the one to use."""


@dataclass(frozen=True)
class TokenSet:
    access_token: str
    refresh_token: str
    expires_in: int
    issued_at: datetime


class OAuthApp:
    """The app registered in Exact's App Center.

    app = OAuthApp("https://start.exactonline.nl", client_id, client_secret, redirect_uri)
    url, state = app.authorize_url()
    tokens = app.exchange_code(code)
    """

    def __init__(
        self,
        base_url: str,
        client_id: str,
        client_secret: str,
        redirect_uri: str | None = None,
        *,
        http: httpx.Client | None = None,
        timeout: float = 30.0,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.client_id = client_id
        self._secret = client_secret
        self.redirect_uri = redirect_uri
        self._http = http or httpx.Client(timeout=timeout)

    def authorize_url(self, state: str | None = None) -> tuple[str, str]:
        state = state or generate_token(24)
        query = {
            "client_id": self.client_id,
            "redirect_uri": self.redirect_uri or "",
            "response_type": "code",
            "state": state,
        }
        return f"{self.base_url}/api/oauth2/auth?{urlencode(query)}", state

    def exchange_code(self, code: str) -> TokenSet:
        return self._token({"grant_type": "authorization_code", "code": code, "redirect_uri": self.redirect_uri or ""})

    def refresh(self, refresh_token: str) -> TokenSet:
        return self._token({"grant_type": "refresh_token", "refresh_token": refresh_token})

    def _token(self, form: dict[str, str]) -> TokenSet:
        form = {**form, "client_id": self.client_id, "client_secret": self._secret}
        try:
            response = self._http.post(
                f"{self.base_url}/api/oauth2/token", data=form, headers={"Accept": "application/json"}
            )
        except httpx.HTTPError as exc:
            raise ExactUnavailable(f"token endpoint unreachable: {type(exc).__name__}") from exc
        if response.status_code >= 500:
            raise ExactUnavailable(f"token endpoint answered {response.status_code}", status=response.status_code)
        body = _json(response)
        if response.status_code != 200:
            raise _token_error(response.status_code, body)
        return TokenSet(
            access_token=str(body["access_token"]),
            refresh_token=str(body["refresh_token"]),
            expires_in=int(str(body.get("expires_in", 600))),  # Exact sends it as a string
            issued_at=datetime.now(UTC),
        )


def _json(response: httpx.Response) -> dict[str, object]:
    try:
        body = response.json()
    except ValueError:
        return {"error": response.text[:200]}
    return body if isinstance(body, dict) else {}


def _token_error(status: int, body: dict[str, object]) -> AuthError:
    description = str(body.get("error_description") or body.get("error") or "token request refused")
    lowered = description.lower()
    if "not expired" in lowered:
        return TokenNotExpired(description, status=status)
    if "old refresh token" in lowered or "expired" in lowered or body.get("error") == "invalid_grant":
        return NeedsConsent(description, status=status)
    return AuthError(description, status=status)
