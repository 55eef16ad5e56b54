"""Stored records -> the API's answers (no I/O here: the routes read the store)."""

from __future__ import annotations

import math

from archsearch.api.schemas import Best, LiveView, Point, TaskView, TrialView
from archsearch.report.charts import pareto_front
from archsearch.search import dashboard_hint
from archsearch.store import TaskRecord, TrialRecord
from archsearch.types import TrialStatus, status_counts


def _finite(value: float | None) -> float | None:
    """JSON has no NaN or infinity: a diverged score is shown as missing."""
    return value if value is not None and math.isfinite(value) else None


def _completed(trials: list[TrialRecord]) -> list[TrialRecord]:
    return [t for t in trials
            if t.status == TrialStatus.COMPLETED.value and _finite(t.val_score) is not None]


def task_view(task: TaskRecord, trials: list[TrialRecord], dashboard_url: str,
              active: bool) -> TaskView:
    counts = status_counts(t.status for t in trials)
    best = None
    for trial in _completed(trials):
        if best is None or task.metric.better(trial.val_score, best.val_score):
            best = trial
    finished = len(trials) - counts[TrialStatus.RUNNING.value]
    return TaskView(
        task_id=task.id, status=task.status, created_at=task.created_at.isoformat(),
        updated_at=task.updated_at.isoformat(), dataset=task.dataset_name, task=task.task_kind,
        metric=task.metric.name, direction=task.metric.direction,
        budget_trials=task.budget_trials, trials=counts,
        progress=min(1.0, finished / task.budget_trials) if task.budget_trials else 0.0,
        best=None if best is None else Best(trial=best.number, family=best.family,
                                            val_score=best.val_score),
        error=task.error, report_ready=bool(task.report_path), active=active,
        dashboard_url=dashboard_url, dashboard_hint=f"{dashboard_hint()}; the trials of this "
        f"task are the Ray Tune trials named archsearch-task-{task.id}-NUMBER-FAMILY",
    )


def trial_view(trial: TrialRecord) -> TrialView:
    return TrialView(
        number=trial.number, family=trial.family, status=trial.status,
        val_score=_finite(trial.val_score), test_score=_finite(trial.test_score),
        cv_score=_finite(trial.cv_score), params=trial.params, latency_ms=trial.latency_ms,
        peak_memory_mb=trial.peak_memory_mb, epochs_run=trial.epochs_run,
        train_seconds=trial.train_seconds, error=trial.error, config=trial.config,
    )


def live_view(task: TaskRecord, trials: list[TrialRecord], dashboard_url: str,
              active: bool) -> LiveView:
    completed = _completed(trials)
    best_so_far: list[Point] = []  # one point per completed trial, so plateaus show
    for trial in sorted(completed, key=lambda t: t.number):
        if not best_so_far or task.metric.better(trial.val_score, best_so_far[-1].y):
            best_so_far.append(Point(x=trial.number, y=trial.val_score, label=_label(trial)))
        else:
            best_so_far.append(best_so_far[-1].model_copy(update={"x": trial.number}))
    measured = [t for t in completed if t.latency_ms is not None]
    labels = {(t.latency_ms, t.val_score): _label(t) for t in measured}
    front = pareto_front(list(labels), maximize=task.metric.direction == "maximize")
    return LiveView(
        task=task_view(task, trials, dashboard_url, active), trials=[trial_view(t) for t in trials],
        best_so_far=best_so_far,
        pareto=[Point(x=x, y=y, label=labels[(x, y)]) for x, y in front],
        completed=[Point(x=t.latency_ms, y=t.val_score, label=_label(t)) for t in measured],
    )


def _label(trial: TrialRecord) -> str:
    return f"trial {trial.number} {trial.family}"
