"""The search's decisions on replayed learning curves (archsearch/search/simulated.py): Optuna's
sampler and pruner, the coordinator and the time-budget rules, without Ray or training, so a
search of dozens of trials takes well under a second of real time."""


import dataclasses

import pytest

from archsearch.search.budget import (
    MIN_TRIAL_SECONDS,
    MIN_TRIALS_PER_TIME_BUDGET,
    trial_constraints,
)
from archsearch.search.coordinator import Coordinator
from archsearch.search.optuna_bridge import OptunaBridge
from archsearch.search.selection import FinalistPlan
from archsearch.search.settings import FinishedTrial
from archsearch.search.simulated import Curve, simulate
from archsearch.space import load_space
from archsearch.types import Constraints, CostMeasurement, Metric, Objectives

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


def coordinator(constraints=None, pruner="median", seed=0, objectives="quality", study=None,
                rerun=(), sampler="tpe", finished=()):
    """A coordinator over a new study, or over ``study`` (a resumed search: ``rerun`` queued,
    ``finished`` kept).
    The pruner tests of 60 trials sample at random: a pruner's verdicts do not depend on how
    configurations are proposed, and TPE's multivariate proposals cost ~0.1 s a trial."""
    bridge = OptunaBridge.create(load_space(), MSE, seed=seed, sampler=sampler, pruner=pruner,
                                 max_rounds=ROUNDS, storage=None, study_name="sim",
                                 objectives=Objectives.parse(objectives))
    if study is not None:
        bridge.study = study
    bridge.requeue(list(rerun))
    bridge.enqueue_initial_design([])
    recorder = Recorder()
    return Coordinator(bridge, recorder, constraints or Constraints(), seed,
                       finished=finished), recorder


def learns(final: float, seconds: float = 1.0):
    """A curve that falls from 1.0 to ``final`` over the rounds."""
    return Curve(tuple(1.0 - (1.0 - final) * r / ROUNDS for r in range(1, ROUNDS + 1)), seconds)


GOOD, FLAT = learns(0.05), Curve((1.0,) * ROUNDS, 1.0)


def test_the_median_pruner_stops_a_family_that_does_not_learn_after_its_warm_up():
    search, seen = coordinator(sampler="random")
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


def test_a_stop_starts_no_further_trial_and_ends_the_running_ones_at_their_next_result():
    search, seen = coordinator(pruner="none")
    started = []

    def curve_of(spec):  # the third trial to start asks the search to stop (as a cancel)
        started.append(spec)
        if len(started) == 3:
            search.stop.set()
        return GOOD

    run = simulate(search, curve_of, budget_trials=12, slots=2)
    assert len(seen.started) == len(run.ended) == 3  # trial 0 ended before the stop
    assert [seen.ended[n].status.value for n in range(3)] == ["completed", "failed", "failed"]
    assert all("the search was stopped" in seen.ended[n].error for n in (1, 2))
    assert search.suggest("after-the-stop") is None


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


def test_a_trial_whose_worker_starts_late_stops_training_in_time_to_report():
    # A busy machine: a worker takes 15 s to start, so a trial's training seconds alone would
    # run it past the budget's end (stopped, lost); its clock time to train ends it in time.
    budget = 600.0
    search, seen = coordinator(trial_constraints(Constraints(), budget / 60, 2))
    slow_start = dataclasses.replace(learns(0.1, seconds=5.0), start_seconds=15.0)
    run = simulate(search, lambda spec: slow_start, budget_trials=None, slots=2,
                   budget_seconds=budget)
    assert all(how == "completed" for _, how in run.ended) and len(run.ended) >= 6
    until = [search.specs[n].train_until - run.starts[n] for n in seen.started]
    assert min(until) < 60.0  # the last ones' time to train ended before their rounds did


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


def test_a_resumed_search_reruns_the_killed_trials_and_meets_the_budget_exactly():
    # A driver is killed with 4 trials finished and 2 running; a new one resumes on the same
    # Optuna study (as `archsearch search --resume` does): the 2 run again with their own
    # configurations (queued after what was left of the initial design), and the budget of 24
    # trials is met exactly.
    first, _ = coordinator(pruner="none")
    simulate(first, lambda spec: GOOD, budget_trials=4, slots=2)
    killed = {}
    for tune_id in ("killed-a", "killed-b"):
        first.suggest(tune_id)
        number = first.numbers[tune_id]
        killed[number] = first.specs[number]
    finished = len(first.completed)
    assert finished == 4
    second, seen = coordinator(pruner="none", study=first.bridge.study, rerun=sorted(killed))
    simulate(second, lambda spec: GOOD, budget_trials=24 - finished, slots=2)
    again = [(spec.arch, spec.train) for spec in second.specs.values()]
    assert all((spec.arch, spec.train) in again for spec in killed.values())
    assert len(seen.started) == 24 - finished
    states = [t.state.name for t in second.bridge.study.trials]
    assert states.count("COMPLETE") == 24 and states.count("FAIL") == 2


def test_a_resumed_search_chooses_its_finalists_among_the_earlier_sittings_trials_too():
    # The first sitting's 4 trials learn well; the driver stops before their folds. The resumed
    # search runs 2 weaker trials: its finalists are the first sitting's best, its time budget
    # leaves their folds time before any trial runs, and one already re-scored is known so.
    first, _ = coordinator(pruner="none")
    simulate(first, lambda spec: GOOD, budget_trials=4, slots=2)
    kept = tuple(FinishedTrial(number, first.specs[number].arch, first.specs[number].train,
                               outcome, cv_folds=5 if number == 0 else None)
                 for number, outcome in first.completed.items())
    second, _ = coordinator(pruner="none", study=first.bridge.study, finished=kept)
    plan = FinalistPlan(k=5, n_families=3, slots=2, n_val=10)
    second.finalists, second.finalists_deadline = plan, 1000.0
    second.clock, second.trials_end = lambda: 0.0, 1000.0
    assert second.seconds_left() < 1000.0 - plan.seconds(first.completed[0], 5)
    simulate(second, lambda spec: learns(0.6), budget_trials=2, slots=2)
    assert len(second.completed) == 6 and second.cross_validated == {0: 5}
    finalists = plan.candidates(second.completed, second.families(), MSE)
    assert finalists and {number for number, _ in finalists} <= set(first.completed)


def cost(latency_ms: float):
    return CostMeasurement(params=1000, flops=1000, latency_ms=latency_ms,
                           latency_p95_ms=latency_ms, peak_memory_mb=1.0, memory_method="sim",
                           device="cpu", threads=1)


def test_the_pareto_pruner_stops_dear_and_worse_trials_and_keeps_the_cheapest():
    # quality vs latency: transformers are slow and no better than the rest, so they are
    # stopped among their cheaper peers; the cheapest configuration (rnn) is never stopped,
    # however poor, since it sits on the front.
    def curve_of(spec):
        family = spec.arch.family
        if family == "rnn":
            return Curve((0.9,) * ROUNDS, 1.0, cost=cost(0.1))
        final = 0.5 if family == "transformer" else 0.05
        slow = family == "transformer"
        return dataclasses.replace(learns(final), cost=cost(5.0 if slow else 1.0))

    search, seen = coordinator(objectives="quality,latency", sampler="random")
    simulate(search, curve_of, budget_trials=60, slots=2)
    slow = [n for n, family in seen.started.items() if family == "transformer"]
    cheap = [n for n, family in seen.started.items() if family == "rnn"]
    assert slow and cheap and seen.pruned
    assert not any(n in seen.pruned for n in cheap)
    assert all(n in seen.pruned for n in slow[1:])
