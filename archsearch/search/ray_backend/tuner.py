"""The Ray Tune run of a search: its resources, the Tuner and, on small data, the finalists."""

from __future__ import annotations

import math
import time

import ray
from ray import tune

from archsearch.data import PreparedData
from archsearch.search.budget import trial_constraints
from archsearch.search.coordinator import Coordinator
from archsearch.search.ray_backend.finalists import cross_validate_finalists
from archsearch.search.ray_backend.runtime import ray_runtime
from archsearch.search.ray_backend.tune_parts import (
    OptunaPrunerScheduler,
    OptunaSearcher,
    RelayCallback,
    register_coordinator,
    trainable,
    unregister_coordinator,
)
from archsearch.search.scratch import tune_scratch
from archsearch.search.selection import FinalistPlan
from archsearch.search.settings import SearchSettings
from archsearch.trial.crossval import fold_count


def run_on_ray(coordinator: Coordinator, data: PreparedData, settings: SearchSettings) -> None:
    """The trials as a Ray Tune run whose searcher, scheduler and callback defer to
    ``coordinator``, then the finalists' folds as Ray tasks."""
    key = settings.study_name
    register_coordinator(key, coordinator)
    try:
        _tune(coordinator, data, settings, key)
    finally:
        unregister_coordinator(key)


def _tune(coordinator: Coordinator, data: PreparedData, settings: SearchSettings,
          key: str) -> None:
    options, observer, constraints = settings.options, coordinator.observer, coordinator.constraints
    # The scratch folder inside the runtime: once Ray has started, a SIGTERM ends the driver
    # with SystemExit, and the folder is removed on the way out.
    with ray_runtime(settings.ray_address) as runtime, \
            tune_scratch(settings.optuna_storage, settings.study_name) as work_dir:
        observer.on_ray_ready(runtime.dashboard_url, dict(runtime.resources))
        gpus = options.gpus_per_trial
        if gpus is None:
            gpus = 1.0 if runtime.gpus >= 1 and constraints.device != "cpu" else 0.0
        slots = runtime.cpus / options.cpus_per_trial
        if gpus > 0:
            slots = min(slots, runtime.gpus / gpus)
        resources = {"cpu": options.cpus_per_trial, "gpu": gpus}
        coordinator.constraints = trial_constraints(
            constraints, settings.trial_minutes, max(1, math.floor(slots)))
        data_ref = ray.put(data)  # once per search: trials and folds read it from the store
        plan = None
        if settings.cross_validates(data):
            # The finalists may claim up to half of the time the search has.
            claim = (settings.deadline - time.time()) / 2 if settings.deadline else math.inf
            plan = FinalistPlan(fold_count(data, options.cv_folds), settings.cv_finalists,
                                max(1, math.floor(slots)), len(data.val), claim)
            coordinator.finalists, coordinator.finalists_deadline = plan, settings.deadline
        if settings.trials_left != 0:  # 0: a resume whose trials are all done
            _run_trials(coordinator, data_ref, resources, slots, settings, key, work_dir)
        if plan is not None and coordinator.completed and not coordinator.stop.is_set():
            cross_validate_finalists(coordinator, plan, data_ref, resources, options.seed,
                                     observer, settings.deadline,
                                     share_idle_cpus=runtime.embedded)


def _run_trials(coordinator: Coordinator, data_ref: ray.ObjectRef, resources: dict[str, float],
                slots: float, settings: SearchSettings, key: str, work_dir: str) -> None:
    """The trials, as one Ray Tune run whose searcher, scheduler and callback defer to
    ``coordinator`` (registered under ``key``)."""
    tuner = tune.Tuner(
        tune.with_resources(tune.with_parameters(trainable, data=data_ref), resources),
        tune_config=tune.TuneConfig(
            search_alg=OptunaSearcher(key),
            scheduler=OptunaPrunerScheduler(key),
            num_samples=settings.trials_left or -1,  # -1: until the time budget ends
            max_concurrent_trials=max(1, math.floor(slots)),
            time_budget_s=settings.trial_minutes * 60 if settings.trial_minutes else None,
            reuse_actors=True,
            trial_dirname_creator=lambda trial: f"trial_{trial.config['number']}",
            trial_name_creator=lambda trial: (f"{settings.study_name}-{trial.config['number']}"
                                              f"-{trial.config['arch']['family']}"),
        ),
        run_config=tune.RunConfig(
            name=settings.study_name,
            storage_path=work_dir,
            callbacks=[RelayCallback(key)],
            verbose=0,
            # a trial's latest checkpoint only: its latest snapshot, then its result's weights
            checkpoint_config=tune.CheckpointConfig(num_to_keep=1),
            # A trial's own errors are caught and recorded as `failed`; what reaches Ray
            # is a dead worker (killed, out of memory), which is worth one retry.
            failure_config=tune.FailureConfig(max_failures=1),
        ),
    )
    if settings.trial_minutes:  # Tune's time budget runs from fit()
        coordinator.trials_end = time.time() + settings.trial_minutes * 60
    tuner.fit()
