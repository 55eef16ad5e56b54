"""Run one search: Optuna decides (through the Ray-free coordinator), Ray Tune executes (the
adapter in ``ray_backend``)."""

from __future__ import annotations

import threading

from archsearch.data import PreparedData
from archsearch.search.coordinator import Coordinator
from archsearch.search.observer import SearchObserver
from archsearch.search.optuna_bridge import OptunaBridge
from archsearch.search.ray_backend import run_on_ray
from archsearch.search.settings import SearchSettings
from archsearch.space import SearchSpace
from archsearch.types import Constraints, Metric


def run_search(data: PreparedData, space: SearchSpace, constraints: Constraints,
               settings: SearchSettings, observer: SearchObserver,
               stop: threading.Event | None = None) -> None:
    """Run ``settings.trials_left`` trials (or trials until ``trial_minutes`` are spent), then
    on small data re-score the finalists (a resumed search's earlier trials among them, even
    when no trial is left to run); every event goes to ``observer``. Setting ``stop`` winds
    the search down: no trial starts, and each running one stops at its next result."""
    if settings.trials_left == 0 and not settings.cross_validates(data):
        return  # a resume with every trial done and no finalists' folds to run
    metric = Metric.for_task(data.task)
    space = space.under(constraints, data.task)
    options = settings.options
    bridge = OptunaBridge.create(space, metric, options.seed, options.sampler, options.pruner,
                                 space.max_rounds(), settings.optuna_storage,
                                 settings.study_name, options.objectives, options.rung_seconds)
    bridge.requeue(list(settings.rerun_numbers))
    used = bridge.enqueue_initial_design(list(settings.warm_start), settings.family_order)
    if settings.warm_start:
        observer.on_note(f"Warm start: {used} of {len(settings.warm_start)} configuration(s) "
                         "that won on similar past tasks fit this space and run first.")
    run_on_ray(Coordinator(bridge, observer, constraints, options.seed, stop, settings.finished),
               data, settings)
