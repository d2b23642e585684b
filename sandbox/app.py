"""The sandbox's Starlette app: OAuth, the `/api/v1` data plane and the `/_sandbox` control API."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

from starlette.applications import Starlette

from sandbox import api, control, faults, oauth, ratelimit, webhook_api, webhook_control
from sandbox.config import SandboxConfig
from sandbox.state import SandboxState

__all__ = ["create_sandbox_app"]


def create_sandbox_app(config: SandboxConfig | None = None) -> Starlette:
    """A fresh, deterministic Exact Online; `app.state.sandbox` is its `SandboxState`."""
    state = SandboxState.build(config or SandboxConfig())

    @contextlib.asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        async with state.webhooks.running():
            yield

    routes = [
        *oauth.routes(state.oauth),
        *control.routes(state),
        *faults.routes(state.faults),
        *ratelimit.routes(state.limiter),
        # Before `api`: its `/api/v1/{division}/{path}` would match webhook paths too.
        *webhook_api.routes(state),
        *webhook_control.routes(state.webhooks),
        *api.routes(state),
    ]
    app = Starlette(routes=routes, lifespan=lifespan)
    app.state.sandbox = state
    return app
