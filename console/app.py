"""The console's Starlette app: every page under /console behind the login, every action a POST with a CSRF token."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import jinja2
from sqlalchemy.orm import Session
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, PlainTextResponse, RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from commands.models import COMMAND_STATES
from console.auth import COOKIE, ConsoleAuth
from console.charts import bar_chart
from console.pages import attention, calls, commands, overview, scrubbed_dead_letters
from delivery.deadletters import replay
from delivery.outbox import dispatch_lanes
from ops.trace import trace_record
from runtime.dates import iso_utc
from runtime.db import make_engine, make_session_factory
from runtime.logging import log_event
from runtime.redis import sync_client
from runtime.settings import Settings

__all__ = ["create_app"]

HERE = Path(__file__).parent
log = logging.getLogger(__name__)
Endpoint = Callable[[Request], Awaitable[Response]]


def create_app(settings: Settings) -> Starlette:
    """The console over `settings`' database and Redis; `ConsoleOff` when CONSOLE_TOKEN is unset."""
    auth = ConsoleAuth.from_settings(settings)
    sessions = make_session_factory(make_engine(settings.database_url))
    client = sync_client(settings.redis_url)
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(HERE / "templates"), autoescape=True)
    env.filters["iso"] = lambda moment: iso_utc(moment, timespec="seconds") if moment else ""
    env.policies["json.dumps_kwargs"] = {"sort_keys": True, "default": str}  # a detail may hold a datetime

    def render(request: Request, name: str, status_code: int = 200, **context: Any) -> HTMLResponse:
        sid = request.scope.get("console_session")
        csrf = auth.csrf_token(sid) if sid else ""
        page = env.get_template(name).render(request=request, csrf=csrf, **context)
        # No framing (a framed Replay button could be clicked by another site), no inline script, no referrer.
        headers = {
            "Content-Security-Policy": "default-src 'self'; frame-ancestors 'none'; form-action 'self'",
            "X-Frame-Options": "DENY",
            "Referrer-Policy": "no-referrer",
            "Cache-Control": "no-store",
        }
        return HTMLResponse(page, status_code=status_code, headers=headers)

    def guarded(endpoint: Endpoint) -> Endpoint:
        """A page: the session cookie or the login; an action (POST): the cookie and its CSRF token, or 401/403."""

        async def checked(request: Request) -> Response:
            sid = auth.session_of(request.cookies.get(COOKIE))
            if sid is None:
                if request.method == "GET":
                    return RedirectResponse("/console/login", status_code=303)
                return PlainTextResponse("log in first", status_code=401)
            if request.method != "GET":
                form = await request.form()
                offered = form.get("csrf")
                if not auth.csrf_ok(sid, offered if isinstance(offered, str) else None):
                    return PlainTextResponse("missing or wrong CSRF token", status_code=403)
            request.scope["console_session"] = sid
            return await endpoint(request)

        return checked

    def in_session(work: Callable[[Session], Any]) -> Awaitable[Any]:
        def run() -> Any:
            with sessions() as session:
                return work(session)

        return run_in_threadpool(run)

    async def login_page(request: Request) -> Response:
        return render(request, "login.html")

    async def login(request: Request) -> Response:
        form = await request.form()
        offered = form.get("token")
        if not isinstance(offered, str) or not auth.accepts(offered):
            return render(request, "login.html", status_code=401, error="wrong token")
        response = RedirectResponse("/console", status_code=303)
        response.set_cookie(
            COOKIE,
            auth.new_session(),
            max_age=auth.max_age_seconds,
            path="/console",
            httponly=True,
            samesite="strict",
            secure=request.url.scheme == "https",
        )
        return response

    async def logout(request: Request) -> Response:
        response = RedirectResponse("/console/login", status_code=303)
        response.delete_cookie(COOKIE, path="/console")
        return response

    async def overview_page(request: Request) -> Response:
        status = await in_session(lambda s: overview(settings, s, client))
        return render(
            request,
            "overview.html",
            status=status,
            report=status.as_dict(),
            attention=attention(status, settings.silent_subscription_hours),
        )

    async def calls_page(request: Request) -> Response:
        status = await in_session(lambda s: overview(settings, s, client))
        charts = [
            (
                budget,
                bar_chart(counts.minutes, label=f"division {budget['division']}, last hour", unit="minute"),
                bar_chart(counts.hours, label=f"division {budget['division']}, last day", unit="hour"),
            )
            for budget, counts in calls(settings, client, status)
        ]
        return render(request, "calls.html", charts=charts)

    async def deadletters_page(request: Request) -> Response:
        letters = await in_session(lambda s: scrubbed_dead_letters(settings, s))
        replayed = request.query_params.get("replayed")
        return render(request, "deadletters.html", letters=letters, replayed=replayed)

    async def replay_action(request: Request) -> Response:
        form = await request.form()
        raw = [v for v in form.getlist("id") if isinstance(v, str)]
        if not raw and form.get("all") != "1":
            return PlainTextResponse("give an id or all=1", status_code=400)
        try:
            ids = [int(v) for v in raw] if raw else None
        except ValueError:
            return PlainTextResponse("ids are numbers", status_code=400)

        def work(session: Session) -> tuple[int, int]:
            replayed = replay(session, ids)
            session.commit()
            # After the commit: a worker taking the lane must see the rows pending.
            sent = dispatch_lanes(settings, replayed.lanes) if replayed.ids else 0
            return len(replayed.ids), sent

        count, sent = await in_session(work)
        log_event(log, "console.deadletters_replayed", replayed=count, lanes_dispatched=sent, all=ids is None)
        return RedirectResponse(f"/console/deadletters?replayed={count}", status_code=303)

    async def commands_page(request: Request) -> Response:
        state = request.query_params.get("state") or None
        found = await in_session(lambda s: commands(s, state))
        return render(request, "commands.html", commands=found, state=state, states=COMMAND_STATES)

    async def records_page(request: Request) -> Response:
        q = request.query_params
        division, topic, key = q.get("division", ""), q.get("topic", ""), q.get("key", "")
        trace = None
        error = None
        if division or topic or key:
            if not (division.isdigit() and topic and key):
                error = "give a division (a number), a topic and a key"
            else:
                trace = await in_session(lambda s: trace_record(s, int(division), topic, key))
        status_code = 400 if error else 200
        return render(
            request, "records.html", status_code, trace=trace, error=error, division=division, topic=topic, key=key
        )

    routes = [
        Route("/console/login", login_page, methods=["GET"]),
        Route("/console/login", login, methods=["POST"]),
        Route("/console/logout", guarded(logout), methods=["POST"]),
        Route("/console", guarded(overview_page), methods=["GET"]),
        Route("/console/calls", guarded(calls_page), methods=["GET"]),
        Route("/console/deadletters", guarded(deadletters_page), methods=["GET"]),
        Route("/console/deadletters/replay", guarded(replay_action), methods=["POST"]),
        Route("/console/commands", guarded(commands_page), methods=["GET"]),
        Route("/console/records", guarded(records_page), methods=["GET"]),
        Mount("/console/static", StaticFiles(directory=HERE / "static"), name="static"),
    ]
    return Starlette(routes=routes)
