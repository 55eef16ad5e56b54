"""Stored records -> the API's answers (no I/O here: the routes read the store)."""

from __future__ import annotations

import math
from datetime import datetime, timezone

from archsearch.api.schemas import Best, FloorView, LiveView, Point, TaskView, TrialView
from archsearch.floor import judge
from archsearch.recommend import pareto_front
from archsearch.search import dashboard_hint
from archsearch.store import TaskRecord, TrialRecord
from archsearch.types import TaskStatus, TrialStatus, status_counts


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
        progress=_progress(task, finished),
        best=None if best is None else Best(trial=best.number, family=best.family,
                                            val_score=best.val_score),
        floor=_floor_view(task, next((t for t in trials if t.id == task.best_trial_id), best)),
        error=task.error, report_ready=bool(task.report_path), active=active,
        dashboard_url=dashboard_url, dashboard_hint=f"{dashboard_hint()}; the trials of this "
        f"task are the Ray Tune trials named archsearch-task-{task.id}-NUMBER-FAMILY",
    )


def _progress(task: TaskRecord, finished: int) -> float:
    """Finished trials over the trial budget; under a time budget alone, the time since the
    task was created over the budget while it runs (1 once it completed)."""
    if task.budget_trials:
        return min(1.0, finished / task.budget_trials)
    if task.status == TaskStatus.COMPLETED.value:
        return 1.0
    if task.budget_minutes and task.status == TaskStatus.RUNNING.value:
        now = datetime.now(timezone.utc).replace(tzinfo=None)  # stored times are naive UTC
        elapsed = (now - task.created_at.replace(tzinfo=None)).total_seconds()
        return min(1.0, max(0.0, elapsed / (task.budget_minutes * 60.0)))
    return 0.0


def _floor_view(task: TaskRecord, pick: TrialRecord | None) -> FloorView | None:
    """The floor beside the pick once the task has one, else beside the best trial so far."""
    floor = task.floor
    if floor is None:
        return None
    return FloorView(
        method=floor.method, val_score=_finite(floor.val_score),
        test_score=_finite(floor.test_score), fit_seconds=floor.fit_seconds,
        latency_ms=floor.latency_ms, size_mb=floor.size_mb, train_series=floor.train_series,
        cv_mean=_finite(floor.cv_mean), cv_std=_finite(floor.cv_std), cv_folds=floor.cv_folds,
        beats_best=judge(floor, pick, task.metric).floor_wins)


def trial_view(trial: TrialRecord) -> TrialView:
    return TrialView(
        number=trial.number, family=trial.family, status=trial.status,
        val_score=_finite(trial.val_score), test_score=_finite(trial.test_score),
        cv_score=_finite(trial.cv_score), params=trial.params, latency_ms=trial.latency_ms,
        peak_memory_mb=trial.peak_memory_mb, epochs_run=trial.epochs_run,
        train_seconds=trial.train_seconds, retries=trial.retries, error=trial.error,
        config=trial.config,
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
    front = pareto_front(list(labels), lambda p: p[0], lambda p: task.metric.sign * p[1])
    return LiveView(
        task=task_view(task, trials, dashboard_url, active), trials=[trial_view(t) for t in trials],
        best_so_far=best_so_far,
        pareto=[Point(x=x, y=y, label=labels[(x, y)]) for x, y in front],
        completed=[Point(x=t.latency_ms, y=t.val_score, label=_label(t)) for t in measured],
    )


def _label(trial: TrialRecord) -> str:
    return f"trial {trial.number} {trial.family}"
