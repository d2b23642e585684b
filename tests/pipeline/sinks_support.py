"""Several named push targets on one server (`/push/<name>`), each with its own secret, and the SINKS_FILE naming
them: what routing and echo tests run the pipeline against."""

from __future__ import annotations

import base64
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.routing import Route

from tests.conftest import ServerThread
from tests.pipeline.push_support import PushTarget


def secret_of(name: str) -> str:
    return "whsec_" + base64.b64encode(f"sink-{name}-secret-0123456789".encode()).decode()


@contextmanager
def serve_targets(names: Iterable[str]) -> Iterator[tuple[ServerThread, dict[str, PushTarget]]]:
    """One verifying `PushTarget` per name, at `<url>/push/<name>`, each checking its own sink's secret."""
    targets = {name: PushTarget(secret=secret_of(name)) for name in names}
    routes = [Route(f"/push/{name}", target.endpoint, methods=["POST"]) for name, target in targets.items()]
    with ServerThread(Starlette(routes=routes)) as server:
        yield server, targets


def write_sinks_file(path: Path, url: str, routes: Mapping[str, Mapping[str, Any]]) -> Path:
    """A SINKS_FILE with one sink per name of `routes`, posting to its target; each value holds its `topics`,
    `divisions` and `suppress_echo`."""
    lines: list[str] = []
    for name, route in routes.items():
        lines += [f"[sinks.{name}]", f'url = "{url}/push/{name}"', f'secret = "{secret_of(name)}"']
        if "topics" in route:
            lines.append("topics = [" + ", ".join(f'"{t}"' for t in route["topics"]) + "]")
        if "divisions" in route:
            lines.append("divisions = [" + ", ".join(str(d) for d in route["divisions"]) + "]")
        if route.get("suppress_echo"):
            lines.append("suppress_echo = true")
        lines.append("")
    path.write_text("\n".join(lines), encoding="utf-8")
    return path


def origins(target: PushTarget, division: int, topic: str, key: str) -> list[dict[str, Any] | None]:
    """`data.origin` of each push the target took for one record, in arrival order."""
    return [a.payload["data"].get("origin") for a in target.lanes().get((division, topic, key), [])]
