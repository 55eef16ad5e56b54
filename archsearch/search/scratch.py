"""Ray Tune's scratch folder for one run of a task's search: Tune's experiment state and its
copies of the trials' checkpoints (the checkpoints archsearch keeps are stored beside the
report). Ray-free, so its clean-up is tested without a runtime."""

from __future__ import annotations

import hashlib
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


def scratch_prefix(db_url: str | None, study_name: str) -> str:
    """The name every scratch folder of one task starts with: its study (one per task) and its
    database, hashed (a database URL may hold a password; two databases may both have a
    task 1)."""
    digest = hashlib.sha256(f"{db_url}\n{study_name}".encode()).hexdigest()[:16]
    return f"archsearch-tune-{digest}-"


@contextmanager
def tune_scratch(db_url: str | None, study_name: str) -> Iterator[str]:
    """A fresh scratch folder (absolute path) for this run of the task's search, removed at
    every end the driver lives through: done, failed, Ctrl-C, or SIGTERM (which Ray's driver
    turns into SystemExit). A driver killed with -9 cannot remove it, so each run first removes
    what earlier runs of the same task left: a run starts only once its driver holds the
    task's lease, so an earlier driver is dead, or fenced and stopping at its next write."""
    prefix = scratch_prefix(db_url, study_name)
    for stale in Path(tempfile.gettempdir()).glob(prefix + "*"):
        shutil.rmtree(stale, ignore_errors=True)
    with tempfile.TemporaryDirectory(prefix=prefix) as path:
        yield path
