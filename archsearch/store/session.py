"""Engine creation, schema migration and the one transaction scope every write goes through."""

from __future__ import annotations

import errno
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.exc import ArgumentError, NoSuchModuleError, OperationalError
from sqlalchemy.orm import Session, sessionmaker

from archsearch.errors import ArchsearchError, causes
from archsearch.options import DEFAULT_DB_URL

MIGRATIONS = Path(__file__).parent / "migrations"
VERSION_TABLE = "archsearch_alembic_version"  # Optuna's own migrations use alembic_version
_REFUSED_WRITES = {errno.ENOSPC, errno.EDQUOT, errno.EROFS}  # disk full, over quota, read-only


class DatabaseError(ArchsearchError):
    """The database URL is malformed or the database cannot be reached."""


class OutdatedSchema(DatabaseError):
    """A reading path met a database whose schema is not this package's newest revision."""


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
    for current in causes(exc):
        if isinstance(current, OperationalError):
            reason = str(current.orig) if current.orig is not None else str(current)
            return reason.strip().splitlines()[0] if reason.strip() else "the database failed"
        if isinstance(current, OSError) and current.errno in _REFUSED_WRITES:
            return f"{current.strerror}: {current.filename}" if current.filename else \
                str(current.strerror)
    return None


def create_db_engine(url: str) -> Engine:
    try:
        engine = create_engine(url, pool_pre_ping=True)
    except (ArgumentError, NoSuchModuleError, ValueError) as exc:
        raise DatabaseError(f"cannot use database URL '{url}': {exc}. Use e.g. "
                            f"{DEFAULT_DB_URL} or postgresql+psycopg://user@host/db.") \
            from None
    if engine.dialect.name == "sqlite":
        event.listen(engine, "connect", _sqlite_pragmas)
    return engine


# Alembic's commands keep their context in module globals (alembic.context, alembic.op), so two
# threads upgrading at once break each other (KeyError: 'config'): one upgrade at a time in a
# process, as when the API's worker threads each open a store.
_UPGRADING = threading.Lock()


def _unreachable(engine: Engine, exc: OperationalError) -> DatabaseError:
    reason = str(exc.orig).splitlines()[0] if exc.orig else str(exc)
    return DatabaseError(f"cannot open database {engine.url!r}: {reason}.")


def _alembic_config() -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    return config


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Bring the schema to ``revision`` with the migrations shipped in the package."""
    config = _alembic_config()
    try:
        with _UPGRADING, engine.begin() as connection:
            config.attributes["connection"] = connection
            command.upgrade(config, revision)
    except OperationalError as exc:
        raise _unreachable(engine, exc) from None


@contextmanager
def session_scope(factory: sessionmaker[Session]) -> Iterator[Session]:
    """Commit on success, roll back on any error, always close: all writes go through here."""
    session = factory()
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


def head_revision() -> str:
    """The newest schema revision shipped in this package."""
    return str(ScriptDirectory.from_config(_alembic_config()).get_current_head())


def schema_revision_of(target: Engine | str) -> str | None:
    """The archsearch schema revision of a database (an engine or a URL), read without
    changing anything; None when it has no archsearch schema yet."""
    engine = create_db_engine(target) if isinstance(target, str) else target
    try:
        with engine.connect() as connection:
            context = MigrationContext.configure(connection,
                                                 opts={"version_table": VERSION_TABLE})
            return context.get_current_revision()
    except OperationalError as exc:
        raise _unreachable(engine, exc) from None
    finally:
        if isinstance(target, str):
            engine.dispose()


def refuse_outdated(engine: Engine, revision: str) -> None:
    """Raise OutdatedSchema unless ``revision`` (the database's) is the newest shipped one."""
    head = head_revision()
    if revision == head:
        return
    url = engine.url.render_as_string(hide_password=True)
    known = {script.revision
             for script in ScriptDirectory.from_config(_alembic_config()).walk_revisions()}
    fix = (f"upgrade it with `archsearch db upgrade --db {url}` (a search also upgrades it), "
           "then run this again" if revision in known else
           "it was written by a newer archsearch: upgrade archsearch to read it")
    raise OutdatedSchema(f"database {url} has schema revision {revision}, and this archsearch "
                         f"reads revision {head}; this command does not change the database: "
                         f"{fix}.")
