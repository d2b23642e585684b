"""Procfile and docker-compose.yml only run commands that exist, and compose has the stack the README describes.

Each queue has a worker process of its own in both, so a slow push target never holds up fetching.
"""

from __future__ import annotations

import shlex
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from runtime.contracts import DELIVERIES_QUEUE, EVENTS_QUEUE

ROOT = Path(__file__).resolve().parents[2]
GROUPS = {"db", "subscriptions", "records", "deadletters"}


def _procfile() -> dict[str, list[str]]:
    lines = (ROOT / "Procfile").read_text().splitlines()
    return {name: shlex.split(command) for name, _, command in (line.partition(": ") for line in lines if line)}


def _compose() -> dict[str, dict[str, object]]:
    return dict(yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"])


def _queues(argv: list[str]) -> str | None:
    return argv[argv.index("--queues") + 1] if "--queues" in argv else None


def test_procfile_has_web_worker_pusher_and_beat() -> None:
    procfile = _procfile()
    assert set(procfile) == {"web", "worker", "pusher", "beat"}
    assert (_queues(procfile["worker"]), _queues(procfile["pusher"])) == (EVENTS_QUEUE, DELIVERIES_QUEUE)


def test_compose_has_the_whole_stack() -> None:
    services = _compose()
    assert {"postgres", "redis", "migrate", "receiver", "worker", "pusher", "beat"} <= set(services)
    for name in ("receiver", "worker", "pusher", "beat"):
        assert services[name]["env_file"], name
    queues = {name: _queues(list(services[name]["command"])) for name in ("worker", "pusher")}  # type: ignore[call-overload]
    assert queues == {"worker": EVENTS_QUEUE, "pusher": DELIVERIES_QUEUE}


def _subcommand(argv: list[str]) -> list[str]:
    assert argv[0] == "exact-pipeline", argv
    # A group takes its subcommand as the second word (`db upgrade`); options are left to the command itself.
    return argv[1:3] if argv[1] in GROUPS else argv[1:2]


@pytest.mark.parametrize(
    "argv",
    [
        *_procfile().values(),
        *(list(s["command"]) for s in _compose().values() if "command" in s and s["command"][0] == "exact-pipeline"),
    ],  # type: ignore[index]
)
def test_every_command_exists(argv: list[str]) -> None:
    words = _subcommand(argv)
    result = subprocess.run([sys.executable, "-m", "cli.main", *words, "--help"], capture_output=True, timeout=60)
    assert result.returncode == 0, result.stderr.decode()
