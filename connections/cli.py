"""`exact-pipeline connect` and `exact-pipeline divisions`: connect a company and list what it granted.

Usage:
    exact-pipeline connect                         # prints the authorize URL, serves EXACT_REDIRECT_URI
    exact-pipeline connect --code CODE             # exchange a code you already have
    exact-pipeline connect --refresh-token TOKEN   # adopt the refresh token of an existing integration
    exact-pipeline divisions [--refresh]
"""

from __future__ import annotations

import http.server
import threading
from urllib.parse import parse_qs, urlsplit

import httpx
import typer
from rich.console import Console
from rich.table import Table
from sqlalchemy import select

from connections.factory import client_from_settings, oauth_from_settings
from connections.models import Connection, Division, DivisionStatus
from connections.store import save_connection, save_divisions
from exact import ExactError, OAuthApp, TokenNotExpired, TokenSet
from runtime.crypto import TokenCipher
from runtime.db import make_engine, make_session_factory, session_scope
from runtime.settings import Settings, get_settings

console = Console()
# How long one connection to the redirect URI may stay silent: a browser's spare or stalled socket gets closed.
CALLBACK_IDLE_SECONDS = 10.0


def connect(
    code: str | None = typer.Option(None, help="Exchange this authorization code."),
    refresh_token: str | None = typer.Option(None, help="Adopt this refresh token (it is rotated at once)."),
    timeout: float = typer.Option(300.0, help="Seconds to wait for the browser to come back."),
) -> None:
    """Connect an Exact Online user to this pipeline and store its divisions."""
    settings = get_settings()
    settings.require("exact_client_id", "exact_client_secret", "exact_redirect_uri", "token_encryption_key")
    oauth = oauth_from_settings(settings)
    try:
        tokens = _obtain(oauth, code, refresh_token, timeout)
        connection_id, user, divisions = finish_connect(settings, tokens)
    except TokenNotExpired as exc:
        raise typer.BadParameter(
            "Exact refused: the other integration refreshed this token less than 570 s ago. Try again in 10 minutes."
        ) from exc
    except ExactError as exc:
        console.print(f"[red]connect failed:[/red] {exc.message}")
        raise typer.Exit(1) from exc
    console.print(f"connected [bold]{user}[/bold] as connection {connection_id}; divisions: {divisions}")


def _obtain(oauth: OAuthApp, code: str | None, refresh_token: str | None, timeout: float) -> TokenSet:
    if refresh_token:
        return oauth.refresh(refresh_token)
    if code:
        return oauth.exchange_code(code)
    url, state = oauth.authorize_url()
    console.print(f"Open this URL and approve access:\n{url}")
    return oauth.exchange_code(wait_for_code(oauth.redirect_uri or "", state, timeout))


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
            raise typer.BadParameter(f"no authorization came back to {redirect_uri} within {timeout:.0f}s")
    finally:
        server.shutdown()
        server.server_close()
    return received["code"]


def finish_connect(settings: Settings, tokens: TokenSet) -> tuple[int, str, list[int]]:
    """Store the connection of the user behind `tokens`, then fetch and store its divisions."""
    me = _me(settings.exact_base_url, tokens.access_token)
    sessions = make_session_factory(make_engine(settings.database_url))
    cipher = TokenCipher(settings.secret("token_encryption_key"))
    with session_scope(sessions) as session:
        row = save_connection(
            session,
            base_url=settings.exact_base_url,
            client_id=str(settings.exact_client_id),
            tokens=tokens,
            me=me,
            cipher=cipher,
        )
        connection_id, current = row.id, row.current_division
    client = client_from_settings(settings, sessions, connection_id)
    # Exact counts current/Me against the user's current division.
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


def divisions(refresh: bool = typer.Option(False, help="Fetch the divisions from Exact again first.")) -> None:
    """List the divisions of every connection, with their status."""
    settings = get_settings()
    sessions = make_session_factory(make_engine(settings.database_url))
    if refresh:
        with sessions() as session:
            connections = list(session.scalars(select(Connection)))
        for connection in connections:
            client = client_from_settings(settings, sessions, connection.id)
            rows = client.divisions(connection.current_division or 0)
            with session_scope(sessions) as session:
                save_divisions(session, connection.id, rows)
    table = Table("connection", "user", "division", "description", "status", "granted", "needs consent")
    with sessions() as session:
        query = select(Division, Connection).join(Connection).order_by(Connection.id, Division.code)
        for division, connection in session.execute(query):
            table.add_row(
                str(connection.id),
                connection.user_name or connection.user_id,
                str(division.code),
                division.description or "",
                DivisionStatus.label(division.status),
                "yes" if division.granted else "no",
                "YES" if connection.needs_consent else "",
            )
    console.print(table)
