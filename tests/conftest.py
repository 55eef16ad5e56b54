from __future__ import annotations

import pytest

from archsearch.data import load_dataset, prepare
from tests.postgres import postgres_server


def pytest_configure(config: pytest.Config) -> None:
    """On a fresh machine the first local Ray runtime writes ~/.ray/auth_token; under
    pytest-xdist two workers' first runtimes would each write one, the second overwriting the
    token the first's cluster runs with. The controller writes it once, before the workers
    start, with Ray's own generator."""
    if hasattr(config, "workerinput"):  # an xdist worker: the controller has done it
        return
    try:
        from ray._private.authentication.authentication_token_setup import (
            _get_default_token_path,
            generate_and_save_token,
        )
    except ImportError:  # a Ray release without token auth
        return
    if not _get_default_token_path().exists():
        generate_and_save_token()


@pytest.fixture(scope="session")
def postgres_url():
    with postgres_server() as url:
        yield url


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request, tmp_path):
    """The same store contract runs against SQLite and a real PostgreSQL server."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'store.db'}"
    url = request.getfixturevalue("postgres_url")
    # A fresh schema per test: drop everything the previous test created.
    from sqlalchemy import create_engine, text

    engine = create_engine(url)
    with engine.begin() as conn:
        conn.execute(text("DROP SCHEMA public CASCADE; CREATE SCHEMA public;"))
    engine.dispose()
    return url


@pytest.fixture(scope="session")
def tiny_data():
    """A tiny adding problem: fast enough for real training in unit tests."""
    return prepare(load_dataset("builtin:adding?length=12&n=120"), seed=0)
