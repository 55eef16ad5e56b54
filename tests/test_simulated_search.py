"""The search's decisions on replayed learning curves (archsearch/search/simulated.py): Optuna's
sampler and pruner, the coordinator and the time-budget rules, without Ray or training, so a
search of dozens of trials takes well under a second of real time."""


import pytest

from archsearch.search.budget import (
    MIN_TRIAL_SECONDS,
    MIN_TRIALS_PER_TIME_BUDGET,
    trial_constraints,
)
from archsearch.search.coordinator import Coordinator
from archsearch.search.optuna_bridge import OptunaBridge
from archsearch.search.selection import FinalistPlan
from archsearch.search.simulated import Curve, simulate
from archsearch.space import load_space
from archsearch.types import Constraints, Metric, Objectives

MSE = Metric("mse", "minimize")
ROUNDS = 20  # the default space: 300 steps, validation every 15


class Recorder:
    """An observer that keeps what the search tells the outside world."""

    def __init__(self):
        self.started, self.pruned, self.ended = {}, {}, {}

    def on_trial_start(self, number, arch, train):
        self.started[number] = arch.family

    def on_trial_pruned(self, number, epoch):
        self.pruned[number] = epoch

    def on_trial_end(self, number, outcome, checkpoint_dir):
        self.ended[number] = outcome

    def __getattr__(self, name):  # the events these tests do not look at
        return lambda *args, **kwargs: None


def coordinator(constraints=None, pruner="median", seed=0):
    bridge = OptunaBridge.create(load_space(), MSE, seed=seed, sampler="tpe", pruner=pruner,
                                 max_rounds=ROUNDS, storage=None, study_name="sim",
                                 objectives=Objectives.parse("quality"))
    bridge.enqueue_initial_design([])
    recorder = Recorder()
    return Coordinator(bridge, recorder, constraints or Constraints(), seed), recorder


def learns(final: float, seconds: float = 1.0):
    """A curve that falls from 1.0 to ``final`` over the rounds."""
    return Curve(tuple(1.0 - (1.0 - final) * r / ROUNDS for r in range(1, ROUNDS + 1)), seconds)


GOOD, FLAT = learns(0.05), Curve((1.0,) * ROUNDS, 1.0)


def test_the_median_pruner_stops_a_family_that_does_not_learn_after_its_warm_up():
    search, seen = coordinator()
    run = simulate(search, lambda spec: FLAT if spec.arch.family == "transformer" else GOOD,
                   budget_trials=60, slots=2)
    assert len(run.ended) == 60 and len(seen.started) == 60  # the budget, met exactly
    flat = [n for n, family in seen.started.items() if family == "transformer"]
    assert flat and all(n in seen.pruned for n in flat[1:])  # all but the first measured
    assert all(epoch >= ROUNDS // 5 for epoch in seen.pruned.values())  # warm-up: no verdict
    assert all(seen.ended[n].val_score == pytest.approx(0.05)
               for n, family in seen.started.items()
               if family != "transformer" and n in seen.ended)


def test_without_a_pruner_a_trial_runs_its_rounds_or_until_its_patience_is_spent():
    search, seen = coordinator(pruner="none")
    simulate(search, lambda spec: FLAT if spec.arch.family == "gru" else GOOD,
             budget_trials=14, slots=2)
    assert not seen.pruned and len(seen.ended) == 14
    for number, outcome in seen.ended.items():
        patience = search.specs[number].train.patience
        flat = seen.started[number] == "gru"
        assert outcome.epochs_run == (1 + patience if flat else ROUNDS)
        assert outcome.best_epoch == (1 if flat else ROUNDS)


def test_a_time_budget_starts_no_trial_it_cannot_finish_and_stops_none_that_started_late():
    budget = 600.0  # 10 simulated minutes, 2 slots; every round takes 5 s, a trial 100 s
    share = trial_constraints(Constraints(), budget / 60, 2)
    search, seen = coordinator(share)
    run = simulate(search, lambda spec: learns(0.1, seconds=5.0), budget_trials=None, slots=2,
                   budget_seconds=budget)
    assert run.seconds <= budget
    assert all(how != "stopped" for _, how in run.ended)  # late trials got the time left
    limits = [search.specs[n].constraints.max_trial_minutes * 60 for n in seen.started]
    assert max(limits) == pytest.approx(budget * 2 / MIN_TRIALS_PER_TIME_BUDGET)
    assert min(limits) < 60.0  # the last trials trained for what was left, not their share
    assert max(run.starts.values()) <= budget - MIN_TRIAL_SECONDS
    assert len(seen.started) == len(run.ended) == len(run.starts)


def test_finalists_come_from_replayed_results():
    search, _ = coordinator(pruner="none")
    curves = {"gru": learns(0.02), "lstm": learns(0.03), "tcn": learns(0.2)}
    simulate(search, lambda spec: curves.get(spec.arch.family, FLAT), budget_trials=20,
             slots=2)
    families = search.families()
    plan = FinalistPlan(k=5, n_families=3, slots=2, n_val=10)  # tcn's 0.2 is far behind
    _, picked = plan.pick(search.completed, families, MSE, seconds_left=1e9)
    assert [families[n] for n, _ in picked] == ["gru", "lstm"]


def test_trials_end_early_enough_for_every_competitive_finalist_to_be_cross_validated():
    # Every family learns alike (all competitive); a round takes 4 s, so one finalist's five
    # folds take minutes. Without the plan the trials use the whole budget and the finalists
    # would get no time; with it they stop when the folds need what is left.
    plan = FinalistPlan(k=5, n_families=3, slots=2, n_val=10)
    ends = {}
    for planned in (False, True):
        search, _ = coordinator(pruner="none")
        if planned:
            search.finalists, search.finalists_deadline = plan, 1000.0
        run = simulate(search, lambda spec: learns(0.05, seconds=4.0), budget_trials=None,
                       slots=2, budget_seconds=1000.0)
        needed = plan.seconds_needed(search.completed, search.families(), MSE)
        assert len(plan.candidates(search.completed, search.families(), MSE)) == 3
        ends[planned] = run.seconds
    assert ends[False] + needed > 1000.0
    assert ends[True] + needed <= 1000.0
