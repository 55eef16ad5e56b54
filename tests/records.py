"""Store records made by hand, for tests of code that reads them without a database."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from archsearch.store import Store, TaskRecord, TrialRecord
from archsearch.types import Metric, TaskStatus

WHEN = datetime(2026, 1, 1)


def task_record(**fields: Any) -> TaskRecord:
    """A completed regression task (mse) unless ``fields`` say otherwise."""
    defaults: dict[str, Any] = {
        "id": 1, "created_at": WHEN, "updated_at": WHEN, "status": "completed", "source": "s",
        "dataset_name": "d", "task_kind": "regression", "metric": Metric("mse", "minimize"),
        "seed": 0, "constraints": {}, "options": {}, "space_name": "default",
        "meta_features": {}, "fingerprint": None, "budget_trials": 1, "budget_minutes": None,
        "optuna_study": None, "best_trial_id": None, "report_path": None, "error": None}
    return TaskRecord(**{**defaults, **fields})


def trial_record(**fields: Any) -> TrialRecord:
    """A completed gru trial measured on the CPU unless ``fields`` say otherwise."""
    defaults: dict[str, Any] = {
        "id": 1, "number": 0, "family": "gru", "config": {}, "status": "completed",
        "error": None, "params": 10, "flops": 10, "latency_ms": 1.0, "latency_p95_ms": 1.0,
        "peak_memory_mb": 1.0, "memory_method": "m", "device": "cpu", "val_score": 0.1,
        "test_score": 0.1, "best_epoch": 1, "epochs_run": 1, "train_seconds": 1.0,
        "started_at": WHEN, "finished_at": None}
    return TrialRecord(**{**defaults, **fields})


def stored_task(store: Store, status: TaskStatus, **fields: Any) -> int:
    """A task row written straight to ``store`` (no search ran): a tiny adding regression
    with a budget of 3 trials unless ``fields`` say otherwise; its id."""
    defaults: dict[str, Any] = {
        "source": "builtin:adding?length=12&n=120", "dataset_name": "adding",
        "task_kind": "regression", "metric": Metric("mse", "minimize"), "seed": 0,
        "constraints": {}, "options": {}, "space_name": "tiny", "meta_features": {},
        "fingerprint": None, "budget_trials": 3, "budget_minutes": None}
    return store.create_task(**{**defaults, **fields}, status=status)
