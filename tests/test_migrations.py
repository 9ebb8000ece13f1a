"""Migrations create exactly the schema the models describe, on SQLite and PostgreSQL."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlmodel import SQLModel

from imap2api.db import get_engine, include_object, pending_migrations


def test_models_and_migrations_agree(database) -> None:
    assert pending_migrations() == []
    with get_engine().connect() as connection:
        context = MigrationContext.configure(
            connection, opts={"include_object": include_object, "compare_type": False}
        )
        diff = compare_metadata(context, SQLModel.metadata)
    assert diff == []
