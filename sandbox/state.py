"""Everything one sandbox instance holds, built from its config."""

from __future__ import annotations

from dataclasses import dataclass

from sandbox.clock import SandboxClock
from sandbox.config import SandboxConfig
from sandbox.counters import CallCounter
from sandbox.faults import Faults
from sandbox.oauth import OAuthServer
from sandbox.ratelimit import RateLimiter
from sandbox.store import Store
from sandbox.webhooks import WebhookHub

__all__ = ["SandboxState"]


@dataclass
class SandboxState:
    config: SandboxConfig
    clock: SandboxClock
    counters: CallCounter
    store: Store
    oauth: OAuthServer
    limiter: RateLimiter
    faults: Faults
    webhooks: WebhookHub

    @classmethod
    def build(cls, config: SandboxConfig) -> SandboxState:
        clock = SandboxClock()
        store = Store(config, clock)
        webhooks = WebhookHub(config, clock, store)
        return cls(
            config=config,
            clock=clock,
            counters=CallCounter(),
            store=store,
            oauth=OAuthServer(config, clock, store),
            limiter=RateLimiter(config, clock),
            faults=Faults(config, clock),
            webhooks=webhooks,
        )
