"""Exact's error body, shared by the data plane's gauntlet, its handlers and the faults it injects."""

from __future__ import annotations

from starlette.responses import JSONResponse

__all__ = ["error_response"]


def error_response(status: int, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    """Exact's error body: `{"error":{"code":"","message":{"lang":"","value":…}}}`."""
    body = {"error": {"code": "", "message": {"lang": "", "value": message}}}
    return JSONResponse(body, status_code=status, headers=headers)
