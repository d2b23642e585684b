"""Every limit and switch of the sandbox, with production's values as defaults."""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["SandboxApp", "SandboxConfig"]


@dataclass(frozen=True)
class SandboxApp:
    """An app registered with the sandbox: its client id and secret, and the secret its webhooks are signed with."""

    client_id: str
    client_secret: str
    webhook_secret: str


@dataclass
class SandboxConfig:
    """Sandbox behaviour; tests shrink limits and windows instead of waiting for production's.

    SandboxConfig(minute_limit=5, refresh_min_age=1.0)
    """

    client_id: str = "0f1e2d3c-4b5a-6978-8a9b-0c1d2e3f4a5b"
    client_secret: str = "sandbox-client-secret"
    webhook_secret: str = "sandbox-webhook-secret"
    # More apps beside the one above (a second registration, say for a BE host), each with its own secrets.
    apps: tuple[SandboxApp, ...] = ()
    # Empty: any redirect URI is accepted.
    redirect_uris: tuple[str, ...] = ()
    # OAuth
    access_token_lifetime: float = 600.0
    refresh_min_age: float = 570.0
    token_calls_per_day: int = 200
    refresh_token_idle_days: float = 30.0
    # Rate limits per app and division
    minute_limit: int = 60
    # Length of the "minute" window; tests and benchmarks scale it down (e.g. 2.0) to keep runs short.
    # Windows are fixed and aligned on multiples of this length of the sandbox clock, like Exact's whole minutes.
    minute_window_seconds: float = 60.0
    day_limit: int = 5000
    error_block_threshold: int = 10
    error_block_seconds: float = 3600.0
    # OData
    page_size: int = 60
    sync_page_size: int = 1000
    # Webhooks
    webhook_delivery: bool = True
    webhook_duplicates: bool = False
    webhook_late_seconds: float = 0.0
    webhook_retry_delays: tuple[float, ...] = (1.0, 2.0, 4.0, 8.0, 16.0)
    webhook_timeout: float = 10.0
    # POSTs in flight at once: Exact paces its deliveries, and 1,000 at once would only measure the test machine.
    webhook_concurrency: int = 16
    # Seed data
    seed: int = 42
    extra: dict[str, object] = field(default_factory=dict)

    def app(self, client_id: str) -> SandboxApp | None:
        """The registered app with this client id: the one of the fields above, or one of `apps`."""
        own = SandboxApp(self.client_id, self.client_secret, self.webhook_secret)
        return next((app for app in (own, *self.apps) if app.client_id == client_id), None)
