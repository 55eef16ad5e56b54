"""Re-score the best trial of each competitive family by k-fold cross-validation, as Ray tasks
on the same cluster, within the time the search has left."""

from __future__ import annotations

import math
import time

import ray
import torch

from archsearch.data import PreparedData
from archsearch.search.coordinator import Coordinator
from archsearch.search.observer import SearchObserver
from archsearch.search.selection import FinalistPlan
from archsearch.trial import TrialSpec
from archsearch.trial.crossval import (
    FoldFit,
    cross_validation_folds,
    fold_fit,
    refit_spec,
    summarise,
)


@ray.remote
def _fit_fold(spec: TrialSpec, data: PreparedData, k: int, fold: int, seed: int) -> FoldFit:
    cpus = ray.get_runtime_context().get_assigned_resources().get("CPU", 1.0)
    torch.set_num_threads(max(1, int(cpus)))
    return fold_fit(spec, cross_validation_folds(data, k, seed)[fold])


def cross_validate_finalists(coordinator: Coordinator, plan: FinalistPlan,
                             data_ref: ray.ObjectRef, resources: dict[str, float], seed: int,
                             observer: SearchObserver, deadline: float | None = None) -> None:
    """The best trial of each competitive family, re-scored by k-fold cross-validation as Ray
    tasks (``plan`` chooses them and k); a finalist whose folds miss ``deadline`` keeps its
    single-split score."""
    families = coordinator.families()
    seconds_left = math.inf if deadline is None else deadline - time.time()
    k, finalists = plan.pick(coordinator.completed, families, coordinator.bridge.metric,
                             seconds_left)
    if not finalists:
        observer.on_note(f"Small data, but no time left to re-score a finalist by {k}-fold "
                         "cross-validation: the pick rests on one validation split.")
        return
    # A resume keeps the folds its earlier sitting ran (their scores and models are stored).
    finalists = [(number, outcome) for number, outcome in finalists
                 if coordinator.cross_validated.get(number) != k]
    if not finalists:
        return
    names = ", ".join(f"{families[number]} (trial {number})" for number, _ in finalists)
    observer.on_note(f"Small data: re-scoring the best trial of {len(finalists)} families by "
                     f"{k}-fold cross-validation on train+validation (the test split stays "
                     f"unused): {names}.")
    task = _fit_fold.options(num_cpus=resources["cpu"], num_gpus=resources["gpu"])
    pending = {}
    for number, outcome in finalists:
        spec = refit_spec(coordinator.specs[number], outcome.best_epoch)
        pending[number] = [task.remote(spec, data_ref, k, fold, seed) for fold in range(k)]
    for number, refs in pending.items():
        timeout = None if deadline is None else max(0.0, deadline - time.time())
        done, _ = ray.wait(refs, num_returns=len(refs), timeout=timeout)
        if len(done) < len(refs):  # the estimate was short (a loaded machine): keep the budget
            for ref in refs:
                ray.cancel(ref, force=True)
            observer.on_note(f"  trial {number} {families[number]}: its folds did not finish "
                             "within the time budget; it keeps its single-split score.")
            continue
        fits = ray.get(refs)
        summary = summarise(fits)
        if summary is None:
            errors = [fit.error for fit in fits if fit.score is None]
            observer.on_note(f"  trial {number} {families[number]}: {len(errors)} of {k} folds "
                             f"failed (first: {errors[0]}); it keeps its single-split score.")
            continue
        observer.on_cross_validation(number, summary[0], summary[1], [fit.state for fit in fits])
