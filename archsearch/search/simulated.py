"""A simulated backend: the search's decisions (:class:`~archsearch.search.coordinator.
Coordinator`, Optuna's sampler and pruner, the time-budget rules) driven by tabulated learning
curves on a simulated clock instead of Ray Tune and real training, as Syne Tune's simulator
backend does. A search over hundreds of trials runs in a second, so pruning, budgets and the
finalists' choice are tested on replayed curves (tests/test_simulated_search.py).

It plays the parts of Ray Tune and of the trial runner that the coordinator sees: ``slots``
trials at a time, one result per validation round (``EVENT: epoch``), a trial stopped when the
pruner says so, when its rounds are done, when its time limit (``max_trial_minutes``), its
``train_until`` or its patience is spent (scored on its best round, as
``archsearch.trial.runner`` does), or when the time budget ends (then it ends without a final
report, as under Ray Tune).
"""

from __future__ import annotations

import dataclasses
import heapq
import math
from collections.abc import Callable
from dataclasses import dataclass, field

from archsearch.search.coordinator import EVENT, Coordinator, outcome_to_dict
from archsearch.trial import TrialSpec
from archsearch.types import CostMeasurement, TrialOutcome, TrialStatus


@dataclass(frozen=True)
class Curve:
    """What one configuration does when trained: its validation score after each round and
    the training seconds a round takes (the start, the cost measurement and the test are
    ``start_seconds``), and what it costs (the Pareto pruner of a multi-objective search
    compares trials by it)."""

    scores: tuple[float, ...]
    seconds_per_round: float
    start_seconds: float = 0.0
    cost: CostMeasurement | None = None  # measured before training (reported with round 1)


CurveOf = Callable[[TrialSpec], Curve]  # the tabulated learning curve of a configuration


@dataclass
class Simulation:
    """What happened: when each trial started (simulated seconds, by number), every trial's
    number and how it ended in order of ending, and the simulated time when the search ended."""

    starts: dict[int, float] = field(default_factory=dict)
    ended: list[tuple[int, str]] = field(default_factory=list)
    seconds: float = 0.0


@dataclass(order=True)
class _Running:
    next_event: float
    tune_id: str = field(compare=False)
    spec: TrialSpec = field(compare=False)
    curve: Curve = field(compare=False)
    rounds: int = field(default=0, compare=False)
    best: tuple[int, float] | None = field(default=None, compare=False)  # (round, score)


def simulate(coordinator: Coordinator, curve_of: CurveOf, budget_trials: int | None,
             slots: int = 1, budget_seconds: float | None = None) -> Simulation:
    """Run the search ``coordinator`` decides over replayed ``curve_of`` curves: at most
    ``budget_trials`` trials (None: until ``budget_seconds`` of simulated time are spent),
    ``slots`` at a time."""
    if budget_trials is None and budget_seconds is None:
        raise ValueError("a simulation needs a trial budget, a time budget or both")
    now = 0.0
    coordinator.clock = lambda: now
    if budget_seconds is not None:
        coordinator.trials_end = budget_seconds
    result = Simulation()
    running: list[_Running] = []
    started = 0
    asking = True
    while True:
        while asking and len(running) < slots and (budget_trials is None
                                                  or started < budget_trials):
            tune_id = f"sim-{started}"
            config = coordinator.suggest(tune_id)
            if config is None:  # too little time left to start one: no more trials
                asking = False
                break
            started += 1
            result.starts[config["number"]] = now
            spec = coordinator.specs[config["number"]]
            curve = curve_of(spec)
            heapq.heappush(running, _Running(now + curve.start_seconds
                                             + curve.seconds_per_round, tune_id, spec, curve))
        if not running:
            break
        trial = heapq.heappop(running)
        if budget_seconds is not None and trial.next_event > budget_seconds:
            now = budget_seconds  # the time budget ends every trial still running
            for stopped in [trial, *running]:
                coordinator.complete(stopped.tune_id, None, None)
                result.ended.append((coordinator.numbers[stopped.tune_id], "stopped"))
            running = []
            break
        now = trial.next_event
        ended = _round(coordinator, trial, now)
        if ended is None:
            trial.next_event = now + trial.curve.seconds_per_round
            heapq.heappush(running, trial)
        else:
            result.ended.append((coordinator.numbers[trial.tune_id], ended))
    result.seconds = now
    return result


def _round(coordinator: Coordinator, trial: _Running, now: float) -> str | None:
    """Report ``trial``'s next round; how it ended (None: it goes on)."""
    trial.rounds += 1
    score = trial.curve.scores[min(trial.rounds, len(trial.curve.scores)) - 1]
    metric = coordinator.bridge.metric
    if trial.best is None or metric.better(score, trial.best[1]):
        trial.best = (trial.rounds, score)
    seconds = trial.rounds * trial.curve.seconds_per_round
    report = {EVENT: "epoch", "epoch": trial.rounds, "train_loss": math.nan,
              "val_score": score, "elapsed_s": seconds}
    if trial.curve.cost is not None:
        report["cost"] = dataclasses.asdict(trial.curve.cost)
    if coordinator.result(trial.tune_id, report):
        return TrialStatus.PRUNED.value
    train = trial.spec.train
    limit = (trial.spec.constraints.max_trial_minutes or math.inf) * 60.0
    patience_spent = 0 < train.patience <= trial.rounds - trial.best[0]
    late = trial.spec.train_until is not None and now >= trial.spec.train_until
    if (trial.rounds < train.max_rounds and seconds < limit and not patience_spent
            and not late):
        return None
    outcome = TrialOutcome(TrialStatus.COMPLETED, trial.curve.cost, trial.rounds,
                           trial.best[0], trial.best[1], trial.best[1], seconds)
    coordinator.complete(trial.tune_id, {EVENT: "final", "outcome": outcome_to_dict(outcome)}, None)
    return TrialStatus.COMPLETED.value
