"""`exact-pipeline receiver`: serve the webhook receiver with uvicorn."""

from __future__ import annotations

import typer

from receiver.apps import WebhookSecrets
from runtime.settings import get_settings


def receiver(
    host: str = typer.Option("127.0.0.1", help="Interface to bind."),
    port: int = typer.Option(8000, help="Port to listen on."),
    workers: int = typer.Option(1, help="Worker processes."),
) -> None:
    """Serve POST /webhooks/exact, /healthz, /readyz and /metrics."""
    import uvicorn

    from receiver.serving import uvicorn_options

    settings = get_settings()
    WebhookSecrets.from_settings(settings)  # a missing webhook secret stops here, before uvicorn starts
    # Header, header-count, header-time and connection bounds (receiver/serving.py), in every worker process.
    options = uvicorn_options(settings)
    uvicorn.run("receiver.app:create_app_from_env", factory=True, host=host, port=port, workers=workers, **options)
