"""`exact-pipeline sandbox`: serve the Exact Online emulator."""

from __future__ import annotations

import typer

from sandbox.config import SandboxConfig


def sandbox(
    port: int = typer.Option(8001, help="Port to listen on."),
    host: str = typer.Option("127.0.0.1", help="Interface to bind."),
    webhook_secret: str = typer.Option(SandboxConfig.webhook_secret, envvar="EXACT_WEBHOOK_SECRET"),
    minute_limit: int = typer.Option(SandboxConfig.minute_limit, help="Calls a minute per app and division."),
    day_limit: int = typer.Option(SandboxConfig.day_limit, help="Calls a day per app and division."),
) -> None:
    """Run a local Exact Online that behaves like production, quirks included."""
    import uvicorn

    from sandbox.app import create_sandbox_app

    config = SandboxConfig(webhook_secret=webhook_secret, minute_limit=minute_limit, day_limit=day_limit)
    uvicorn.run(create_sandbox_app(config), host=host, port=port, log_level="warning")
