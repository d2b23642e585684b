"""A push target that hangs holds up only the pushes: fetching levels the mirror with the workers the Procfile runs."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

from runtime.settings import Settings
from tests.pipeline.harness import Pipeline
from tests.pipeline.push_support import await_true
from tests.pipeline.target_support import hanging_target

PROCFILE = Path(__file__).resolve().parents[2] / "Procfile"


def procfile_workers(settings: Settings, log: Path) -> subprocess.Popen[bytes]:
    """honcho running the Procfile's Celery workers, one child each: every process but `web` (the fixture serves
    the receiver) and `beat`."""
    names = [line.partition(":")[0] for line in PROCFILE.read_text().splitlines() if line.strip()]
    env = settings.child_environment(os.environ)
    env.update(WORKER_CONCURRENCY="1", PUSHER_CONCURRENCY="1")
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    honcho = [str(Path(sys.executable).parent / "honcho"), "start", "-f", str(PROCFILE), "-d", str(log.parent)]
    with log.open("wb") as out:
        return subprocess.Popen(
            [*honcho, *(n for n in names if n not in ("web", "beat"))],
            env=env,
            cwd=log.parent,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def stop(honcho: subprocess.Popen[bytes]) -> None:
    honcho.send_signal(signal.SIGINT)  # honcho stops every process it started, each in its own group
    try:
        honcho.wait(timeout=60)
    except subprocess.TimeoutExpired:
        os.killpg(honcho.pid, signal.SIGKILL)
        honcho.wait(timeout=10)


def test_a_hanging_push_target_does_not_hold_up_fetching(pipeline: Pipeline, tmp_path: Path) -> None:
    pipeline.service.register([101], ["Contacts"])
    log = tmp_path / "honcho.log"
    with hanging_target() as hanging:
        # The POST waits far longer than the test does: a worker busy with it is busy for good.
        settings = pipeline.settings.model_copy(update={"push_url": hanging.url, "push_timeout_seconds": 600.0})
        honcho = procfile_workers(settings, log)
        try:
            pipeline.control("POST", "records/101/crm/Contacts", json={"LastName": "first"})
            await_true(
                lambda: hanging.connections >= 1,
                timeout=90,
                what="a push to the hanging target",
                detail=lambda: log.read_text(errors="replace")[-3000:],
            )
            # The pusher is now stuck in a POST; changes made now must still reach the mirror.
            for n in range(3):
                pipeline.control("POST", "records/101/crm/Contacts", json={"LastName": f"later {n}"})
            pipeline.await_level([(101, "Contacts")], push=False, timeout=60)
        except BaseException:
            stop(honcho)
            raise
    stop(honcho)  # after the target closed its connections: the stuck POSTs end, and the workers with them
    assert "pusher.1" in log.read_text(errors="replace")
