"""End to end through the real CLI: a real local Ray runtime, real training, real SQLite."""

import json
import math
import subprocess
import sys
import time

import pytest
from sqlalchemy import create_engine, func, select

from archsearch.space import load_space
from archsearch.store.models import EpochRow, TaskRow, TrialRow

pytestmark = pytest.mark.slow

DEFAULT_FAMILIES = set(load_space().families)


def archsearch(*args, cwd):
    return subprocess.run([sys.executable, "-m", "archsearch", *args], cwd=cwd,
                          capture_output=True, text=True, timeout=600)


def test_search_end_to_end(tmp_path):
    db = f"sqlite:///{tmp_path / 'e2e.db'}"
    # The default space and everything after the trials, finalists' cross-validation included,
    # at 2 folds: the default 5 were half the test's time (2 finalists x 5 refits).
    run = archsearch("search", "builtin:adding?length=20&n=300", "--budget-trials", "6",
                     "--cv-folds", "2", "--seed", "1", "--db", db, "--report-dir",
                     str(tmp_path / "out"), "--json", cwd=tmp_path)
    assert run.returncode == 0, run.stderr[-3000:]
    summary = json.loads(run.stdout.strip().splitlines()[-1])
    assert summary["status"] == "completed"
    assert sum(summary["trials"].values()) == 6
    assert summary["metric"] == {"name": "mse", "direction": "minimize"}
    best = summary["best"]
    assert best["family"] in DEFAULT_FAMILIES
    assert best["params"] > 0 and best["latency_ms"] > 0 and best["test_score"] is not None
    assert summary["recommendation"]["family"] == best["family"]
    assert summary["recommendation"]["rationale"]
    assert summary["dashboard_url"].startswith("http://127.0.0.1:")
    assert "[6/6]" in run.stderr  # progress was shown
    # The floor, fitted before the search on the same split; on this small set the finalists
    # were cross-validated, and so was the floor, on the same folds.
    floor = summary["floor"]
    assert floor["method"] == "minirocket+ridge" and floor["train_series"] > 0
    for key in ("val", "test", "seconds", "latency_ms", "size_mb", "cv_mean", "cv_std"):
        assert math.isfinite(floor[key]), (key, floor)
    assert "Floor: minirocket+ridge validation mse" in run.stderr
    # Small data: the pick's fold models are the exported model, scored on test as a bag.
    if summary["best"]["bag"] is not None:
        assert summary["best"]["bag"]["members"] == floor["cv_folds"]
        assert math.isfinite(summary["best"]["bag"]["test_score"])
        assert math.isfinite(floor["bag_test"])
    assert summary["answer"] in ("searched", "floor")
    assert floor["beats_best"] == (summary["answer"] == "floor")

    report = tmp_path / "out" / f"task-{summary['task_id']}" / "report.html"
    assert summary["report"] == str(report) and report.is_file()
    html = report.read_text()
    assert "<svg" in html and 'id="floor-table"' in html
    model_dir = report.parent / "model"
    if summary["answer"] == "floor":
        assert "Use the floor model: MiniRocket+ridge" in html
        assert summary["recommendation"]["rationale"][0].startswith(
            "No searched model beat the floor")
        assert (model_dir / "floor_model.joblib").is_file()
    else:
        assert f"Use {best['family']}" in html
        assert any("beat the floor: " in sentence
                   for sentence in summary["recommendation"]["rationale"])
    assert (model_dir / "state_dict.pt").is_file() and (model_dir / "config.json").is_file()
    exported = json.loads((model_dir / "config.json").read_text())
    bag = summary["best"]["bag"]
    assert exported["bag_members"] == (bag["members"] if bag else 0)
    # The load snippet rebuilds what was exported, bag or single model, and it predicts.
    snippet = subprocess.run([sys.executable, "-c", (model_dir / "load_model.py").read_text()
                              + "\nprint(model(torch.zeros(2, 20, 2)).shape)"],
                             cwd=model_dir, capture_output=True, text=True, timeout=120)
    assert snippet.returncode == 0 and "torch.Size([2, 1])" in snippet.stdout, snippet.stderr

    engine = create_engine(db)
    with engine.connect() as conn:
        assert conn.scalar(select(func.count()).select_from(TaskRow)) == 1
        statuses = conn.scalars(select(TrialRow.status)).all()
        assert len(statuses) == 6 and "running" not in statuses
        epochs = conn.scalar(select(func.count()).select_from(EpochRow))
        epochs_run = conn.scalar(select(func.sum(TrialRow.epochs_run)))
        assert epochs == epochs_run > 0
    # Six trials, six families: the initial design is balanced across the default space's ten,
    # and every trial stored the measurements of its model.
    with engine.connect() as conn:
        measured = conn.execute(select(TrialRow.family, TrialRow.params, TrialRow.flops,
                                       TrialRow.latency_ms, TrialRow.peak_memory_mb,
                                       TrialRow.memory_method, TrialRow.device)).all()
    tried = {row.family for row in measured}
    assert len(tried) == 6 and tried <= DEFAULT_FAMILIES
    for row in measured:
        assert row.params > 0 and row.flops > 0 and row.latency_ms > 0, row
        assert row.peak_memory_mb > 0 and row.memory_method and row.device in ("cpu", "cuda"), row

    listed = archsearch("tasks", "--db", db, "--json", cwd=tmp_path)
    tasks = json.loads(listed.stdout.strip().splitlines()[-1])
    assert [t["task_id"] for t in tasks] == [summary["task_id"]]
    assert tasks[0]["status"] == "completed" and tasks[0]["created_at"]

    report.unlink()
    rerender = archsearch("report", str(summary["task_id"]), "--db", db, cwd=tmp_path)
    assert rerender.returncode == 0 and report.is_file()


def test_parameter_budget_makes_trials_infeasible(tmp_path):
    db = f"sqlite:///{tmp_path / 'c.db'}"
    # No cross-validation of finalists (test_search_end_to_end covers it): what is tested is
    # the constraint.
    run = archsearch("search", "builtin:adding?length=16&n=200", "--budget-trials", "6",
                     "--constraint", "max_params=5000", "--cv-folds", "0", "--db", db,
                     "--report-dir", str(tmp_path), "--json", cwd=tmp_path)
    assert run.returncode in (0, 1), run.stderr[-3000:]
    summary = json.loads(run.stdout.strip().splitlines()[-1])
    assert summary["trials"]["infeasible"] > 0
    assert sum(summary["trials"].values()) == 6
    if summary["best"] is not None:
        assert summary["best"]["params"] <= 5000
    engine = create_engine(db)
    with engine.connect() as conn:
        rows = conn.execute(select(TrialRow.status, TrialRow.epochs_run, TrialRow.error)).all()
    for status, epochs, error in rows:
        if status == "infeasible":
            assert epochs == 0 and "max_params=5000" in error


SMALL_SPACE = """\
version: 1
training:
  lr: {type: float, low: 1.0e-4, high: 3.0e-2, log: true}
  batch_size: 64
  max_steps: 8
  eval_every: 2
  weight_decay: 0.0
shared:
  d_model: {type: ordinal, choices: [8, 16]}
  dropout: 0.0
  pooling: {type: categorical, choices: [last, mean]}
families:
  gru: {n_layers: {type: int, low: 1, high: 2}, bidirectional: false}
  tcn: {n_layers: {type: int, low: 3, high: 4}, kernel_size: 2}
"""


ENDLESS_SPACE = """\
version: 1
training: {lr: 1.0e-3, batch_size: 32, max_steps: 100000, eval_every: 20, patience: 0}
shared: {d_model: 8, dropout: 0.0, pooling: mean}
families:
  gru: {n_layers: 1, bidirectional: false}
"""


def test_a_time_budget_ends_the_run_on_time_and_loses_no_trial(tmp_path):
    # Trials that would train for ever: each ends at its time limit (its share, or the time
    # left when it started late); none starts too late to finish, and when none can start the
    # search ends at once (Ray Tune, told nothing, would poll the searcher for 600 s).
    (tmp_path / "endless.yaml").write_text(ENDLESS_SPACE)
    db = f"sqlite:///{tmp_path / 't.db'}"
    started = time.monotonic()
    run = archsearch("search", "builtin:adding?length=16&n=600", "--budget-minutes", "1.25",
                     "--space", "endless.yaml", "--cv-folds", "0", "--db", db, "--report-dir",
                     str(tmp_path), "--json", cwd=tmp_path)
    wall = time.monotonic() - started
    assert run.returncode == 0, run.stderr[-3000:]
    summary = json.loads(run.stdout.strip().splitlines()[-1])
    assert wall < 75 + 5, wall  # the budget counts from the command's start; 5 s for Python
    assert summary["trials"]["completed"] >= 2 and summary["trials"].get("failed", 0) == 0


def test_twenty_trials_prune_some(tmp_path):
    (tmp_path / "small.yaml").write_text(SMALL_SPACE)
    db = f"sqlite:///{tmp_path / 'p.db'}"
    run = archsearch("search", "builtin:adding?length=16&n=300", "--budget-trials", "20",
                     "--space", "small.yaml", "--cv-folds", "0", "--db", db, "--report-dir",
                     str(tmp_path), "--json", cwd=tmp_path)
    assert run.returncode == 0, run.stderr[-3000:]
    summary = json.loads(run.stdout.strip().splitlines()[-1])
    assert sum(summary["trials"].values()) == 20
    assert summary["trials"]["pruned"] > 0
    engine = create_engine(db)
    with engine.connect() as conn:
        rows = conn.execute(select(TrialRow.status, TrialRow.epochs_run, TrialRow.error)).all()
    pruned = [(epochs, error) for status, epochs, error in rows if status == "pruned"]
    # stored as pruned at the epoch the pruner stopped it (not at a later one it raced on to)
    assert all(0 < epochs <= 4 and f"after validation round {epochs}" in error
               for epochs, error in pruned)


def test_multi_objective_search_records_quality_and_latency(tmp_path):
    import optuna

    (tmp_path / "small.yaml").write_text(SMALL_SPACE)
    db = f"sqlite:///{tmp_path / 'mo.db'}"
    run = archsearch("search", "builtin:adding?length=16&n=300", "--budget-trials", "6",
                     "--objectives", "quality,latency", "--space", "small.yaml",
                     "--cv-folds", "0", "--db", db, "--report-dir", str(tmp_path), "--json",
                     cwd=tmp_path)
    assert run.returncode == 0, run.stderr[-3000:]
    summary = json.loads(run.stdout.strip().splitlines()[-1])
    assert summary["objectives"] == "quality,latency" and summary["pareto_front"]
    study = optuna.load_study(study_name=f"archsearch-task-{summary['task_id']}", storage=db)
    assert [d.name for d in study.directions] == ["MINIMIZE", "MINIMIZE"]
    engine = create_engine(db)
    with engine.connect() as conn:
        latency = dict(conn.execute(select(TrialRow.number, TrialRow.latency_ms)).all())
    done = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    assert done and all(t.values[1] == pytest.approx(latency[t.number]) for t in done)
    assert set(summary["pareto_front"]) <= {t.number for t in done}
