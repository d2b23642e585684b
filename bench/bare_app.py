"""The baseline of bench/receiver.py: a bare Starlette endpoint that reads the body and answers 200."""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route


async def webhook(request: Request) -> Response:
    await request.body()
    return Response(status_code=200)


app = Starlette(routes=[Route("/webhooks/exact", webhook, methods=["POST"])])
