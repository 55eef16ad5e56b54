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
from contextlib import contextmanager

import pytest
import ray  # noqa: F401  (puts the psutil Ray ships on sys.path, where psutil is not installed)

pytestmark = pytest.mark.slow


def slow_space(max_steps: int = 400, eval_every: int = 20) -> str:
    """At the default steps, trials of several seconds (no early stop), one at a time (each takes
    both CPUs of the embedded runtime), so that a test can kill a worker while it trains."""
    return f"""version: 1
training: {{lr: 1.0e-3, batch_size: 32, max_steps: {max_steps}, eval_every: {eval_every},
           weight_decay: 0.0, patience: 100}}
shared: {{d_model: 16, dropout: 0.0, pooling: last}}
families:
  gru: {{n_layers: 1}}
"""


TRAINABLE = "ray::ImplicitFunc"  # the title of the Ray actor process that runs a Tune trial


def trial_rows(db_file) -> list[dict]:
    if not db_file.exists():
        return []
    try:
        with sqlite3.connect(db_file) as conn:
            conn.row_factory = sqlite3.Row
            return [dict(row) for row in conn.execute("SELECT * FROM archsearch_trials")]
    except sqlite3.OperationalError:  # tables not created yet
        return []


def trial_row(db_file, number: int) -> dict | None:
    return next((row for row in trial_rows(db_file) if row["number"] == number), None)


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


@contextmanager
def slow_search(tmp_path, space_text: str, db_file, budget: int, env: dict | None = None):
    """A search of ``budget`` trials of ``space_text`` in a driver process (one trial at a
    time: each takes both CPUs), killed on the way out should it still run."""
    space = tmp_path / "slow.yaml"
    space.write_text(space_text)
    driver = subprocess.Popen(
        [sys.executable, "-m", "archsearch", "search", "builtin:adding?length=12&n=120",
         "--space", str(space), "--budget-trials", str(budget), "--cpus-per-trial", "2",
         "--cv-folds", "0", "--db", f"sqlite:///{db_file}", "--report-dir", str(tmp_path),
         "--json"], cwd=tmp_path, env={**os.environ, **(env or {})},
        stdout=open(tmp_path / "out.json", "wb"), stderr=open(tmp_path / "driver.log", "wb"))
    try:
        yield driver
    finally:
        if driver.poll() is None:
            driver.kill()
            driver.wait()


def assert_ends_well(driver, tmp_path, deadline: float) -> None:
    assert driver.wait(max(1.0, deadline - time.monotonic())) == 0, \
        (tmp_path / "driver.log").read_text()[-3000:]


def test_a_killed_worker_costs_one_retry_recorded_on_the_trial(tmp_path):
    db_file = tmp_path / "chaos.db"
    deadline = time.monotonic() + 480
    killed: set[int] = set()
    with slow_search(tmp_path, slow_space(), db_file, budget=2) as driver:
        # Trial 0: killed, retried, killed again: Ray's one retry is spent.
        kill_the_trial_worker(driver, db_file, 0, killed, retries=0, deadline=deadline)
        kill_the_trial_worker(driver, db_file, 0, killed, retries=1, deadline=deadline)
        # Trial 1: killed once, then its retry completes.
        kill_the_trial_worker(driver, db_file, 1, killed, retries=0, deadline=deadline)
        assert_ends_well(driver, tmp_path, deadline)
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


@pytest.fixture
def small_disk(tmp_path):
    """A 4 MB file system of its own (tmpfs), to be filled up; mounting it needs root."""
    mount_point = tmp_path / "disk"
    mount_point.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs",
                              str(mount_point)], capture_output=True, text=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs (needs root): {mounted.stderr.strip()}")
    yield mount_point
    subprocess.run(["umount", "-l", str(mount_point)], check=True)


# Which write meets the full disk first: a trial's (short trials that report often), or the
# lease keeper's (a long trial that reports nothing until it ends, under a short lease). Trials
# run one at a time (each takes both CPUs): two side by side end seconds apart, and the test,
# which waits for one finished and one running, could miss that window (CI did once).
FIRST_REFUSED = {  # (max_steps, eval_every), the lease in seconds, the trial budget
    "trial": ((40, 20), "4", 6),
    "lease": ((4000, 4000), "2", 2),
}


@pytest.mark.parametrize("first_refused", sorted(FIRST_REFUSED))
def test_a_database_that_fills_up_mid_search(tmp_path, small_disk, first_refused):
    """The disk under the SQLite file fills up mid-search: the driver stops with one paragraph
    (exit 1), whichever write was refused first, the task never reads running, and once there
    is room again a resume keeps the finished trials and meets the budget exactly."""
    steps, lease, budget = FIRST_REFUSED[first_refused]
    space = tmp_path / "tiny.yaml"
    space.write_text(slow_space(*steps))
    db_file = small_disk / "full.db"
    db = f"sqlite:///{db_file}"
    env = {**os.environ, "ARCHSEARCH_LEASE_SECONDS": lease}
    base = [sys.executable, "-m", "archsearch", "search", "--db", db, "--report-dir",
            str(tmp_path), "--cv-folds", "0", "--cpus-per-trial", "2"]
    driver = subprocess.Popen([*base, "builtin:adding?length=12&n=120", "--space", str(space),
                               "--budget-trials", str(budget)], cwd=tmp_path, env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 300
    while True:  # fill the disk once a trial has finished (and, for "lease", one is running)
        assert driver.poll() is None and time.monotonic() < deadline, driver.returncode
        finished = {row["number"] for row in trial_rows(db_file) if row["finished_at"]}
        running = len(trial_rows(db_file)) > len(finished)
        if finished and (running or first_refused == "trial"):
            break
        time.sleep(0.2)
    filler = small_disk / "filler"
    subprocess.run(["dd", "if=/dev/zero", f"of={filler}", "bs=64k"], capture_output=True)
    stderr = driver.communicate(timeout=300)[1]
    assert driver.returncode == 1, stderr[-3000:]
    # archsearch's own answer is one paragraph. (When the refused write is one made in a Ray
    # Tune callback as a trial ends, Tune's logger prints that callback's traceback above it.)
    assert "internal error" not in stderr
    last = stderr.strip().splitlines()[-1]
    assert last.startswith("archsearch: error: task 1 stopped: a write failed: database or "
                           "disk is full.") and "--resume 1" in last, last
    with sqlite3.connect(db_file) as conn:
        kept = conn.execute("SELECT number, started_at, finished_at FROM archsearch_trials "
                            "WHERE status != 'running'").fetchall()
    if first_refused == "lease":  # no trial ended after the fill: the lease keeper stopped it
        assert {number for number, *_ in kept} == finished, kept
    time.sleep(float(lease) + 1)  # if the failed status could not be stored, the lease lapsed
    listed = subprocess.run([sys.executable, "-m", "archsearch", "tasks", "--db", db, "--json"],
                            cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert json.loads(listed.stdout.strip().splitlines()[-1])[0]["status"] in (
        "failed", "interrupted")

    filler.unlink()
    resumed = subprocess.run([*base, "--resume", "1", "--json"], cwd=tmp_path, env=env,
                             capture_output=True, text=True, timeout=600)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    summary = json.loads(resumed.stdout.strip().splitlines()[-1])
    assert summary["status"] == "completed" and sum(summary["trials"].values()) == budget
    with sqlite3.connect(db_file) as conn:
        after = conn.execute("SELECT number, started_at, finished_at FROM archsearch_trials"
                             ).fetchall()
    assert set(kept) <= set(after) and len(after) == budget


def test_a_retried_trial_goes_on_from_its_latest_snapshot(tmp_path):
    # Every round saves a snapshot (ARCHSEARCH_SNAPSHOT_SECONDS=0); the worker is killed after
    # a few rounds, and Ray's retry reads the latest snapshot (tune.get_checkpoint()): its
    # earlier rounds come back as they were stored (same seconds), not trained again.
    db_file = tmp_path / "retry.db"

    def epochs() -> list[tuple]:
        try:
            with sqlite3.connect(db_file) as conn:
                return conn.execute("SELECT epoch, val_score, elapsed_s FROM archsearch_epochs "
                                    "ORDER BY epoch").fetchall()
        except sqlite3.OperationalError:
            return []

    deadline = time.monotonic() + 480
    with slow_search(tmp_path, slow_space(max_steps=1200), db_file,
                     budget=1, env={"ARCHSEARCH_SNAPSHOT_SECONDS": "0"}) as driver:
        while len(epochs()) < 3 and time.monotonic() < deadline:
            assert driver.poll() is None, (tmp_path / "driver.log").read_text()[-3000:]
            time.sleep(0.2)
        before = epochs()[:2]
        kill_the_trial_worker(driver, db_file, 0, set(), retries=0, deadline=deadline)
        assert_ends_well(driver, tmp_path, deadline)
    row = trial_row(db_file, 0)
    assert row["status"] == "completed" and row["retries"] == 1
    after = epochs()
    assert [e[0] for e in after] == list(range(1, 61))
    assert after[:2] == before
