"""Run one search: Ray Tune executes, Optuna decides."""

from __future__ import annotations

import math
import tempfile
import time
from dataclasses import dataclass, field

import ray
from ray import tune

from archsearch.data import PreparedData
from archsearch.options import SearchOptions
from archsearch.search.budget import trial_constraints
from archsearch.search.coordinator import Coordinator
from archsearch.search.finalists import cross_validate_finalists
from archsearch.search.observer import SearchObserver
from archsearch.search.optuna_bridge import OptunaBridge
from archsearch.search.runtime import ray_runtime
from archsearch.search.selection import FinalistPlan
from archsearch.search.tune_parts import (
    OptunaPrunerScheduler,
    OptunaSearcher,
    RelayCallback,
    lookup_coordinator,
    register_coordinator,
    trainable,
    unregister_coordinator,
)
from archsearch.space import SearchSpace
from archsearch.trial.crossval import fold_count
from archsearch.types import Constraints, Metric, TrainConfig


@dataclass(frozen=True)
class SearchSettings:
    """One run of the search: the task's options, what is left of its budget, and where it
    runs."""

    options: SearchOptions = field(default_factory=SearchOptions)
    trials_left: int | None = None  # None: trials run until trial_minutes is spent
    trial_minutes: float | None = None  # for the trials; the finalists have ``deadline``
    ray_address: str | None = None
    optuna_storage: str | None = None
    study_name: str = "archsearch"
    work_dir: str | None = None  # where Ray Tune keeps checkpoints (absolute)
    rerun_numbers: tuple[int, ...] = ()  # unfinished trials of a resumed search, run again
    warm_start: tuple[dict, ...] = ()  # stored trial configs of similar past tasks' winners
    family_order: tuple[str, ...] = ()  # the initial design's order (the instant ranking)
    cv_below: int = 500  # "small": fewer train+validation sequences than this
    cv_finalists: int = 5  # the best trial of each of this many families, at most
    deadline: float | None = None  # time.time() by which the finalists must be re-scored


def run_search(data: PreparedData, space: SearchSpace, constraints: Constraints,
               settings: SearchSettings, observer: SearchObserver) -> None:
    """Run ``settings.trials_left`` trials (or trials until ``trial_minutes`` are spent);
    every event goes to ``observer``."""
    metric = Metric.for_task(data.task)
    space = space.under(constraints, data.task)
    options = settings.options
    bridge = OptunaBridge.create(space, metric, options.seed, options.sampler, options.pruner,
                                 _max_rounds(space), settings.optuna_storage,
                                 settings.study_name, options.objectives, options.rung_seconds)
    bridge.requeue(list(settings.rerun_numbers))
    used = bridge.enqueue_initial_design(list(settings.warm_start), settings.family_order)
    if settings.warm_start:
        observer.on_note(f"Warm start: {used} of {len(settings.warm_start)} configuration(s) "
                         "that won on similar past tasks fit this space and run first.")
    key = settings.study_name
    register_coordinator(key, Coordinator(bridge, observer, constraints, options.seed))
    try:
        _run_tuner(data, constraints, settings, observer, key)
    finally:
        unregister_coordinator(key)


def _max_rounds(space: SearchSpace) -> int:
    """Validation rounds of the largest fixed step budget in ``space`` (Hyperband's maximum
    resource and the median pruner's warm-up are counted in rounds)."""
    fixed = {p.name: p.value for p in space.training if p.type == "fixed"}
    defaults = TrainConfig()
    return TrainConfig(max_steps=int(fixed.get("max_steps", defaults.max_steps)),
                       eval_every=int(fixed.get("eval_every", defaults.eval_every))).max_rounds


def _run_tuner(data: PreparedData, constraints: Constraints, settings: SearchSettings,
               observer: SearchObserver, key: str) -> None:
    options = settings.options
    with ray_runtime(settings.ray_address) as runtime:
        observer.on_ray_ready(runtime.dashboard_url, dict(runtime.resources))
        gpus = options.gpus_per_trial
        if gpus is None:
            gpus = 1.0 if runtime.gpus >= 1 and constraints.device != "cpu" else 0.0
        slots = runtime.cpus / options.cpus_per_trial
        if gpus > 0:
            slots = min(slots, runtime.gpus / gpus)
        resources = {"cpu": options.cpus_per_trial, "gpu": gpus}
        lookup_coordinator(key).constraints = trial_constraints(
            constraints, settings.trial_minutes, max(1, math.floor(slots)))
        work_dir = settings.work_dir or tempfile.mkdtemp(prefix="archsearch-tune-")
        data_ref = ray.put(data)  # once per search: trials and folds read it from the store
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
                # A trial's own errors are caught and recorded as `failed`; what reaches Ray
                # is a dead worker (killed, out of memory), which is worth one retry.
                failure_config=tune.FailureConfig(max_failures=1),
            ),
        )
        coordinator = lookup_coordinator(key)
        n_small = len(data.train) + len(data.val)
        plan = None
        if options.cv_folds >= 2 and n_small < settings.cv_below:
            # The finalists may claim up to half of the time the search has.
            claim = (settings.deadline - time.time()) / 2 if settings.deadline else math.inf
            plan = FinalistPlan(fold_count(data, options.cv_folds), settings.cv_finalists,
                                max(1, math.floor(slots)), len(data.val), claim)
            coordinator.finalists, coordinator.finalists_deadline = plan, settings.deadline
        if settings.trial_minutes:  # Tune's time budget runs from fit()
            coordinator.trials_end = time.time() + settings.trial_minutes * 60
        tuner.fit()
        if plan is not None and coordinator.completed:
            cross_validate_finalists(coordinator, plan, data_ref, resources, options.seed,
                                     observer, settings.deadline)
