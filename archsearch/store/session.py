"""Engine creation, schema migration and the one transaction scope every write goes through."""

from __future__ import annotations

import errno
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.exc import ArgumentError, NoSuchModuleError, OperationalError, SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from archsearch.errors import ArchsearchError

MIGRATIONS = Path(__file__).parent / "migrations"
_REFUSED_WRITES = {errno.ENOSPC, errno.EDQUOT, errno.EROFS}  # disk full, over quota, read-only


class DatabaseError(ArchsearchError):
    """The database URL is malformed or the database cannot be reached."""


def _sqlite_pragmas(dbapi_connection, _record) -> None:  # noqa: ANN001
    # WAL lets readers run beside one writer; busy_timeout makes concurrent writers wait for the
    # lock instead of failing with "database is locked".
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def write_failure(exc: BaseException) -> str | None:
    """What was refused, when ``exc`` or an error it was raised from (Ray Tune re-raises the
    errors of its callbacks as a TuneError) is a write the database or the disk refused: a full
    disk, a read-only file system, a database gone. None for any other error."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, OperationalError):
            reason = str(current.orig) if current.orig is not None else str(current)
            return reason.strip().splitlines()[0] if reason.strip() else "the database failed"
        if isinstance(current, OSError) and current.errno in _REFUSED_WRITES:
            return f"{current.strerror}: {current.filename}" if current.filename else \
                str(current.strerror)
        current = current.__cause__ or current.__context__
    return None


def create_db_engine(url: str) -> Engine:
    try:
        engine = create_engine(url, pool_pre_ping=True)
    except (ArgumentError, NoSuchModuleError, ValueError) as exc:
        raise DatabaseError(f"cannot use database URL '{url}': {exc}. Use e.g. "
                            "sqlite:///archsearch.db or postgresql+psycopg://user@host/db.") \
            from None
    if engine.dialect.name == "sqlite":
        event.listen(engine, "connect", _sqlite_pragmas)
    return engine


# Alembic's commands keep their context in module globals (alembic.context, alembic.op), so two
# threads upgrading at once break each other (KeyError: 'config'): one upgrade at a time in a
# process, as when the API's worker threads each open a store.
_UPGRADING = threading.Lock()


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Bring the schema to ``revision`` with the migrations shipped in the package."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    try:
        with _UPGRADING, engine.begin() as connection:
            config.attributes["connection"] = connection
            command.upgrade(config, revision)
    except OperationalError as exc:
        reason = str(exc.orig).splitlines()[0] if exc.orig else str(exc)
        raise DatabaseError(f"cannot open database {engine.url!r}: {reason}.") from None


@contextmanager
def session_scope(factory: sessionmaker[Session]) -> Iterator[Session]:
    """Commit on success, roll back on any error, always close: all writes go through here."""
    session = factory()
    try:
        yield session
        session.commit()
    except SQLAlchemyError:
        session.rollback()
        raise
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()
