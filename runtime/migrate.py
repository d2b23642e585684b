"""Alembic migrations, run programmatically so they work from an installed package."""

from __future__ import annotations

import importlib
from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import MetaData

__all__ = ["MODEL_MODULES", "alembic_config", "load_metadata", "upgrade"]

# Every module that declares tables; migrations and tests see them all through this list.
MODEL_MODULES = (
    "connections.models",
    "commands.models",
    "subscriptions.models",
    "delivery.models",
    "delivery.history",
    "sync.cursors",
    "schema.store",
)


def load_metadata() -> MetaData:
    from runtime.db import Base

    for name in MODEL_MODULES:
        try:
            importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name != name:
                raise
    return Base.metadata


def alembic_config(database_url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(Path(__file__).parent / "migrations"))
    config.set_main_option("sqlalchemy.url", database_url.replace("%", "%%"))
    config.set_main_option("file_template", "%%(year)d%%(month).2d%%(day).2d_%%(rev)s_%%(slug)s")
    return config


def upgrade(database_url: str, revision: str = "head") -> None:
    command.upgrade(alembic_config(database_url), revision)
