"""The `exact-pipeline` command: one typer app that mounts every package's commands."""

from __future__ import annotations

import sys

import typer
from rich.console import Console

from runtime.settings import MissingSetting, get_settings

app = typer.Typer(help="Keep business systems in sync with Exact Online.", no_args_is_help=True)
db_app = typer.Typer(help="Database schema.", no_args_is_help=True)
app.add_typer(db_app, name="db")

err = Console(stderr=True)


@db_app.command("upgrade")
def db_upgrade(revision: str = typer.Argument("head", help="Alembic revision to upgrade to.")) -> None:
    """Create or migrate the schema at DATABASE_URL."""
    from runtime.migrate import upgrade

    settings = get_settings()
    upgrade(settings.database_url, revision)
    typer.echo(f"database at {_safe_url(settings.database_url)} is at {revision}")


def _safe_url(url: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)


def _mount() -> None:
    from cli.topics import topics
    from commands.cli import write
    from commands.clients_cli import app as clients_app
    from connections.cli import connect, divisions
    from connections.keys import rotate_key
    from console.cli import console
    from delivery.cli import deadletters_app, push_app, records_app
    from ops.cli import demo, status, trace
    from receiver.cli import receiver
    from sandbox.cli import sandbox
    from schema.cli import app as schema_app
    from subscriptions.cli import app as subscriptions_app
    from sync.cli import sync
    from workers.cli import beat, worker

    app.command("sandbox")(sandbox)
    app.command("connect")(connect)
    app.command("divisions")(divisions)
    app.command("rotate-key")(rotate_key)
    app.command("receiver")(receiver)
    app.add_typer(subscriptions_app, name="subscriptions")
    app.command("topics")(topics)
    app.add_typer(schema_app, name="schema")
    app.command("sync")(sync)
    app.command("worker")(worker)
    app.command("beat")(beat)
    app.add_typer(records_app, name="records")
    app.add_typer(deadletters_app, name="deadletters")
    app.add_typer(push_app, name="push")
    app.command("demo")(demo)
    app.command("status")(status)
    app.command("console")(console)
    app.command("trace")(trace)
    app.command("write")(write)
    app.add_typer(clients_app, name="clients")


def main() -> None:
    _mount()
    try:
        app()
    except MissingSetting as exc:
        err.print(f"[red]error:[/red] {exc}")
        sys.exit(2)


if __name__ == "__main__":
    main()
