"""Build the report's context from the store and render it with Jinja2 (autoescaped)."""

from __future__ import annotations

import os
import platform
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jinja2
import torch

from archsearch import __version__
from archsearch.report.charts import Series, family_colors, pareto_front, scatter_chart
from archsearch.store import RecommendationRecord, TaskRecord, TrialRecord
from archsearch.types import TrialStatus

TEMPLATES = Path(__file__).parent / "templates"


@dataclass(frozen=True)
class ReportInputs:
    task: TaskRecord
    trials: list[TrialRecord]
    recommendation: RecommendationRecord | None
    model_files: dict[str, str]
    dashboard_url: str | None = None


def environment() -> dict[str, str]:
    import optuna
    import ray

    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "none"
    return {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpu": platform.processor() or platform.machine(),
        "cpu_count": str(os.cpu_count()),
        "gpu": gpu,
        "torch": torch.__version__,
        "ray": ray.__version__,
        "optuna": optuna.__version__,
        "archsearch": __version__,
    }


def _charts(trials: list[TrialRecord], maximize: bool, metric_name: str) -> dict[str, str]:
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
        front = pareto_front([p for s in series for p in s.points], maximize)
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
                if best is None or (score > best if maximize else score < best):
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


def render_report(inputs: ReportInputs, out_file: Path) -> Path:
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(TEMPLATES),
                             autoescape=jinja2.select_autoescape(["html", "j2"]),
                             undefined=jinja2.StrictUndefined)
    task = inputs.task
    maximize = task.metric.direction == "maximize"
    counts = {status.value: 0 for status in TrialStatus}
    for trial in inputs.trials:
        counts[trial.status] = counts.get(trial.status, 0) + 1
    best = next((t for t in inputs.trials if t.id == task.best_trial_id), None)
    epochs_run = sum(t.epochs_run for t in inputs.trials)
    max_epochs = max((int(t.config["train"]["max_epochs"])
                      for t in inputs.trials), default=0)
    context: dict[str, Any] = {
        "task": task,
        "trials": inputs.trials,
        "best": best,
        "rec": inputs.recommendation,
        "counts": counts,
        "charts": _charts(inputs.trials, maximize, task.metric.name),
        "env": environment(),
        "model_files": {k: Path(v).name if k != "torchscript_error" else v
                        for k, v in inputs.model_files.items()},
        "dashboard_url": inputs.dashboard_url,
        "epochs_run": epochs_run,
        "epochs_budget": max_epochs * len(inputs.trials),
        "headroom": _headroom(task.constraints, best),
    }
    html = env.get_template("report.html.j2").render(**context)
    out_file.parent.mkdir(parents=True, exist_ok=True)
    tmp = out_file.with_suffix(".html.tmp")
    tmp.write_text(html, encoding="utf-8")
    tmp.replace(out_file)  # never leave a half-written report
    return out_file


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
