"""kill -9 or Ctrl-C of the driver mid-search, then --resume: refused while the driver's lease
is live; after kill -9 the task reads interrupted once its lease lapsed, after Ctrl-C at once,
with its report; then nothing finished is lost or rerun, what the stop cut short runs again, and
the trial counts add up to the budget."""

import json
import os
import re
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
import torch

from archsearch.search.scratch import scratch_prefix
from archsearch.store import Store
from archsearch.types import TaskStatus
from archsearch.workflow import USER_INTERRUPT
from tests.records import stored_task

pytestmark = pytest.mark.slow
BUDGET = 10
LEASE_S = 6  # the drivers' lease (a setting): a killed driver's task lapses within seconds
# One family, trials of a few seconds, none pruned (`--pruner none`): what is tested is the
# resume, not the families. Long enough that the driver is still searching when the test has
# seen three trials end (the refused second driver runs in between) and its stop has landed, so
# a search that ends anyway means the stop was lost. Short enough that ten trials cost little.
SPACE = """version: 1
training: {lr: 1.0e-3, batch_size: 32, max_steps: 120, eval_every: 20, weight_decay: 0.0}
shared: {d_model: 16, dropout: 0.0, pooling: last}
families:
  gru: {n_layers: 1}
"""


def finished_trials(db_file) -> list[tuple]:
    if not db_file.exists():
        return []
    try:
        with sqlite3.connect(db_file) as conn:
            return conn.execute(
                "SELECT number, status, started_at, finished_at, error FROM archsearch_trials "
                "WHERE status != 'running' ORDER BY number").fetchall()
    except sqlite3.OperationalError:  # tables not created yet
        return []


def trials(db_file) -> list[tuple]:
    if not db_file.exists():
        return []
    try:
        with sqlite3.connect(db_file) as conn:
            return conn.execute("SELECT number FROM archsearch_trials").fetchall()
    except sqlite3.OperationalError:  # no database or tables yet
        return []


@pytest.mark.parametrize("stop", [signal.SIGKILL, signal.SIGINT], ids=["kill-9", "ctrl-c"])
def test_stop_then_resume(tmp_path, stop):
    db_file = tmp_path / "k.db"
    db = f"sqlite:///{db_file}"
    (tmp_path / "gru.yaml").write_text(SPACE)
    # No cross-validation of finalists: what is tested is the resume (stored with the task,
    # so the resumed driver skips it too).
    base = [sys.executable, "-m", "archsearch", "search", "--db", db, "--report-dir",
            str(tmp_path), "--json", "--cv-folds", "0", "--pruner", "none"]
    env = {**os.environ, "ARCHSEARCH_LEASE_SECONDS": str(LEASE_S)}
    # SIGINT at its default in the driver, as in a terminal: a pytest started in the background
    # (`pytest ... &`) ignores SIGINT, its children inherit that, and Python keeps ignoring it,
    # so the Ctrl-C would never land (this test failed so whenever the suite ran in background).
    driver = subprocess.Popen([*base, "builtin:adding?length=24&n=300", "--space", "gru.yaml",
                               "--budget-trials", str(BUDGET), "--seed", "2"], cwd=tmp_path,
                              env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                              preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    deadline = time.monotonic() + 240
    while not trials(db_file) and time.monotonic() < deadline:
        assert driver.poll() is None, driver.returncode
        time.sleep(0.2)
    # A second driver while the first one lives: refused, and the first one runs on.
    refused = subprocess.run([*base, "--resume", "1"], cwd=tmp_path, env=env,
                             capture_output=True, text=True, timeout=300)
    assert refused.returncode == 2, refused.stderr[-2000:]
    assert "another live driver" in refused.stderr and "Traceback" not in refused.stderr
    while len(finished_trials(db_file)) < 3 and time.monotonic() < deadline:
        assert driver.poll() is None, "the search ended before it could be killed"
        time.sleep(0.2)
    os.kill(driver.pid, stop)
    stopped_rc = driver.wait(120)
    killed = time.monotonic()
    before = finished_trials(db_file)
    assert 3 <= len(before) < BUDGET
    # Ray Tune's scratch folder: a killed driver leaves it (the resume of its task removes it),
    # a driver stopped by Ctrl-C removes it itself.
    left = list(Path(tempfile.gettempdir()).glob(scratch_prefix(db, "archsearch-task-1") + "*"))
    listed = subprocess.run([sys.executable, "-m", "archsearch", "tasks", "--db", db, "--json"],
                            cwd=tmp_path, capture_output=True, text=True, timeout=120)
    if stop == signal.SIGKILL:
        assert len(left) == 1, left
        # Nothing wrote "interrupted": the lapsed lease says so to every reader.
        time.sleep(max(0.0, killed + LEASE_S + 1 - time.monotonic()))
        listed = subprocess.run([sys.executable, "-m", "archsearch", "tasks", "--db", db,
                                 "--json"], cwd=tmp_path, capture_output=True, text=True,
                                timeout=120)
        cut_short = set()
    else:
        # Ctrl-C: the driver ends the task itself, with a report of the trials done so far,
        # and stores the trials it cut short failed with the stop's reason.
        assert stopped_rc == 130 and not left, left
        assert (tmp_path / "task-1" / "report.html").is_file()
        cut_short = {t for t in before if t[4] == USER_INTERRUPT}
        assert all(t[1] == "failed" for t in cut_short)
    task = json.loads(listed.stdout.strip().splitlines()[-1])[0]
    assert task["status"] == "interrupted", task

    resumed = subprocess.run([*base, "--resume", "1"], cwd=tmp_path, env=env,
                             capture_output=True, text=True, timeout=600)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    summary = json.loads(resumed.stdout.strip().splitlines()[-1])
    assert summary["status"] == "completed"
    assert sum(summary["trials"].values()) == BUDGET
    after = finished_trials(db_file)
    assert len(after) == BUDGET
    # Every trial that ended on its own before the stop is still there, untouched (same start
    # and end); those the stop cut short ran again.
    assert set(before) - cut_short <= set(after)
    assert not cut_short & set(after)
    assert not any(t[4] == USER_INTERRUPT for t in after)
    with sqlite3.connect(db_file) as conn:
        assert conn.execute("SELECT count(*) FROM archsearch_trials "
                            "WHERE status = 'running'").fetchone() == (0,)
        epochs, run = conn.execute(
            "SELECT (SELECT count(*) FROM archsearch_epochs), "
            "(SELECT sum(epochs_run) FROM archsearch_trials)").fetchone()
    assert epochs == run
    assert (tmp_path / "task-1" / "report.html").is_file()
    assert not any(folder.exists() for folder in left)
    assert not list(Path(tempfile.gettempdir()).glob(scratch_prefix(db, "archsearch-task-1")
                                                     + "*"))


def test_resume_refuses_a_completed_task(tmp_path):
    db = f"sqlite:///{tmp_path / 'c.db'}"
    with Store(db) as store:  # a completed task, as a search leaves it (none needs to run)
        task_id = stored_task(store, TaskStatus.COMPLETED)
    again = subprocess.run([sys.executable, "-m", "archsearch", "search", "--resume",
                            str(task_id), "--db", db], cwd=tmp_path, capture_output=True,
                           text=True, timeout=120)
    assert again.returncode == 2 and "already completed" in again.stderr, again.stderr[-2000:]


def test_a_resume_reruns_the_trials_a_stop_cut_short_and_keeps_the_rest(tmp_path):
    # The trials a stop cut short (Ctrl-C, a cancel) are stored failed with its reason, for the
    # report; a resume runs them again, as it does those a killed driver left running. Trials
    # that ended on their own (completed, or failed with their own error) are kept.
    from archsearch.search import SEARCH_STOPPED
    from archsearch.types import TrialOutcome, TrialStatus
    from archsearch.workflow import CANCELLED, _take_stock, snapshot_path

    with Store(f"sqlite:///{tmp_path / 's.db'}") as store:
        task_id = stored_task(store, TaskStatus.INTERRUPTED, budget_trials=6)
        # 6: a cancel whose Ctrl-C was lost wound the search down, and its trial says so
        ended = {1: (TrialStatus.FAILED, "ValueError: the loss is NaN"),
                 2: (TrialStatus.FAILED, USER_INTERRUPT), 3: (TrialStatus.FAILED, CANCELLED),
                 4: (TrialStatus.PRUNED, None), 6: (TrialStatus.FAILED, SEARCH_STOPPED)}
        for number in range(7):
            store.start_trial(task_id, number, "gru", {"n_layers": 1})
            if number == 0:
                store.finish_trial(task_id, 0, TrialOutcome(
                    status=TrialStatus.COMPLETED, cost=None, epochs_run=1, best_epoch=1,
                    val_score=0.1, test_score=0.1, train_seconds=1.0))
            elif number in ended:
                store.mark_trial(task_id, number, *ended[number])
        # number 5 stays running, as a killed driver leaves it
        # Trial 2 saved a snapshot of its training (it goes on from it); trial 3's is damaged
        # (removed, and it runs again from the start); trial 5 saved none.
        checkpoints = tmp_path / "checkpoints"
        checkpoints.mkdir()
        torch.save({"reports": [{}] * 7, "seconds": 1468.2}, snapshot_path(checkpoints, 2))
        snapshot_path(checkpoints, 3).write_bytes(b"not a snapshot")
        lines = []
        finished, unfinished = _take_stock(store, task_id, lines.append, checkpoints)
        assert [t.number for t in finished] == [0, 1, 4]
        assert unfinished == [2, 3, 5, 6]
        assert [t.number for t in store.trials(task_id)] == [0, 1, 4]
        assert "goes on from its snapshot after round 7 (1468 s of training)" in lines[0]
        assert "could not be read" in lines[1] and not snapshot_path(checkpoints, 3).exists()
        assert "its configuration runs again" in lines[2]


def test_a_resume_after_every_trial_ended_still_cross_validates_the_finalists(tmp_path):
    # Small data: the finalists are re-scored by k-fold cross-validation after the trials. A
    # Ctrl-C once their first fold has ended leaves every trial done and none re-scored; the
    # resume runs no trial, keeps the folds that ended, and re-scores the finalists that the
    # first sitting's trials make (it skipped them when only the trials that ended in the
    # resuming sitting were candidates).
    db_file = tmp_path / "cv.db"
    db = f"sqlite:///{db_file}"
    (tmp_path / "gru.yaml").write_text(SPACE)
    base = [sys.executable, "-m", "archsearch", "search", "--db", db, "--report-dir",
            str(tmp_path), "--json", "--cv-folds", "3", "--pruner", "none"]
    driver = subprocess.Popen([*base, "builtin:adding?length=24&n=300", "--space", "gru.yaml",
                               "--budget-trials", "2", "--seed", "2"], cwd=tmp_path,
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                              preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    seen = []
    for line in driver.stderr:
        seen.append(line)
        if re.search(r": fold \d of 3 ", line):
            os.kill(driver.pid, signal.SIGINT)
            break
    driver.stderr.read()
    assert driver.wait(120) == 130, "".join(seen)[-3000:]

    def stored():
        with sqlite3.connect(db_file) as conn:
            return conn.execute("SELECT number, status, started_at, finished_at, cv_folds "
                                "FROM archsearch_trials ORDER BY number").fetchall()

    before = stored()
    assert [(t[1], t[4]) for t in before] == [("completed", None)] * 2
    resumed = subprocess.run([*base, "--resume", "1"], cwd=tmp_path, capture_output=True,
                             text=True, timeout=600)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert "3-fold cross-validation" in resumed.stderr
    assert re.search(r"[12] of 3 folds kept from an earlier sitting", resumed.stderr)
    after = stored()
    assert [t[:4] for t in after] == [t[:4] for t in before]  # no trial ran again
    assert sorted(t[4] or 0 for t in after) == [0, 3]  # one family: its best trial
    summary = json.loads(resumed.stdout.strip().splitlines()[-1])
    assert summary["status"] == "completed"


def test_a_trial_a_stop_cut_short_goes_on_from_its_latest_snapshot(tmp_path):
    # One long trial that saves a snapshot after every round (ARCHSEARCH_SNAPSHOT_SECONDS=0);
    # Ctrl-C once it has saved a few. The resume runs it again from its latest snapshot: its
    # earlier rounds are reported again as they were, its training goes on from there, and
    # the snapshot is removed once the trial has ended.
    db_file = tmp_path / "snap.db"
    db = f"sqlite:///{db_file}"
    (tmp_path / "long.yaml").write_text(SPACE.replace("max_steps: 120", "max_steps: 6000")
                                        .replace("eval_every: 20", "eval_every: 150"))
    snapshot = tmp_path / "task-1" / "checkpoints" / "trial-0-snapshot.pt"
    base = [sys.executable, "-m", "archsearch", "search", "--db", db, "--report-dir",
            str(tmp_path), "--json", "--cv-folds", "0", "--pruner", "none"]
    env = {**os.environ, "ARCHSEARCH_SNAPSHOT_SECONDS": "0"}
    driver = subprocess.Popen([*base, "builtin:adding?length=24&n=300", "--space", "long.yaml",
                               "--budget-trials", "1", "--seed", "2"], cwd=tmp_path, env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                              preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))

    def epochs(number):
        with sqlite3.connect(db_file) as conn:
            return conn.execute(
                "SELECT e.epoch, e.val_score, e.elapsed_s FROM archsearch_epochs e JOIN "
                "archsearch_trials t ON t.id = e.trial_id WHERE t.number = ? ORDER BY e.epoch",
                (number,)).fetchall()

    deadline = time.monotonic() + 240
    while time.monotonic() < deadline:
        assert driver.poll() is None, "the search ended before it could be stopped"
        if snapshot.is_file() and len(epochs(0)) >= 4:
            break
        time.sleep(0.2)
    os.kill(driver.pid, signal.SIGINT)
    assert driver.wait(120) == 130
    before = epochs(0)
    assert 4 <= len(before) < 40 and snapshot.is_file()
    saved = torch.load(snapshot, weights_only=True)
    rounds = len(saved["reports"])
    assert rounds >= 3

    resumed = subprocess.run([*base, "--resume", "1"], cwd=tmp_path, env=env,
                             capture_output=True, text=True, timeout=600)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert f"goes on from its snapshot after round {rounds} " in resumed.stderr
    summary = json.loads(resumed.stdout.strip().splitlines()[-1])
    assert summary["status"] == "completed" and summary["trials"]["completed"] == 1
    assert sum(summary["trials"].values()) == 1
    after = epochs(1)  # the trial that ran it again
    assert [e[0] for e in after] == list(range(1, 41))
    # Its first rounds are the cut trial's, as they were (same scores, same seconds).
    assert after[:rounds] == before[:rounds]
    assert after[rounds][2] > before[rounds - 1][2]  # and its clock went on from there
    assert not snapshot.is_file() and not snapshot.with_name("trial-1-snapshot.pt").exists()
