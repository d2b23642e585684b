"""`exact-pipeline connect` and `exact-pipeline divisions`: connect a company and list what it granted.

Usage:
    exact-pipeline connect                         # prints the authorize URL, serves EXACT_REDIRECT_URI
    exact-pipeline connect --code CODE             # exchange a code you already have
    exact-pipeline connect --refresh-token TOKEN   # adopt the refresh token of an existing integration
    exact-pipeline connect --app be                # through another app of EXACT_APPS (default: `default`)
    exact-pipeline divisions [--refresh]
"""

from __future__ import annotations

import typer
from rich.console import Console
from rich.table import Table
from sqlalchemy import select

from connections.apps import DEFAULT_APP, ExactApp, UnknownApp, apps_from_settings
from connections.consent import NoRedirect, finish_connect, wait_for_code
from connections.factory import client_from_settings, oauth_from_settings
from connections.models import Connection, Division, DivisionStatus
from connections.store import save_divisions
from exact import ExactError, OAuthApp, TokenNotExpired, TokenSet, budget_class
from runtime.db import make_engine, make_session_factory, session_scope
from runtime.settings import MissingSetting, Settings, get_settings

console = Console()


def connect(
    code: str | None = typer.Option(None, help="Exchange this authorization code."),
    refresh_token: str | None = typer.Option(None, help="Adopt this refresh token (it is rotated at once)."),
    timeout: float = typer.Option(300.0, help="Seconds to wait for the browser to come back."),
    app_name: str = typer.Option(DEFAULT_APP, "--app", help="The Exact app (EXACT_APPS) to connect through."),
) -> None:
    """Connect an Exact Online user to this pipeline and store its divisions."""
    settings = get_settings()
    try:
        chosen = apps_from_settings(settings).get(app_name)
    except (UnknownApp, ValueError) as exc:
        console.print(f"[red]connect failed:[/red] {exc}")
        raise typer.Exit(2) from exc
    _require(settings, chosen)
    oauth = oauth_from_settings(settings, chosen)
    try:
        tokens = _obtain(oauth, code, refresh_token, timeout)
        connection_id, user, divisions = finish_connect(settings, tokens, app=chosen.name)
    except TokenNotExpired as exc:
        raise typer.BadParameter(
            "Exact refused: the other integration refreshed this token less than 570 s ago. Try again in 10 minutes."
        ) from exc
    except ExactError as exc:
        console.print(f"[red]connect failed:[/red] {exc.message}")
        raise typer.Exit(1) from exc
    console.print(
        f"connected [bold]{user}[/bold] as connection {connection_id} (app {chosen.name}); divisions: {divisions}"
    )


def _require(settings: Settings, app: ExactApp) -> None:
    """Every setting `connect` needs, named at once: the app's client id and secret, a redirect URI, the key."""
    missing = [app.setting(part) for part in ("client_id", "client_secret") if not getattr(app, part)]
    missing += [] if app.redirect_uri else ["EXACT_REDIRECT_URI"]
    key = settings.token_encryption_key
    missing += [] if key and key.get_secret_value() else ["TOKEN_ENCRYPTION_KEY"]
    if missing:
        raise MissingSetting(*missing)


def _obtain(oauth: OAuthApp, code: str | None, refresh_token: str | None, timeout: float) -> TokenSet:
    if refresh_token:
        return oauth.refresh(refresh_token)
    if code:
        return oauth.exchange_code(code)
    url, state = oauth.authorize_url()
    console.print(f"Open this URL and approve access:\n{url}")
    try:
        return oauth.exchange_code(wait_for_code(oauth.redirect_uri or "", state, timeout))
    except NoRedirect as exc:
        raise typer.BadParameter(str(exc)) from None


def divisions(refresh: bool = typer.Option(False, help="Fetch the divisions from Exact again first.")) -> None:
    """List the divisions of every connection, with their status."""
    settings = get_settings()
    sessions = make_session_factory(make_engine(settings.database_url))
    if refresh:
        with sessions() as session:
            connections = list(session.scalars(select(Connection)))
        for connection in connections:
            client = client_from_settings(settings, sessions, connection.id)
            with budget_class("command"):  # asked for at the terminal
                rows = client.divisions(connection.current_division or 0)
            with session_scope(sessions) as session:
                save_divisions(session, connection.id, rows)
    table = Table("connection", "user", "division", "description", "status", "granted", "needs consent")
    with sessions() as session:
        query = select(Division, Connection).join(Connection).order_by(Connection.id, Division.code)
        for division, connection in session.execute(query):
            table.add_row(
                str(connection.id) if connection.app == DEFAULT_APP else f"{connection.id} ({connection.app})",
                connection.user_name or connection.user_id,
                str(division.code),
                division.description or "",
                DivisionStatus.label(division.status),
                "yes" if division.granted else "no",
                "YES" if connection.needs_consent else "",
            )
    console.print(table)
