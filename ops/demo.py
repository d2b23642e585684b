"""`exact-pipeline demo`: the whole pipeline against the sandbox, as child processes, with live progress.

Steps: a private SQLite database in a work directory, migrated; Redis from REDIS_URL (or a private redis-server);
the sandbox, the receiver, a worker (fetching), a pusher (deliveries) and beat started as children, as the Procfile
runs them; a connection made through the real OAuth flow; subscriptions registered for two divisions; a stream of
creates, updates and deletes, then a burst; and a wait until the SQL mirror and the HTTP sink's receiver (a push
target in this process) both equal the sandbox.
"""

from __future__ import annotations

import base64
import os
import random
import secrets
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import httpx
from cryptography.fernet import Fernet
from pydantic import SecretStr
from rich.console import Console
from rich.live import Live

from commands.models import CommandState
from connections.consent import finish_connect, wait_for_code
from connections.factory import client_from_settings, limiter_from_settings, oauth_from_settings
from exact import CATALOGUE
from ops.children import Children, private_redis
from ops.demo_summary import DIVISIONS, TOPICS, DemoStack, DemoSummary, await_level, live_view, measure
from ops.levels import control_path
from ops.push_target import PushTarget
from runtime.contracts import DELIVERIES_QUEUE, EVENTS_QUEUE
from runtime.db import make_engine, make_session_factory
from runtime.migrate import upgrade
from runtime.redis import clear_prefix, sync_client
from runtime.serving import ServerThread, free_port
from runtime.settings import Settings
from sandbox.config import SandboxConfig
from subscriptions.service import SubscriptionService

__all__ = ["DemoOptions", "DemoSummary", "run_demo"]

BURST_PAIR = (101, "Contacts")


@dataclass(frozen=True)
class DemoOptions:
    changes: int = 300  # the mixed stream, before the burst
    burst: int = 1000
    rate: float = 25.0  # changes a second in the stream
    forever: bool = False
    timeout: float = 300.0  # for the pipeline to deliver everything after the last change
    workdir: Path | None = None
    worker_concurrency: int = 2


def run_demo(base: Settings, options: DemoOptions, console: Console) -> DemoSummary:
    """Run the demo to its summary; Ctrl-C (KeyboardInterrupt) stops every child and ends with the summary so far."""
    workdir = options.workdir or Path(tempfile.mkdtemp(prefix="exact-pipeline-demo-"))
    workdir.mkdir(parents=True, exist_ok=True)
    summary = DemoSummary(workdir=str(workdir))
    started = time.monotonic()
    with Children(workdir / "logs") as children:
        redis_url = private_redis(children, base.redis_url)
        settings = _settings(base, workdir, redis_url)
        env = _environment(settings)
        console.print(f"[bold]exact-pipeline demo[/bold]: work directory {workdir}, Redis {redis_url}")
        upgrade(settings.database_url)
        push = PushTarget(settings.secret("push_secret"))
        sessions = make_session_factory(make_engine(settings.database_url))
        try:
            with ServerThread(push.app(), port=_port(settings.push_url)), httpx.Client(timeout=60) as http:
                stack = DemoStack(
                    settings,
                    sessions,
                    settings.exact_base_url,
                    settings.public_url,
                    push,
                    http,
                    limiter_from_settings(settings),
                )
                _start(children, stack, env, workdir, options, console)
                connection_id = _connect(stack, console)
                _register(stack, connection_id, console)
                _drive(stack, children, options, summary, started, console)
        except KeyboardInterrupt:
            console.print("[yellow]stopped: stopping every process the demo started[/yellow]")
        finally:
            summary.seconds = round(time.monotonic() - started, 1)
            clear_prefix(sync_client(redis_url), settings.redis_prefix)
    return summary


def _settings(base: Settings, workdir: Path, redis_url: str) -> Settings:
    ports = {name: free_port() for name in ("sandbox", "receiver", "redirect", "push")}
    return base.model_copy(
        update={
            "database_url": f"sqlite:///{workdir / 'demo.db'}",
            "redis_url": redis_url,
            "redis_prefix": f"exact-pipeline-demo-{uuid.uuid4().hex[:8]}:",
            "exact_base_url": f"http://127.0.0.1:{ports['sandbox']}",
            "exact_client_id": SandboxConfig.client_id,
            "exact_client_secret": SecretStr(SandboxConfig.client_secret),
            "exact_redirect_uri": f"http://127.0.0.1:{ports['redirect']}/callback",
            "exact_webhook_secret": SecretStr(secrets.token_hex(16)),
            "token_encryption_key": SecretStr(Fernet.generate_key().decode()),
            "public_url": f"http://127.0.0.1:{ports['receiver']}",
            "sinks": "sql,http",
            "push_url": f"http://127.0.0.1:{ports['push']}/push",
            "push_secret": SecretStr("whsec_" + base64.b64encode(secrets.token_bytes(24)).decode()),
            "delta_sync_minutes": 1.0,
            "delivery_backoff_seconds": 1.0,
            "delivery_sweep_after_seconds": 10.0,
            "commands_token": SecretStr(secrets.token_urlsafe(24)),
        }
    )


def _environment(settings: Settings) -> dict[str, str]:
    """The children's environment: every setting the demo chose, secrets included (they are the demo's own)."""
    return {**settings.child_environment(os.environ), "PYTHONUNBUFFERED": "1"}


def _port(url: str | None) -> int:
    return int(httpx.URL(url or "").port or 0)


def _cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "cli.main", *args]


def _start(
    children: Children, stack: DemoStack, env: dict[str, str], workdir: Path, options: DemoOptions, console: Console
) -> None:
    settings = stack.settings
    children.start(
        "sandbox",
        _cli(
            "sandbox",
            "--port",
            str(_port(settings.exact_base_url)),
            "--webhook-secret",
            settings.secret("exact_webhook_secret"),
        ),
        env,
    )
    children.wait_http("sandbox", f"{stack.sandbox_url}/_sandbox/config")
    children.start("receiver", _cli("receiver", "--port", str(_port(settings.public_url))), env)
    children.wait_http("receiver", f"{stack.receiver_url}/readyz")
    concurrency = str(options.worker_concurrency)
    # One worker process per queue, as the Procfile runs them: a slow push target never holds up fetching.
    children.start("worker", _cli("worker", "--queues", EVENTS_QUEUE, "--concurrency", concurrency), env)
    children.start("pusher", _cli("worker", "--queues", DELIVERIES_QUEUE, "--concurrency", concurrency), env)
    children.start("beat", _cli("beat", "--schedule", str(workdir / "celerybeat-schedule")), env)
    console.print(
        f"started sandbox {stack.sandbox_url}, receiver {stack.receiver_url}, a worker, a pusher and beat "
        f"(logs in {children.log_dir})"
    )


def _connect(stack: DemoStack, console: Console) -> int:
    """The real OAuth flow: authorize (the sandbox approves at once), the redirect served here, the code exchanged."""
    oauth = oauth_from_settings(stack.settings)
    url, state = oauth.authorize_url()
    codes: list[str] = []
    listening = threading.Event()
    waiter = threading.Thread(
        target=lambda: codes.append(wait_for_code(oauth.redirect_uri or "", state, 30.0, listening)), daemon=True
    )
    waiter.start()
    if not listening.wait(10):
        raise RuntimeError(f"could not serve the redirect URI {oauth.redirect_uri}")
    stack.http.get(url, follow_redirects=True)
    waiter.join(timeout=35)
    if not codes:
        raise RuntimeError("the authorization code never reached the redirect URI")
    connection_id, user, divisions = finish_connect(stack.settings, oauth.exchange_code(codes[0]))
    console.print(f"connected as {user}; divisions {', '.join(map(str, divisions))}")
    return connection_id


def _register(stack: DemoStack, connection_id: int, console: Console) -> None:
    client = client_from_settings(stack.settings, stack.sessions, connection_id)
    service = SubscriptionService(
        stack.settings, stack.sessions, client, connection_id, sync_client(stack.settings.redis_url)
    )
    report = service.register(list(DIVISIONS), list(TOPICS))
    console.print(f"subscribed divisions {DIVISIONS} to {', '.join(TOPICS)} ({len(report.actions)} created in Exact)")


# -- the stream of changes
def _drive(
    stack: DemoStack, children: Children, options: DemoOptions, summary: DemoSummary, started: float, console: Console
) -> None:
    rng = random.Random(20261123)
    made: dict[tuple[int, str], list[str]] = {(d, t): [] for d in DIVISIONS for t in TOPICS}
    with Live(live_view(stack, summary, "stream"), console=console, refresh_per_second=4, transient=False) as live:

        def show(phase: str) -> None:
            children.check()
            measure(stack, summary)
            summary.seconds = round(time.monotonic() - started, 1)
            live.update(live_view(stack, summary, phase))

        _stream(stack, rng, made, options.changes, options.rate, summary, show, "stream")
        if options.burst:
            show(f"burst of {options.burst}")
            division, topic = BURST_PAIR
            path = _path(topic)
            stack.control("POST", f"records/{division}/{path}/bulk", json={"count": options.burst})
            summary.changes += options.burst
        show("writes through POST /commands")
        _write(stack, summary, options.timeout)
        await_level(stack, options.timeout, summary, show)
        while options.forever:
            _stream(stack, rng, made, 20, 2.0, summary, show, "running on (Ctrl-C stops)")
            await_level(stack, options.timeout, summary, show)
    console.print()


def _write(stack: DemoStack, summary: DemoSummary, timeout: float) -> None:
    """Two writes as a web shop would send them: one lands and is verified, one is refused before it is sent."""
    line = {"Item": "ITEM-001", "Quantity": 2, "UnitPrice": 12.5, "GLAccount": "8000", "VATCode": "2"}
    good = {
        "division": 101,
        "entity": "SalesInvoice",
        "action": "create",
        "fields": {"InvoiceTo": "1001", "Currency": "EUR", "YourRef": "demo order"},
        "lines": [line],
    }
    bad = {**good, "division": 202, "lines": [{**line, "VATCode": "1"}]}  # code 1 exists in 101 only
    headers = {"Authorization": f"Bearer {stack.settings.secret('commands_token')}"}
    keys = []
    for command in (good, bad):
        key = f"demo-{uuid.uuid4().hex[:12]}"
        stack.http.post(
            f"{stack.receiver_url}/commands", json={"key": key, **command}, headers=headers
        ).raise_for_status()
        keys.append(key)
    deadline = time.monotonic() + timeout
    states: dict[str, str] = {}
    while time.monotonic() < deadline and len(states) < len(keys):
        for key in keys:
            shown = stack.http.get(f"{stack.receiver_url}/commands/{key}", headers=headers).json()
            if shown["status"] not in (CommandState.QUEUED, CommandState.RUNNING):
                states[key] = shown["status"]
        time.sleep(0.2)
    summary.commands_succeeded = sum(1 for s in states.values() if s == CommandState.SUCCEEDED)
    summary.commands_refused = sum(1 for s in states.values() if s == CommandState.FAILED)


def _stream(
    stack: DemoStack,
    rng: random.Random,
    made: dict[tuple[int, str], list[str]],
    count: int,
    rate: float,
    summary: DemoSummary,
    show: Callable[[str], None],
    phase: str,
) -> None:
    last_shown = 0.0
    for n in range(count):
        division, topic = rng.choice(sorted(made))
        keys, path, roll = made[(division, topic)], _path(topic), rng.random()
        if keys and roll < 0.2:
            key = keys.pop(rng.randrange(len(keys)))
            stack.control("DELETE", f"records/{division}/{path}/{key}")
        elif keys and roll < 0.55:
            edit = {"Name": f"renamed {n}", "Email": f"u{n}@example.nl", "LastName": f"L{n}", "YourRef": f"r{n}"}
            stack.control("PUT", f"records/{division}/{path}/{rng.choice(keys)}", json=edit)
        else:
            entity = CATALOGUE.require(topic)
            fields: dict[str, object] = {
                "Name": f"Klant {n}",
                "FirstName": f"F{n}",
                "LastName": f"L{n}",
                "Description": f"order {n}",
                "YourRef": f"ref {n}",
                "Currency": "EUR",
            }
            if entity.lines is not None:  # a document: one line at least, or no sync resource shows it
                fields[entity.lines.name] = [{"Description": f"line {n}", "Quantity": 1 + n % 4, "UnitPrice": 9.95}]
            record = stack.control("POST", f"records/{division}/{path}", json=fields).json()["record"]
            keys.append(record[entity.key])
        summary.changes += 1
        time.sleep(1.0 / rate)
        if time.monotonic() - last_shown > 0.5:
            show(phase)
            last_shown = time.monotonic()


def _path(topic: str) -> str:
    return control_path(CATALOGUE.require(topic))
