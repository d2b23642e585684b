from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy.engine import Engine

from runtime.migrate import load_metadata


def test_migrations_match_the_models(engine: Engine) -> None:
    """The schema `alembic upgrade head` built equals what the models declare."""
    metadata = load_metadata()
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), metadata)
    # Tables that tests create on the fly are not part of the models.
    diff = [d for d in diff if "test_upsert" not in str(d)]
    assert diff == []
