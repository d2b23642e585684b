"""Child processes the demo starts, each in its own process group, and stops (all of them) whatever happens.

with Children(log_dir) as children:
    children.start("sandbox", ["exact-pipeline", "sandbox", "--port", "8001"], env)
    children.wait_http("sandbox", "http://127.0.0.1:8001/_sandbox/config")
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import redis

from runtime.serving import free_port

__all__ = ["ChildFailed", "Children", "private_redis"]


class ChildFailed(RuntimeError):
    """A child exited or never became ready; the message names it and ends with its log."""


@dataclass
class Children:
    log_dir: Path
    procs: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)

    def __enter__(self) -> Children:
        self.log_dir.mkdir(parents=True, exist_ok=True)
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop_all()

    def start(self, name: str, argv: list[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
        log = (self.log_dir / f"{name}.log").open("ab")
        # A group of its own: Ctrl-C reaches the demo alone, which then stops each child in order.
        proc = subprocess.Popen(argv, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        log.close()
        self.procs[name] = proc
        # For operators and tests: which processes to look for if the demo itself was killed.
        pids = {n: p.pid for n, p in self.procs.items()}
        (self.log_dir / "pids.json").write_text(json.dumps(pids))
        return proc

    def log_tail(self, name: str, lines: int = 20) -> str:
        path = self.log_dir / f"{name}.log"
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:]) if path.exists() else ""

    def check(self) -> None:
        """Raise if any child has exited."""
        for name, proc in self.procs.items():
            if proc.poll() is not None:
                raise ChildFailed(f"{name} exited with {proc.returncode}:\n{self.log_tail(name)}")

    def wait_http(self, name: str, url: str, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while True:
            self.check()
            try:
                if httpx.get(url, timeout=2.0).status_code < 500:
                    return
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise ChildFailed(f"{name} did not answer at {url} within {timeout:.0f}s:\n{self.log_tail(name)}")
            time.sleep(0.1)

    def stop_all(self, grace: float = 15.0) -> None:
        """SIGTERM every group (last started first), then SIGKILL what is still there after `grace` seconds."""
        for proc in reversed(list(self.procs.values())):
            _signal(proc, signal.SIGTERM)
        deadline = time.monotonic() + grace
        for proc in self.procs.values():
            try:
                proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                _signal(proc, signal.SIGKILL)
                proc.wait(timeout=5)
        self.procs.clear()


def _signal(proc: subprocess.Popen[bytes], sig: signal.Signals) -> None:
    if proc.poll() is None:
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            pass


def answers(url: str) -> bool:
    client = redis.Redis.from_url(url, socket_connect_timeout=1.0)
    try:
        return bool(client.ping())
    except redis.RedisError:
        return False
    finally:
        client.close()


def private_redis(children: Children, url: str) -> str:
    """`url` when a Redis answers there; else a private `redis-server` on a free port (stopped with the children)."""
    if answers(url):
        return url
    binary = shutil.which("redis-server")
    if binary is None:
        raise ChildFailed(f"no Redis answers at {url} and there is no redis-server on the PATH to start one")
    port = free_port()
    argv = [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
    children.start("redis", argv, dict(os.environ))
    private = f"redis://127.0.0.1:{port}/0"
    deadline = time.monotonic() + 10
    while not answers(private):
        children.check()
        if time.monotonic() > deadline:
            raise ChildFailed(f"the private redis-server did not answer:\n{children.log_tail('redis')}")
        time.sleep(0.05)
    return private
