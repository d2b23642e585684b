"""Every limit and switch of the sandbox, with production's values as defaults."""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["SandboxConfig"]


@dataclass
class SandboxConfig:
    """Sandbox behaviour; tests shrink limits and windows instead of waiting for production's.

    SandboxConfig(minute_limit=5, refresh_min_age=1.0)
    """

    client_id: str = "0f1e2d3c-4b5a-6978-8a9b-0c1d2e3f4a5b"
    client_secret: str = "sandbox-client-secret"
    webhook_secret: str = "sandbox-webhook-secret"
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
