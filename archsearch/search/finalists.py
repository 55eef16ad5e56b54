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
from archsearch.trial import TrialSpec
from archsearch.trial.crossval import (
    FoldFit,
    cross_validation_folds,
    fold_fit,
    refit_spec,
    summarise,
)
from archsearch.types import Metric, TrialOutcome

# What a fold costs besides its training: the cost measurement, a validation per round, the
# final test and the Ray task's start (seconds, measured here at 3-5 s on small data).
FOLD_OVERHEAD_SECONDS = 5.0


@ray.remote
def _fit_fold(spec: TrialSpec, data: PreparedData, k: int, fold: int, seed: int) -> FoldFit | None:
    cpus = ray.get_runtime_context().get_assigned_resources().get("CPU", 1.0)
    torch.set_num_threads(max(1, int(cpus)))
    return fold_fit(spec, cross_validation_folds(data, k, seed)[fold])


def pick_finalists(completed: dict[int, TrialOutcome], metric: Metric, families: dict[int, str],
                   n_families: int, k: int, slots: int,
                   seconds_left: float) -> list[tuple[int, TrialOutcome]]:
    """The best trial of each of the ``n_families`` best families (so every competitive family
    is judged on more than one split, not only the top trials of one family), those that fit
    in ``seconds_left`` in rank order: a finalist costs k refits of its trial's training up to
    its best round, ``slots`` at a time."""
    best: dict[str, tuple[int, TrialOutcome]] = {}
    for number, outcome in completed.items():
        held = best.get(families[number])
        if held is None or metric.better(outcome.val_score, held[1].val_score):
            best[families[number]] = (number, outcome)
    ranked = sorted(best.values(), key=lambda item: metric.sign * item[1].val_score,
                    reverse=True)[:n_families]
    chosen, spent = [], 0.0
    for number, outcome in ranked:
        per_round = outcome.train_seconds / max(1, outcome.epochs_run)
        refit = per_round * (outcome.best_epoch or outcome.epochs_run) + FOLD_OVERHEAD_SECONDS
        cost = k * refit / max(1, slots)
        if spent + cost > seconds_left:
            continue  # too slow to re-score in time; a cheaper family may still fit
        chosen.append((number, outcome))
        spent += cost
    return chosen


def cross_validate_finalists(coordinator: Coordinator, data_ref: ray.ObjectRef, k: int,
                             n_families: int, resources: dict[str, float], seed: int,
                             observer: SearchObserver, slots: int = 1,
                             deadline: float | None = None) -> None:
    families = {number: spec.arch.family for number, spec in coordinator.specs.items()}
    seconds_left = math.inf if deadline is None else deadline - time.time()
    finalists = pick_finalists(coordinator.completed, coordinator.bridge.metric, families,
                               n_families, k, slots, seconds_left)
    if not finalists:
        observer.on_note(f"Small data, but no time left to re-score a finalist by {k}-fold "
                         "cross-validation: the pick rests on one validation split.")
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
        if summary is not None:
            observer.on_cross_validation(number, summary[0], summary[1],
                                         [fit.state for fit in fits])
