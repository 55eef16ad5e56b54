"""End to end through the real CLI: a real local Ray runtime, real training, real SQLite."""

import json
import subprocess
import sys

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
    run = archsearch("search", "builtin:adding?length=20&n=300", "--budget-trials", "6",
                     "--seed", "1", "--db", db, "--report-dir", str(tmp_path / "out"), "--json",
                     cwd=tmp_path)
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

    report = tmp_path / "out" / f"task-{summary['task_id']}" / "report.html"
    assert summary["report"] == str(report) and report.is_file()
    html = report.read_text()
    assert "<svg" in html and f"Use {best['family']}" in html
    model_dir = report.parent / "model"
    assert (model_dir / "state_dict.pt").is_file() and (model_dir / "config.json").is_file()

    engine = create_engine(db)
    with engine.connect() as conn:
        assert conn.scalar(select(func.count()).select_from(TaskRow)) == 1
        statuses = conn.scalars(select(TrialRow.status)).all()
        assert len(statuses) == 6 and "running" not in statuses
        epochs = conn.scalar(select(func.count()).select_from(EpochRow))
        epochs_run = conn.scalar(select(func.sum(TrialRow.epochs_run)))
        assert epochs == epochs_run > 0
    # Six trials, six families: the initial design is balanced across the default space's ten.
    with engine.connect() as conn:
        tried = set(conn.scalars(select(TrialRow.family)).all())
    assert len(tried) == 6 and tried <= DEFAULT_FAMILIES

    listed = archsearch("tasks", "--db", db, "--json", cwd=tmp_path)
    tasks = json.loads(listed.stdout.strip().splitlines()[-1])
    assert [t["task_id"] for t in tasks] == [summary["task_id"]]
    assert tasks[0]["status"] == "completed" and tasks[0]["created_at"]

    report.unlink()
    rerender = archsearch("report", str(summary["task_id"]), "--db", db, cwd=tmp_path)
    assert rerender.returncode == 0 and report.is_file()


def test_parameter_budget_makes_trials_infeasible(tmp_path):
    db = f"sqlite:///{tmp_path / 'c.db'}"
    run = archsearch("search", "builtin:adding?length=16&n=200", "--budget-trials", "6",
                     "--constraint", "max_params=3000", "--db", db, "--report-dir",
                     str(tmp_path), "--json", cwd=tmp_path)
    assert run.returncode in (0, 1), run.stderr[-3000:]
    summary = json.loads(run.stdout.strip().splitlines()[-1])
    assert summary["trials"]["infeasible"] > 0
    assert sum(summary["trials"].values()) == 6
    if summary["best"] is not None:
        assert summary["best"]["params"] <= 3000
    engine = create_engine(db)
    with engine.connect() as conn:
        rows = conn.execute(select(TrialRow.status, TrialRow.epochs_run, TrialRow.error)).all()
    for status, epochs, error in rows:
        if status == "infeasible":
            assert epochs == 0 and "max_params=3000" in error
