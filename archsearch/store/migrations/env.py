"""Alembic environment: run against the connection archsearch hands in (see store/session.py)."""

from alembic import context

from archsearch.store.models import Base
from archsearch.store.session import VERSION_TABLE

connection = context.config.attributes["connection"]
context.configure(connection=connection, target_metadata=Base.metadata,
                  version_table=VERSION_TABLE, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()
