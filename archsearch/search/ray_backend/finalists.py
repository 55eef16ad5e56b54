"""Re-score the best trial of each competitive family by k-fold cross-validation, as Ray tasks
on the same cluster, within the time the search has left."""

from __future__ import annotations

import dataclasses
import math
import time

import ray
import torch

from archsearch.blocks import FAMILIES
from archsearch.data import PreparedData
from archsearch.search.coordinator import Coordinator
from archsearch.search.observer import SearchObserver
from archsearch.search.selection import FinalistPlan, fold_cpus
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
    fit = fold_fit(spec, cross_validation_folds(data, k, seed)[fold])
    return dataclasses.replace(fit, threads=torch.get_num_threads())


def cross_validate_finalists(coordinator: Coordinator, plan: FinalistPlan,
                             data_ref: ray.ObjectRef, resources: dict[str, float], seed: int,
                             observer: SearchObserver, deadline: float | None = None,
                             share_idle_cpus: bool = False) -> None:
    """The best trial of each competitive family, re-scored by k-fold cross-validation as Ray
    tasks (``plan`` chooses them and k); a finalist whose folds miss ``deadline`` keeps its
    single-split score. ``share_idle_cpus``: the last folds of a family whose training gains
    from threads may take the CPUs the others leave idle (see :func:`fold_cpus`), for a runtime
    of one node that runs nothing else."""
    families = coordinator.families()
    seconds_left = math.inf if deadline is None else deadline - time.time()
    k, finalists = plan.pick(coordinator.completed, families, coordinator.bridge.metric,
                             seconds_left)
    if not finalists:
        observer.on_note(f"Small data, but no time left to re-score a finalist by {k}-fold "
                         "cross-validation: the pick rests on one validation split.")
        return
    # A resume keeps the cross-validations its earlier sitting ended (scores, models stored).
    finalists = [(number, outcome) for number, outcome in finalists
                 if coordinator.cross_validated.get(number) != k]
    if not finalists:
        return
    names = ", ".join(f"{families[number]} (trial {number})" for number, _ in finalists)
    observer.on_note(f"Small data: re-scoring the best trial of {len(finalists)} families by "
                     f"{k}-fold cross-validation on train+validation (the test split stays "
                     f"unused): {names}.")
    fits: dict[int, dict[int, FoldFit]] = {}
    jobs: list[tuple[int, int]] = []
    for number, _ in finalists:
        # A resume keeps each fold an earlier sitting finished, so a long cross-validation
        # stopped part way loses only the folds that were running.
        fits[number] = observer.kept_folds(number, k)
        if fits[number]:
            observer.on_note(f"  trial {number} {families[number]}: {len(fits[number])} of {k} "
                             "folds kept from an earlier sitting.")
        jobs += [(number, fold) for fold in range(k) if fold not in fits[number]]
    specs = {number: refit_spec(coordinator.specs[number], outcome.best_epoch)
             for number, outcome in finalists}
    # All of the node's: Ray Tune's trial actors end with the Tuner but free their CPUs a while
    # later (a tsc run read fewer than two free then, and no fold shared); Ray starts the wider
    # fold once they are free.
    free = ray.cluster_resources().get("CPU", 0.0) if share_idle_cpus else 0.0
    pending: dict[ray.ObjectRef, tuple[int, int]] = {}
    cpus_of_job = fold_cpus(len(jobs), resources["cpu"], free,
                            [FAMILIES[families[number]].threads_speed_training
                             for number, _ in jobs])
    for (number, fold), cpus in zip(jobs, cpus_of_job, strict=True):
        task = _fit_fold.options(num_cpus=cpus, num_gpus=resources["gpu"])
        pending[task.remote(specs[number], data_ref, k, fold, seed)] = (number, fold)
    for number in [number for number, folds in fits.items() if len(folds) == k]:
        _conclude(number, families[number], fits[number], observer)
    while pending:
        timeout = None if deadline is None else max(0.0, deadline - time.time())
        done, _ = ray.wait(list(pending), num_returns=1, timeout=timeout)
        if not done:  # the estimate was short (a loaded machine): keep the budget
            for ref in pending:
                ray.cancel(ref, force=True)
            for number in sorted({number for number, _ in pending.values()}):
                observer.on_note(f"  trial {number} {families[number]}: its folds did not "
                                 "finish within the time budget; it keeps its single-split "
                                 "score.")
            return
        number, fold = pending.pop(done[0])
        fits[number][fold] = fit = ray.get(done[0])
        observer.on_fold(number, k, fold, fit)
        if len(fits[number]) == k:
            _conclude(number, families[number], fits[number], observer)


def _conclude(number: int, family: str, by_fold: dict[int, FoldFit],
              observer: SearchObserver) -> None:
    """A finalist whose k folds have all ended: its cross-validated score, or why it keeps its
    single-split score."""
    fits = [by_fold[fold] for fold in sorted(by_fold)]
    summary = summarise(fits)
    if summary is None:
        errors = [fit.error for fit in fits if fit.score is None]
        observer.on_note(f"  trial {number} {family}: {len(errors)} of {len(fits)} folds "
                         f"failed (first: {errors[0]}); it keeps its single-split score.")
        return
    observer.on_cross_validation(number, summary[0], summary[1], [fit.state for fit in fits])
