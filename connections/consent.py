"""Consent, the OAuth way: serve the redirect URI once for the code, then store the user's connection and divisions."""

from __future__ import annotations

import http.server
import threading
from urllib.parse import parse_qs, urlsplit

import httpx

from connections.apps import DEFAULT_APP, apps_from_settings
from connections.factory import client_from_settings
from connections.store import save_connection, save_divisions
from exact import TokenSet, budget_class
from runtime.crypto import TokenCipher
from runtime.db import make_engine, make_session_factory, session_scope
from runtime.settings import Settings

__all__ = ["CALLBACK_IDLE_SECONDS", "NoRedirect", "finish_connect", "wait_for_code"]

# How long one connection to the redirect URI may stay silent: a browser's spare or stalled socket gets closed.
CALLBACK_IDLE_SECONDS = 10.0


class NoRedirect(TimeoutError):
    """No authorization came back to the redirect URI in time."""


def wait_for_code(redirect_uri: str, state: str, timeout: float, listening: threading.Event | None = None) -> str:
    """Serve the redirect URI once; check `state` so a forged redirect cannot plant someone else's code.
    `listening` is set once the redirect URI accepts connections (for callers that drive the browser themselves)."""
    parts = urlsplit(redirect_uri)
    received: dict[str, str] = {}
    done = threading.Event()

    class Handler(http.server.BaseHTTPRequestHandler):
        timeout = CALLBACK_IDLE_SECONDS

        def do_GET(self) -> None:
            query = {k: v[0] for k, v in parse_qs(urlsplit(self.path).query).items()}
            ok = query.get("state") == state and "code" in query
            self.send_response(200 if ok else 400)
            self.end_headers()
            self.wfile.write(b"Connected: you can close this window." if ok else b"Invalid or missing state.")
            if ok:
                received["code"] = query["code"]
                done.set()

        def log_message(self, format: str, *args: object) -> None:
            return

    # A thread per connection: browsers open spare connections, and an idle one must not hold up the redirect.
    server = http.server.ThreadingHTTPServer((parts.hostname or "127.0.0.1", parts.port or 80), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    if listening is not None:
        listening.set()
    try:
        if not done.wait(timeout):
            raise NoRedirect(f"no authorization came back to {redirect_uri} within {timeout:.0f}s")
    finally:
        server.shutdown()
        server.server_close()
    return received["code"]


def finish_connect(settings: Settings, tokens: TokenSet, *, app: str = DEFAULT_APP) -> tuple[int, str, list[int]]:
    """Store the connection of the user behind `tokens` (issued to `app`), then fetch and store its divisions."""
    chosen = apps_from_settings(settings).get(app)
    client_id, _ = chosen.credentials()
    me = _me(chosen.base_url, tokens.access_token)
    sessions = make_session_factory(make_engine(settings.database_url))
    cipher = TokenCipher(settings.secret("token_encryption_key"))
    with session_scope(sessions) as session:
        row = save_connection(
            session,
            app=chosen.name,
            base_url=chosen.base_url,
            client_id=client_id,
            tokens=tokens,
            me=me,
            cipher=cipher,
        )
        connection_id, current = row.id, row.current_division
    client = client_from_settings(settings, sessions, connection_id)
    # Exact counts current/Me against the user's current division.
    with budget_class("command"):  # someone waits at the browser: no backfill may hold the connect up
        client.limiter.note_call(current)
        rows = client.divisions(current) if current is not None else []
    with session_scope(sessions) as session:
        stored = save_divisions(session, connection_id, rows)
    return connection_id, str(me.get("FullName") or me["UserID"]), [d.code for d in stored if d.granted]


def _me(base_url: str, access_token: str) -> dict[str, object]:
    # One call before the connection exists to key the budget on; every later call goes through the client.
    response = httpx.get(
        f"{base_url.rstrip('/')}/api/v1/current/Me",
        timeout=30,
        headers={"Authorization": f"Bearer {access_token}", "Accept": "application/json"},
    )
    response.raise_for_status()
    return dict(response.json()["d"]["results"][0])
