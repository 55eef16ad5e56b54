"""Re-score the best trials by k-fold cross-validation, as Ray tasks on the same cluster."""

from __future__ import annotations

import dataclasses

import ray
import torch

from archsearch.data import PreparedData
from archsearch.search.observer import SearchObserver
from archsearch.search.tune_parts import Coordinator
from archsearch.trial import TrialSpec
from archsearch.trial.crossval import cross_validation_folds, fold_score, summarise


@ray.remote
def _score_fold(spec: TrialSpec, data: PreparedData, k: int, fold: int, seed: int) -> float | None:
    cpus = ray.get_runtime_context().get_assigned_resources().get("CPU", 1.0)
    torch.set_num_threads(max(1, int(cpus)))
    return fold_score(spec, cross_validation_folds(data, k, seed)[fold])


def cross_validate_finalists(coordinator: Coordinator, data_ref: ray.ObjectRef, k: int,
                             n_finalists: int, resources: dict[str, float], seed: int,
                             observer: SearchObserver) -> None:
    sign = coordinator.bridge.metric.sign
    finalists = sorted(coordinator.completed.items(),
                       key=lambda item: sign * item[1].val_score, reverse=True)[:n_finalists]
    observer.on_note(f"Small data: re-scoring the {len(finalists)} best trials by {k}-fold "
                     "cross-validation on train+validation (the test split stays unused).")
    task = _score_fold.options(num_cpus=resources["cpu"], num_gpus=resources["gpu"])
    pending = {}
    for number, outcome in finalists:
        # Each fold trains as long as the trial's best epoch, then scores its last epoch.
        spec = coordinator.specs[number]
        spec = dataclasses.replace(spec, train=dataclasses.replace(
            spec.train, max_epochs=outcome.best_epoch or spec.train.max_epochs))
        pending[number] = [task.remote(spec, data_ref, k, fold, seed) for fold in range(k)]
    for number, refs in pending.items():
        summary = summarise(ray.get(refs))
        if summary is not None:
            observer.on_cross_validation(number, summary[0], summary[1], len(refs))
