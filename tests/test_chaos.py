"""Chaos in a real search: a Ray worker killed mid-trial (SIGKILL of the trial's actor process,
found in the driver's own process tree). Ray runs the trial again once, the retry is recorded on
the trial row, and a trial whose retry is killed too is stored failed with a readable error."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time

import pytest
import ray  # noqa: F401  (puts the psutil Ray ships on sys.path, where psutil is not installed)

pytestmark = pytest.mark.slow

# Trials of several seconds (no early stop), one at a time (each takes both CPUs of the
# embedded runtime), so that the test can kill a worker while it trains.
SLOW_SPACE = """version: 1
training: {lr: 1.0e-3, batch_size: 32, max_steps: 400, eval_every: 20, weight_decay: 0.0,
           patience: 100}
shared: {d_model: 16, dropout: 0.0, pooling: last}
families:
  gru: {n_layers: 1}
"""
TRAINABLE = "ray::ImplicitFunc"  # the title of the Ray actor process that runs a Tune trial


def trial_row(db_file, number: int) -> dict | None:
    if not db_file.exists():
        return None
    try:
        with sqlite3.connect(db_file) as conn:
            conn.row_factory = sqlite3.Row
            row = conn.execute("SELECT * FROM archsearch_trials WHERE number = ?",
                               (number,)).fetchone()
    except sqlite3.OperationalError:  # tables not created yet
        return None
    return None if row is None else dict(row)


def kill_the_trial_worker(driver, db_file, number: int, killed: set[int], retries: int,
                          deadline: float) -> None:
    """SIGKILL the worker training trial ``number`` (its attempt ``retries`` + 1), once that
    attempt has reported an epoch."""
    import psutil  # a dev dependency; Ray also ships it (ray/thirdparty_files, on sys.path)

    tree = psutil.Process(driver.pid)
    while time.monotonic() < deadline:
        assert driver.poll() is None, f"the driver ended early ({driver.returncode})"
        row = trial_row(db_file, number)
        workers = []
        for process in tree.children(recursive=True):
            try:
                if (" ".join(process.cmdline()).startswith(TRAINABLE)
                        and process.pid not in killed):
                    workers.append(process)
            except psutil.Error:
                continue
        if (row and row["status"] == "running" and row["retries"] == retries
                and row["epochs_run"] >= 1 and len(workers) == 1):
            killed.add(workers[0].pid)
            os.kill(workers[0].pid, signal.SIGKILL)
            return
        time.sleep(0.2)
    raise AssertionError(f"no worker of trial {number} to kill: {trial_row(db_file, number)}")


def test_a_killed_worker_costs_one_retry_recorded_on_the_trial(tmp_path):
    space = tmp_path / "slow.yaml"
    space.write_text(SLOW_SPACE)
    db_file = tmp_path / "chaos.db"
    driver = subprocess.Popen(
        [sys.executable, "-m", "archsearch", "search", "builtin:adding?length=12&n=120",
         "--space", str(space), "--budget-trials", "2", "--cpus-per-trial", "2",
         "--cv-folds", "0", "--db", f"sqlite:///{db_file}", "--report-dir", str(tmp_path),
         "--json"], cwd=tmp_path, stdout=open(tmp_path / "out.json", "wb"),
        stderr=open(tmp_path / "driver.log", "wb"))
    deadline = time.monotonic() + 480
    killed: set[int] = set()
    try:
        # Trial 0: killed, retried, killed again: Ray's one retry is spent.
        kill_the_trial_worker(driver, db_file, 0, killed, retries=0, deadline=deadline)
        kill_the_trial_worker(driver, db_file, 0, killed, retries=1, deadline=deadline)
        # Trial 1: killed once, then its retry completes.
        kill_the_trial_worker(driver, db_file, 1, killed, retries=0, deadline=deadline)
        assert driver.wait(max(1.0, deadline - time.monotonic())) == 0, \
            (tmp_path / "driver.log").read_text()[-3000:]
    finally:
        if driver.poll() is None:
            driver.kill()
            driver.wait()
    summary = json.loads((tmp_path / "out.json").read_text().strip().splitlines()[-1])
    assert summary["status"] == "completed" and summary["trials"] == {
        "completed": 1, "pruned": 0, "failed": 1, "infeasible": 0}
    first, second = trial_row(db_file, 0), trial_row(db_file, 1)
    assert first["status"] == "failed" and first["retries"] == 1
    assert first["error"] == ("its Ray worker process died before the trial finished (killed, "
                              "out of memory, or crashed) (on each of its 2 attempts; Ray's "
                              "retries are spent)")
    assert second["status"] == "completed" and second["retries"] == 1
    assert second["error"] is None and second["val_score"] is not None
