"""A real, throwaway PostgreSQL server for tests: initdb + pg_ctl on a temp dir and a free
loopback port. PostgreSQL refuses to run as root, so as root the server runs as ``postgres``."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _find(binary: str) -> str:
    found = shutil.which(binary)
    if found:
        return found
    for candidate in sorted(Path("/usr/lib/postgresql").glob(f"*/bin/{binary}"), reverse=True):
        return str(candidate)
    raise RuntimeError(f"PostgreSQL's {binary} is not installed; run scripts/test.sh, which "
                       "installs it (apt-get install postgresql).")


def _as_server_user(cmd: list[str]) -> list[str]:
    return ["runuser", "-u", "postgres", "--", *cmd] if os.geteuid() == 0 else cmd


@contextmanager
def postgres_server() -> Iterator[str]:
    """Yield a SQLAlchemy URL to a fresh database; stop and delete the server afterwards."""
    root = Path(tempfile.mkdtemp(prefix="archsearch-pg-"))
    data = root / "data"
    if os.geteuid() == 0:
        shutil.chown(root, "postgres", "postgres")
    port = _free_port()
    subprocess.run(_as_server_user([_find("initdb"), "-D", str(data), "-A", "trust", "-U",
                                    "postgres", "--no-sync"]),
                   check=True, capture_output=True)
    subprocess.run(_as_server_user([
        _find("pg_ctl"), "-D", str(data), "-l", str(root / "server.log"), "-w", "-o",
        f"-p {port} -k {root} -c listen_addresses=127.0.0.1 -c fsync=off "
        "-c max_connections=100", "start",
    ]), check=True, capture_output=True)
    try:
        subprocess.run(_as_server_user([_find("createdb"), "-h", "127.0.0.1", "-p", str(port),
                                        "-U", "postgres", "archsearch"]),
                       check=True, capture_output=True)
        yield f"postgresql+psycopg://postgres@127.0.0.1:{port}/archsearch"
    finally:
        subprocess.run(_as_server_user([_find("pg_ctl"), "-D", str(data), "-m", "immediate",
                                        "stop"]), capture_output=True)
        shutil.rmtree(root, ignore_errors=True)
