"""The demo, run as a user runs it: a real `exact-pipeline demo` process and every child it starts."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from runtime.serving import free_port
from tests.conftest import REDIS_URL


@pytest.fixture
def run(tmp_path: Path) -> Iterator[Callable[..., subprocess.Popen[bytes]]]:
    """Starts `exact-pipeline demo`; whatever the test's outcome, nothing it started outlives the test."""
    started: list[subprocess.Popen[bytes]] = []

    def start(*args: str, redis_url: str) -> subprocess.Popen[bytes]:
        env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
        env["REDIS_URL"] = redis_url
        argv = [sys.executable, "-m", "cli.main", "demo", "--workdir", str(tmp_path / "demo"), *args]
        demo = subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)
        started.append(demo)
        return demo

    yield start
    pids = _children(tmp_path) if (tmp_path / "demo" / "logs" / "pids.json").exists() else {}
    for pid in [*(d.pid for d in started), *pids.values()]:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, signal.SIGKILL)
    for demo in started:
        demo.wait(timeout=10)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie of a dead group is gone for our purpose.
    return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"


def _mirrored(tmp_path: Path) -> int:
    """Records in the demo's SQLite mirror so far (0 before the database or its table exists)."""
    try:
        with contextlib.closing(
            sqlite3.connect(f"file:{tmp_path / 'demo' / 'demo.db'}?mode=ro", uri=True, timeout=5)
        ) as db:
            return int(db.execute("SELECT count(*) FROM mirror_records").fetchone()[0])
    except sqlite3.OperationalError:
        return 0


def _children(tmp_path: Path) -> dict[str, int]:
    return dict(json.loads((tmp_path / "demo" / "logs" / "pids.json").read_text()))


@pytest.mark.slow
def test_a_short_demo_delivers_every_change_on_a_private_redis(
    tmp_path: Path, run: Callable[..., subprocess.Popen[bytes]]
) -> None:
    # Nothing answers on this port, so the demo starts its own redis-server (and must stop it after).
    summary_path = tmp_path / "summary.json"
    demo = run(
        "--changes",
        "40",
        "--burst",
        "150",
        "--rate",
        "40",
        "--timeout",
        "180",
        "--summary-json",
        str(summary_path),
        redis_url=f"redis://127.0.0.1:{free_port()}/0",
    )
    output, _ = demo.communicate(timeout=280)
    text = output.decode(errors="replace")
    assert demo.returncode == 0, text
    assert "every change delivered" in text
    summary = json.loads(summary_path.read_text())
    assert summary["level"] is True
    assert summary["changes"] == 190
    assert summary["webhooks_received"] >= 190
    assert summary["dead_letters"] == summary["rate_limited"] == 0
    assert summary["signatures_rejected"] == summary["out_of_order"] == 0
    assert (summary["commands_succeeded"], summary["commands_refused"]) == (1, 1)
    assert summary["pushes_received"] >= summary["deliveries_delivered"] > 0
    # The burst of 150 is coalesced: far fewer Exact calls than changes.
    assert summary["calls_per_change"] < 0.5
    children = _children(tmp_path)
    assert set(children) == {"redis", "sandbox", "receiver", "worker", "pusher", "beat"}
    assert not [name for name, pid in children.items() if _alive(pid)]


@pytest.mark.slow
def test_ctrl_c_stops_every_child(tmp_path: Path, run: Callable[..., subprocess.Popen[bytes]]) -> None:
    demo = run("--changes", "10", "--burst", "0", "--forever", redis_url=REDIS_URL)
    deadline = time.monotonic() + 120
    # Interrupt it mid-stream: once its worker has put the first records into the mirror.
    while _mirrored(tmp_path) == 0:
        assert demo.poll() is None, demo.communicate()[0].decode(errors="replace")
        assert time.monotonic() < deadline, "the demo never mirrored a record"
        time.sleep(0.2)
    demo.send_signal(signal.SIGINT)
    output, _ = demo.communicate(timeout=60)
    assert "stopped" in output.decode(errors="replace")
    children = _children(tmp_path)
    assert set(children) == {"sandbox", "receiver", "worker", "pusher", "beat"}  # the shared Redis answered
    assert not [name for name, pid in children.items() if _alive(pid)]
