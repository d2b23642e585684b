"""Real services for every test run: a private Redis key prefix, a fresh database, a sandbox over HTTP."""

from __future__ import annotations

import os
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import redis
from cryptography.fernet import Fernet
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

from runtime.db import make_engine, make_session_factory
from runtime.migrate import upgrade
from runtime.redis import clear_prefix
from runtime.serving import ServerThread, free_port
from runtime.settings import Settings
from sandbox.config import SandboxConfig

__all__ = ["PG_URL", "REDIS_URL", "RUN_ID", "ServerThread", "free_port"]

# A sandbox connection made through the real OAuth flow, and the whole pipeline (sandbox, receiver, a real worker,
# a push target), for every test directory that needs them.
pytest_plugins = ["tests.pipeline.connected", "tests.pipeline.harness"]

RUN_ID = uuid.uuid4().hex[:10]
REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
PG_URL = os.environ.get("DATABASE_URL", "")


# Folders whose tests reach a database only through the `database_url` fixture: the sandbox imports nothing of the
# project, and the client library has no ORM. Their other tests run the same on any database.
_DATABASE_FREE_FOLDERS = ("sandbox", "exact")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Slow scenarios first, so each xdist process starts one while the short tests fill the others (collected last,
    they were the run's tail). When `scripts/test` runs both passes (`TEST_PASSES=both`), the tests that cannot meet
    a database are dealt out between the passes, file by file, so each runs once: running them on both databases
    proves nothing (`TEST_EVERY_PASS=1` runs them in both)."""
    items.sort(key=lambda item: item.get_closest_marker("slow") is None)  # stable: the order within stays
    if os.environ.get("TEST_PASSES") != "both" or os.environ.get("TEST_EVERY_PASS") == "1":
        return
    tests = Path(__file__).parent
    counts = Counter(str(item.path) for item in items if _database_free(item, tests))
    sides: tuple[list[str], list[str]] = ([], [])
    for path, _ in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])):  # larger files first, to the lighter side
        min(sides, key=lambda side: sum(counts[p] for p in side)).append(path)
    theirs = set(sides[0 if PG_URL.startswith("postgresql") else 1])
    left_out = [item for item in items if str(item.path) in theirs and _database_free(item, tests)]
    if left_out:
        config.hook.pytest_deselected(items=left_out)
        dropped = set(left_out)
        items[:] = [item for item in items if item not in dropped]


def _database_free(item: pytest.Item, tests: Path) -> bool:
    """A test of a folder that reaches a database only through the `database_url` fixture, without that fixture."""
    folder = item.path.relative_to(tests).parts[0]
    return folder in _DATABASE_FREE_FOLDERS and "database_url" not in getattr(item, "fixturenames", ())


@pytest.fixture(scope="session")
def redis_prefix() -> Iterator[str]:
    """Every Redis key of this run lives under this prefix and is deleted at the end."""
    prefix = f"ep-test-{RUN_ID}:"
    client = redis.Redis.from_url(REDIS_URL)
    try:
        client.ping()
    except redis.ConnectionError as exc:
        pytest.exit(f"Redis is not answering at {REDIS_URL}: run ../shared/services ({exc})", returncode=3)
    yield prefix
    clear_prefix(client, prefix)
    client.close()


@pytest.fixture
def redis_client(redis_prefix: str) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(REDIS_URL)
    yield client
    client.close()


@pytest.fixture(scope="session")
def database_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A fresh, migrated database for this run: PostgreSQL when DATABASE_URL is set, else SQLite."""
    if PG_URL.startswith("postgresql"):
        name = f"ep_test_{RUN_ID}"
        admin = create_engine(make_url(PG_URL).set(database="postgres"), isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        url = make_url(PG_URL).set(database=name).render_as_string(hide_password=False)
        upgrade(url)
        yield url
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()
    else:
        path = Path(tmp_path_factory.mktemp("db")) / "test.db"
        url = f"sqlite:///{path}"
        upgrade(url)
        yield url


@pytest.fixture(scope="session")
def engine(database_url: str):  # type: ignore[no-untyped-def]
    engine = make_engine(database_url)
    yield engine
    engine.dispose()


@pytest.fixture(scope="session")
def session_factory(engine) -> sessionmaker[Session]:  # type: ignore[no-untyped-def]
    return make_session_factory(engine)


@pytest.fixture
def session(session_factory: sessionmaker[Session]) -> Iterator[Session]:
    with session_factory() as s:
        yield s


@pytest.fixture(scope="session")
def encryption_key() -> str:
    return Fernet.generate_key().decode()


@pytest.fixture
def settings(database_url: str, redis_prefix: str, encryption_key: str) -> Settings:
    return make_settings(database_url, redis_prefix, encryption_key)


def make_settings(database_url: str, redis_prefix: str, encryption_key: str) -> Settings:
    """Settings for this run, under a Redis prefix of their own; built from values, never from the machine's
    environment or .env."""
    test_prefix = f"{redis_prefix}{uuid.uuid4().hex[:6]}:"
    return Settings(
        _env_file=None,  # type: ignore[call-arg]
        database_url=database_url,
        redis_url=REDIS_URL,
        redis_prefix=test_prefix,
        exact_client_id=SandboxConfig.client_id,
        exact_client_secret=SandboxConfig.client_secret,  # type: ignore[arg-type]
        exact_redirect_uri="http://127.0.0.1:8765/callback",
        exact_webhook_secret=SandboxConfig.webhook_secret,  # type: ignore[arg-type]
        token_encryption_key=encryption_key,  # type: ignore[arg-type]
    )


@pytest.fixture
def sandbox_config() -> SandboxConfig:
    """Override in a test module to change sandbox limits."""
    return SandboxConfig()


@pytest.fixture
def sandbox(sandbox_config: SandboxConfig) -> Iterator[ServerThread]:
    """A fresh Exact Online emulator on a real port; `sandbox.url` is its base URL, `sandbox.state` its state."""
    from sandbox.app import create_sandbox_app

    app = create_sandbox_app(sandbox_config)
    with ServerThread(app) as server:
        server.state = app.state.sandbox  # type: ignore[attr-defined]
        yield server


@pytest.fixture
def sandbox_http(sandbox: ServerThread) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=sandbox.url, timeout=10) as client:
        yield client
