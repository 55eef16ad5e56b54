"""Build the report's context from the store and render it with Jinja2 (autoescaped)."""

from __future__ import annotations

import importlib.metadata
import os
import platform
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jinja2
import torch

from archsearch import __version__
from archsearch.floor import LOAD_FLOOR_SNIPPET, describe, judge
from archsearch.floor import label as floor_label
from archsearch.recommend import pareto_front
from archsearch.report.charts import Series, family_colors, scatter_chart
from archsearch.report.claims import check_claims
from archsearch.report.export import LOAD_SNIPPET
from archsearch.report.scaling import ScalingTable, cached_scaling
from archsearch.store import RecommendationRecord, TaskRecord, TrialRecord
from archsearch.types import Metric, TrainConfig, TrialStatus, status_counts

TEMPLATES = Path(__file__).parent / "templates"


@dataclass(frozen=True)
class ReportInputs:
    task: TaskRecord
    trials: list[TrialRecord]
    recommendation: RecommendationRecord | None
    model_files: dict[str, str]
    dashboard_url: str | None = None


def environment() -> dict[str, str]:

    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "none"
    return {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpu": platform.processor() or platform.machine(),
        "cpu_count": str(os.cpu_count()),
        "gpu": gpu,
        "torch": torch.__version__,
        # versions from the installed metadata: the report room does not import Ray or Optuna
        "ray": importlib.metadata.version("ray"),
        "optuna": importlib.metadata.version("optuna"),
        "archsearch": __version__,
    }


def _charts(trials: list[TrialRecord], metric: Metric) -> dict[str, str]:
    metric_name = metric.name
    done = [t for t in trials if t.status == TrialStatus.COMPLETED.value
            and t.val_score is not None]
    colors = family_colors({t.family for t in trials})
    by_family: dict[str, list[TrialRecord]] = {}
    for trial in done:
        by_family.setdefault(trial.family, []).append(trial)
    charts = {}
    for cost_key, label, log in (("latency_ms", "inference latency, batch 1 (ms)", True),
                                 ("params", "parameters", True)):
        series = [Series(family, [(getattr(t, cost_key), t.val_score) for t in items
                                  if getattr(t, cost_key)],
                         tooltips=[f"trial {t.number} {family}: {metric_name}={t.val_score:.4g}, "
                                   f"{cost_key}={getattr(t, cost_key):.4g}" for t in items
                                   if getattr(t, cost_key)])
                  for family, items in sorted(by_family.items())]
        front = pareto_front([p for s in series for p in s.points], lambda p: p[0],
                             lambda p: metric.sign * p[1])
        charts[f"pareto_{cost_key}"] = scatter_chart(series, colors, label,
                                                     f"validation {metric_name}", log, front)
    # Best-so-far per family over cumulative training compute (the guide's
    # performance-efficiency curves).
    curves = []
    for family in sorted({t.family for t in trials}):
        compute, best, points = 0.0, None, []
        for trial in trials:
            if trial.family != family:
                continue
            compute += trial.train_seconds
            for epoch in trial.epochs:
                score = epoch.val_score
                if best is None or metric.better(score, best):
                    best = score
            if best is not None:
                points.append((compute, best))
        curves.append(Series(family, points, line=True))
    charts["best_so_far"] = scatter_chart(curves, colors, "cumulative training time (s)",
                                          f"best validation {metric_name} so far")
    epoch_series = [Series(t.family, [(e.epoch, e.val_score) for e in t.epochs], line=True)
                    for t in trials if t.epochs]
    charts["epochs"] = scatter_chart(epoch_series, colors, "epoch", f"validation {metric_name}")
    return charts


def _scaling_charts(table: ScalingTable, colors: dict[str, str]) -> dict[str, str]:
    """Cost against sequence length per family (log-log: a slope of k is cost ~ length^k)."""
    charts = {}
    for key, attr, label in (("latency", "latency_ms", "inference latency, batch 1 (ms)"),
                             ("memory", "memory_mb", "peak forward memory (MB)")):
        series = [Series(row.family, sorted(getattr(row, attr).items()), line=True,
                         tooltips=[f"{row.family} (trial {row.trial}) at length {n}: {v:.4g}"
                                   for n, v in sorted(getattr(row, attr).items())])
                  for row in table.rows]
        charts[key] = scatter_chart(series, colors, "sequence length (log)", label, log_x=True)
    return charts


def budget_rounds(trial: TrialRecord) -> int:
    """The validation rounds a trial's training budget allows (``max_epochs`` for tasks stored
    before budgets were counted in optimizer steps)."""
    train = trial.config.get("train", {})
    if "max_steps" in train:
        return TrainConfig(**train).max_rounds
    return int(train.get("max_epochs", 0))


def _savings(trials: list[TrialRecord]) -> list[dict[str, Any]]:
    """Training compute that pruning and the cost-first checks did not spend: per outcome,
    the epochs left of each trial's budget and, at the completed trials' mean seconds per
    epoch, about how much time that is."""
    completed = [t for t in trials if t.status == TrialStatus.COMPLETED.value]
    epochs_done = sum(t.epochs_run for t in completed)
    per_epoch = sum(t.train_seconds for t in completed) / epochs_done if epochs_done else None
    rows = []
    for status, why in ((TrialStatus.PRUNED, "stopped early by the pruner"),
                        (TrialStatus.INFEASIBLE, "broke a constraint before training"),
                        (TrialStatus.FAILED, "raised or reached a NaN loss")):
        chosen = [t for t in trials if t.status == status.value]
        saved = sum(max(0, budget_rounds(t) - t.epochs_run) for t in chosen)
        rows.append({"status": status.value, "why": why, "trials": len(chosen),
                     "epochs_run": sum(t.epochs_run for t in chosen), "epochs_saved": saved,
                     "seconds_saved": saved * per_epoch if per_epoch is not None else None})
    return rows


def render_report(inputs: ReportInputs, out_file: Path) -> Path:
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(TEMPLATES),
                             autoescape=jinja2.select_autoescape(["html", "j2"]),
                             undefined=jinja2.StrictUndefined)
    task = inputs.task
    counts = status_counts(t.status for t in inputs.trials)
    best = next((t for t in inputs.trials if t.id == task.best_trial_id), None)
    epochs_run = sum(t.epochs_run for t in inputs.trials)
    max_epochs = max((budget_rounds(t) for t in inputs.trials), default=0)
    # Cost against length is measured on this machine when the report is first rendered
    # (seconds; cached beside the report), so the report speaks of the hardware it is read on.
    scaling = cached_scaling(out_file.parent, task, inputs.trials) if best else None
    colors = family_colors({t.family for t in inputs.trials})
    context: dict[str, Any] = {
        "task": task,
        "trials": inputs.trials,
        "best": best,
        "rec": inputs.recommendation,
        "counts": counts,
        "charts": _charts(inputs.trials, task.metric),
        "env": environment(),
        "model_files": {k: Path(v).name if k != "torchscript_error" else v
                        for k, v in inputs.model_files.items()},
        "dashboard_url": inputs.dashboard_url,
        "epochs_run": epochs_run,
        "epochs_budget": max_epochs * len(inputs.trials),
        "headroom": _headroom(task.constraints, best),
        "savings": _savings(inputs.trials),
        "scaling": scaling,
        "scaling_charts": _scaling_charts(scaling, colors) if scaling else {},
        "claims": check_claims(task, inputs.trials, scaling),
        "load_snippet": LOAD_SNIPPET,
        "floor": _floor(task, best, inputs.model_files),
    }
    html = env.get_template("report.html.j2").render(**context)
    out_file.parent.mkdir(parents=True, exist_ok=True)
    tmp = out_file.with_suffix(".html.tmp")
    tmp.write_text(html, encoding="utf-8")
    tmp.replace(out_file)  # never leave a half-written report
    return out_file


def _floor(task: TaskRecord, best: TrialRecord | None,
           model_files: dict[str, str]) -> dict[str, Any] | None:
    """The floor beside the best searched model, and which of the two is the answer."""
    floor = task.floor
    if floor is None:
        return None
    state = model_files.get("state_dict")
    best_size = (Path(state).stat().st_size / 2**20 if state and Path(state).is_file()
                 else None)
    return {"result": floor, "label": floor_label(floor), "what": describe(floor),
            "verdict": judge(floor, best, task.metric), "best_size_mb": best_size,
            "snippet": LOAD_FLOOR_SNIPPET}


def _headroom(constraints: dict[str, Any], best: TrialRecord | None) -> list[dict[str, Any]]:
    rows = []
    for key, attr in (("max_latency_ms", "latency_ms"), ("max_params", "params"),
                      ("max_memory_mb", "peak_memory_mb")):
        limit = constraints.get(key)
        if limit is None:
            continue
        used = getattr(best, attr) if best else None
        rows.append({"constraint": key, "limit": limit, "used": used,
                     "headroom": (1 - used / limit) if used is not None else None})
    return rows
