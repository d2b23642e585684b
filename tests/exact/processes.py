"""Entry points run in separate processes by the client's concurrency tests (spawned, so nothing is shared)."""

from __future__ import annotations

import json
import sys
import time

from runtime.db import make_engine, make_session_factory
from runtime.settings import Settings


def _client(settings_json: str, connection_id: int):  # type: ignore[no-untyped-def]
    from connections.factory import client_from_settings

    settings = Settings(_env_file=None, **json.loads(settings_json))  # type: ignore[call-arg]
    sessions = make_session_factory(make_engine(settings.database_url))
    return client_from_settings(settings, sessions, connection_id)


def refresh_race(settings_json: str, connection_id: int, start_at: float) -> None:
    """Wait for the common start, then make one call that needs a refreshed token."""
    client = _client(settings_json, connection_id)
    time.sleep(max(0.0, start_at - time.time()))
    me = client.me()
    sys.stdout.write(json.dumps({"ok": me["CurrentDivision"] == 101}))


def burst(settings_json: str, connection_id: int, count: int) -> None:
    from exact import Query

    client = _client(settings_json, connection_id)
    for _ in range(count):
        client.get(101, "crm/Contacts", Query(top=1, select=["ID"]))
    sys.stdout.write(json.dumps({"ok": True}))


if __name__ == "__main__":
    name, connection_id, arg = sys.argv[1], int(sys.argv[3]), float(sys.argv[4])
    with open(sys.argv[2]) as settings_file:
        settings_json = settings_file.read()
    {"refresh_race": refresh_race, "burst": lambda s, c, a: burst(s, c, int(a))}[name](
        settings_json, connection_id, arg
    )
