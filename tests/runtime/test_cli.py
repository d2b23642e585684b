from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import create_engine, inspect

BIN = Path(sys.executable).parent / "exact-pipeline"


def run_cli(*args: str, env: dict[str, str] | None = None, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(BIN), *args], capture_output=True, text=True, env=env, cwd=cwd, timeout=120)


class TestCli:
    def test_help_lists_the_commands(self) -> None:
        result = run_cli("--help")
        assert result.returncode == 0, result.stderr
        for command in ("db", "sandbox", "connect", "divisions", "receiver", "subscriptions"):
            assert command in result.stdout

    def test_db_upgrade_creates_the_schema(self, tmp_path: Path) -> None:
        url = f"sqlite:///{tmp_path / 'cli.db'}"
        result = run_cli("db", "upgrade", env={"DATABASE_URL": url, "PATH": "/usr/bin:/bin"}, cwd=tmp_path)
        assert result.returncode == 0, result.stderr
        tables = set(inspect(create_engine(url)).get_table_names())
        assert {"alembic_version", "connections", "divisions", "subscriptions"} <= tables

    def test_embedded_default_is_sqlite_in_the_working_directory(self, tmp_path: Path) -> None:
        result = run_cli("db", "upgrade", env={"PATH": "/usr/bin:/bin"}, cwd=tmp_path)
        assert result.returncode == 0, result.stderr
        assert (tmp_path / "exact-pipeline.db").exists()


@pytest.mark.parametrize("flag", ["--help"])
def test_sandbox_command_is_documented(flag: str) -> None:
    result = run_cli("sandbox", flag)
    assert result.returncode == 0, result.stderr
    assert "--port" in result.stdout


def test_sandbox_command_serves_exact_online() -> None:
    import time

    import httpx

    from tests.conftest import free_port

    port = free_port()
    process = subprocess.Popen(
        [str(BIN), "sandbox", "--port", str(port)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                response = httpx.get(
                    f"http://127.0.0.1:{port}/api/v1/current/Me", headers={"Accept": "application/json"}
                )
                break
            except httpx.TransportError:
                assert process.poll() is None, process.stdout.read() if process.stdout else b""
                assert time.monotonic() < deadline, "the sandbox did not start"
                time.sleep(0.1)
        assert response.status_code == 401  # it answers like Exact: no token, no data
        assert response.json()["error"]["message"]["value"] == "Unauthorized"
    finally:
        process.terminate()
        process.wait(timeout=10)
