"""The data plane's `webhooks/WebhookSubscriptions`: list, create, read and delete this app's subscriptions.

API (each through `sandbox.guard.guarded`, endpoint "webhooks/WebhookSubscriptions"):
    GET    /api/v1/{division}/webhooks/WebhookSubscriptions                 this app's subscriptions in the division
    POST   /api/v1/{division}/webhooks/WebhookSubscriptions                 {"Topic","CallbackURL"[,"IsInstant",…]};
           a Topic Exact does not send (not in `entities.TOPICS`) is a 400 in Exact's error shape, before the
           callback is checked: nothing is created and the callback gets no request
    GET    /api/v1/{division}/webhooks/WebhookSubscriptions(guid'{id}')
    DELETE /api/v1/{division}/webhooks/WebhookSubscriptions(guid'{id}')
    PUT    … → 400: Exact has no update of a subscription (delete and create instead)
Any other `webhooks/...` resource is a 404 that still goes through the gauntlet (counted, rate limited).
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

import httpx
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from sandbox.entities import by_topic
from sandbox.errors import error_response
from sandbox.guard import CallContext, guarded
from sandbox.webhooks import ENDPOINT, Subscription

if TYPE_CHECKING:
    from sandbox.state import SandboxState

__all__ = ["routes"]

_INVALID = "Error 500: Invalid: Post to callback URL endpoint returns"
_UNREACHABLE = f"{_INVALID} 500 An error occurred while sending the request."
_NOT_ALLOWED = "The requested method is not allowed for this resource"
_KEYED = re.compile(r"^WebhookSubscriptions\(guid'(?P<key>[^']*)'\)$", re.IGNORECASE)
# The only topic that may be instant.
_INSTANT_TOPIC = "GoodsDeliveries"


def routes(state: SandboxState) -> list[BaseRoute]:
    api = _SubscriptionsApi(state)
    return [
        Route("/api/v1/{division:int}/webhooks/{path:path}", api.dispatch, methods=["GET", "POST", "PUT", "DELETE"])
    ]


class _SubscriptionsApi:
    """The handlers; each call has passed the gauntlet, so `ctx.division` is the division in the path."""

    def __init__(self, state: SandboxState) -> None:
        self.state = state
        self.hub = state.webhooks
        self._guarded = guarded(state, ENDPOINT, self.handle)

    async def dispatch(self, request: Request) -> Response:
        path = request.path_params["path"]
        if path.lower() == "webhooksubscriptions" or _KEYED.match(path):
            return await self._guarded(request)
        return await guarded(self.state, f"webhooks/{path}", _not_found)(request)

    async def handle(self, request: Request, ctx: CallContext) -> Response:
        assert ctx.division is not None
        if not self.state.store.can_access(ctx.user_id, ctx.division):
            return error_response(403, "Forbidden - User division is not accessible")
        own = {s.id: s for s in self.hub.owned(ctx.client_id, ctx.division)}
        match = _KEYED.match(request.path_params["path"])
        if match is None:
            return await self._collection(request, ctx, own)
        return self._keyed(request.method, match.group("key").lower(), own)

    async def _collection(self, request: Request, ctx: CallContext, own: dict[str, Subscription]) -> Response:
        if request.method == "GET":
            return JSONResponse({"d": {"results": [s.to_exact() for s in own.values()]}})
        if request.method == "POST":
            return await self._create(request, ctx)
        return error_response(405, _NOT_ALLOWED)

    def _keyed(self, method: str, key: str, own: dict[str, Subscription]) -> Response:
        if method == "POST":
            return error_response(405, _NOT_ALLOWED)
        if key not in own:
            return error_response(404, "Not found")
        if method == "GET":
            return JSONResponse({"d": own[key].to_exact()})
        if method == "DELETE":
            self.hub.subscriptions.pop(key, None)
            return Response(status_code=204)
        # Exact has no update for a subscription: delete and create instead.
        return error_response(400, "Update is not allowed for WebhookSubscriptions")

    async def _create(self, request: Request, ctx: CallContext) -> Response:
        assert ctx.division is not None
        body = await _json_object(request)
        if body is None:
            return error_response(400, "Error reading JSON")
        topic, callback = body.get("Topic"), body.get("CallbackURL")
        if not isinstance(topic, str) or not topic or not isinstance(callback, str) or not callback:
            return error_response(400, "Mandatory: Topic, CallbackURL")
        if by_topic(topic) is None:
            # Checked before the callback is: nothing is created and the callback sees no request.
            return error_response(400, f"Invalid: Topic '{topic}' is not a webhook topic")
        is_instant = bool(body.get("IsInstant"))
        if is_instant and topic.lower() != _INSTANT_TOPIC.lower():
            return error_response(400, f"IsInstant is only supported for topic '{_INSTANT_TOPIC}'")
        # One per app, topic and division, whatever the CallbackURL.
        if self._duplicate(ctx, topic):
            return error_response(500, "Data already exists")
        if (failure := await _validate_callback(callback, self.state.config.webhook_timeout)) is not None:
            return error_response(500, failure)
        if self._duplicate(ctx, topic):  # a concurrent create won while the callback was being checked
            return error_response(500, "Data already exists")
        description = body.get("Description")
        sub = self.hub.add(
            ctx.division,
            topic,
            callback,
            ctx.client_id,
            ctx.user_id,
            str(request.base_url).rstrip("/"),
            description=description if isinstance(description, str) else "exact-pipeline",
            is_instant=is_instant,
        )
        return JSONResponse({"d": sub.to_exact()}, status_code=201)

    def _duplicate(self, ctx: CallContext, topic: str) -> bool:
        assert ctx.division is not None
        return any(s.topic.lower() == topic.lower() for s in self.hub.owned(ctx.client_id, ctx.division))


async def _json_object(request: Request) -> dict[str, Any] | None:
    try:
        body = await request.json()
    except ValueError:
        return None
    return body if isinstance(body, dict) else None


async def _validate_callback(url: str, timeout: float) -> str | None:
    """Exact's create first POSTs an empty body to the callback; anything but 2xx fails the create."""
    try:
        async with httpx.AsyncClient(timeout=timeout) as client:
            response = await client.post(url, content=b"")
    except httpx.HTTPError:
        return _UNREACHABLE
    if 200 <= response.status_code < 300:
        return None
    return f"{_INVALID} {response.status_code} {response.reason_phrase}"


async def _not_found(request: Request, ctx: CallContext) -> Response:
    # Exact has no other webhooks resource: `webhooks/WebhookTopics` is a 404.
    return error_response(404, "Not found: unknown resource")
