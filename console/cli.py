"""`exact-pipeline console`: serve the operator's web console (off unless CONSOLE_TOKEN is set)."""

from __future__ import annotations

import typer

from console.auth import ConsoleOff
from delivery.sinks.urls import url_secrets
from runtime.logging import configure_logging
from runtime.settings import get_settings

__all__ = ["console"]


def console(
    host: str | None = typer.Option(None, help="Interface to bind (default CONSOLE_HOST, 127.0.0.1)."),
    port: int | None = typer.Option(None, help="Port to listen on (default CONSOLE_PORT, 8090)."),
) -> None:
    """Serve the web console at /console: status, Exact calls, dead letters, commands, a record's trace."""
    import uvicorn

    from console.app import create_app

    settings = get_settings()
    # JSON lines with every secret masked, CONSOLE_TOKEN's included; uvicorn's own logs stay quiet.
    configure_logging(settings.log_level, secrets=[*settings.secret_values(), *url_secrets(settings.push_url)])
    try:
        app = create_app(settings)
    except ConsoleOff as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    bind_host = host or settings.console_host
    bind_port = port or settings.console_port
    typer.echo(f"console at http://{bind_host}:{bind_port}/console")
    uvicorn.run(app, host=bind_host, port=bind_port, log_config=None, log_level="warning", access_log=False)
