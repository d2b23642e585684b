"""The `/_sandbox/webhooks` control API: delivery counts, delivery switches and subscriptions planted behind the app.

GET    /_sandbox/webhooks?last=N             counts (sent, delivered, failed, dropped, suppressed, …), pending, the
                                             last N deliveries (attempt, status, raw body)
GET    /_sandbox/webhooks/idle               {"idle": true} once no delivery is queued, delayed or retrying
POST   /_sandbox/webhooks/config             {"delivery": bool, "duplicates": bool, "late_seconds": S,
                                             "retry_delays": [S, …], "timeout": S}
POST   /_sandbox/webhooks/reset              zero the counts and forget the recent deliveries
GET    /_sandbox/webhooks/subscriptions      every subscription of every app
POST   /_sandbox/webhooks/subscriptions      plant one: {"Division","Topic","CallbackURL"[,"ClientID","UserID"]};
                                             no callback check, no uniqueness (reconcile tests need stale ones)
DELETE /_sandbox/webhooks/subscriptions/{id} remove one behind the app's back
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from sandbox.webhooks import WebhookHub

__all__ = ["routes"]


class _Switches(BaseModel):
    model_config = ConfigDict(extra="forbid")

    delivery: bool | None = None
    duplicates: bool | None = None
    late_seconds: float | None = Field(default=None, ge=0)
    retry_delays: tuple[float, ...] | None = None
    timeout: float | None = Field(default=None, gt=0)


class _Planted(BaseModel):
    model_config = ConfigDict(extra="forbid")

    Division: int
    Topic: str = Field(min_length=1)
    CallbackURL: str = Field(min_length=1)
    ClientID: str | None = None
    UserID: str | None = None
    Description: str = "exact-pipeline"
    IsInstant: bool = False


def routes(hub: WebhookHub) -> list[BaseRoute]:
    control = _WebhookControl(hub)
    return [
        Route("/_sandbox/webhooks", control.show, methods=["GET"]),
        Route("/_sandbox/webhooks/idle", control.idle, methods=["GET"]),
        Route("/_sandbox/webhooks/config", control.configure, methods=["POST"]),
        Route("/_sandbox/webhooks/reset", control.reset, methods=["POST"]),
        Route("/_sandbox/webhooks/subscriptions", control.plant, methods=["POST"]),
        Route("/_sandbox/webhooks/subscriptions", control.listing, methods=["GET"]),
        Route("/_sandbox/webhooks/subscriptions/{id}", control.remove, methods=["DELETE"]),
    ]


class _WebhookControl:
    def __init__(self, hub: WebhookHub) -> None:
        self.hub = hub

    async def show(self, request: Request) -> Response:
        last = request.query_params.get("last", "20")
        return JSONResponse(self.hub.snapshot(int(last) if last.isdigit() else 20))

    async def idle(self, request: Request) -> Response:
        return JSONResponse({"idle": self.hub.idle(), "pending": self.hub.pending})

    async def configure(self, request: Request) -> Response:
        try:
            body = _Switches.model_validate_json(await request.body() or b"{}")
        except ValidationError as exc:
            return _bad_body(exc)
        for name, value in body.model_dump(exclude_none=True).items():
            setattr(self.hub.config, f"webhook_{name}", value)
        return JSONResponse(self.hub.snapshot(0)["switches"])

    async def reset(self, request: Request) -> Response:
        self.hub.reset_stats()
        return JSONResponse(self.hub.snapshot(0))

    async def plant(self, request: Request) -> Response:
        try:
            body = _Planted.model_validate_json(await request.body())
        except ValidationError as exc:
            return _bad_body(exc)
        sub = self.hub.add(
            body.Division,
            body.Topic,
            body.CallbackURL,
            body.ClientID or self.hub.config.client_id,
            body.UserID or self.hub.store.default_user_id,
            str(request.base_url).rstrip("/"),
            description=body.Description,
            is_instant=body.IsInstant,
        )
        return JSONResponse(sub.to_exact(), status_code=201)

    async def listing(self, request: Request) -> Response:
        return JSONResponse({"subscriptions": [s.to_exact() for s in self.hub.subscriptions.values()]})

    async def remove(self, request: Request) -> Response:
        if self.hub.subscriptions.pop(str(request.path_params["id"]).lower(), None) is None:
            return JSONResponse({"error": "no such subscription"}, status_code=404)
        return Response(status_code=204)


def _bad_body(exc: ValidationError) -> JSONResponse:
    return JSONResponse({"error": exc.errors(include_url=False, include_context=False)}, status_code=400)
