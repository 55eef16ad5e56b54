"""The Optuna side of the engine without Ray: pruning rungs in epochs or training time, and
multi-objective (quality vs measured cost) studies with their Pareto-safe pruner."""

import pytest

from archsearch.errors import UsageError
from archsearch.search.optuna_bridge import OptunaBridge
from archsearch.search.pareto_pruner import ParetoMedianPruner
from archsearch.space import load_space
from archsearch.types import CostMeasurement, Metric, Objectives, TrialStatus

MSE = Metric("mse", "minimize")


def cost(latency_ms: float, params: int = 1000) -> CostMeasurement:
    return CostMeasurement(params=params, flops=None, latency_ms=latency_ms,
                           latency_p95_ms=latency_ms, peak_memory_mb=1.0, memory_method="test",
                           device="cpu", threads=1)


def bridge(pruner: str = "median", objectives: str = "quality",
           rung_seconds: float | None = None) -> OptunaBridge:
    return OptunaBridge.create(load_space(), MSE, seed=0, sampler="tpe", pruner=pruner,
                               max_rounds=6, storage=None, study_name="t",
                               objectives=Objectives.parse(objectives),
                               rung_seconds=rung_seconds)


def test_objectives_parse_and_refuse_what_they_cannot_measure():
    assert Objectives.parse("quality").costs == ()
    assert Objectives.parse("quality, latency,params").costs == ("latency", "params")
    for bad in ("latency", "quality,speed", "quality,params,params", ""):
        with pytest.raises(UsageError):
            Objectives.parse(bad)


def test_rungs_in_training_seconds_report_each_time_mark_once():
    engine = bridge(rung_seconds=2.0)
    engine.ask("a")
    assert not engine.report("a", epoch=1, val_score=0.9, elapsed_s=1.5)  # before the 1st mark
    assert engine.study.trials[0].intermediate_values == {}
    engine.report("a", epoch=2, val_score=0.8, elapsed_s=5.1)  # passes marks 1 and 2
    engine.report("a", epoch=3, val_score=0.7, elapsed_s=6.0)  # mark 3
    values = engine.study.trials[0].intermediate_values
    assert values == {1: 0.8, 2: 0.8, 3: 0.7}


def test_rungs_in_epochs_by_default():
    engine = bridge()
    engine.ask("a")
    engine.report("a", epoch=1, val_score=0.5, elapsed_s=30.0)
    values = engine.study.trials[0].intermediate_values
    assert values == {1: 0.5}


def test_a_trial_that_reached_its_last_epoch_completes_whatever_the_pruner_says():
    engine = bridge()
    engine.ask("probe")
    last = engine.asked.pop("probe").train.max_rounds
    for number in range(3):  # the median pruner's startup trials: 1.0 until the last epoch
        engine.ask(str(number))
        for epoch in range(1, last + 1):
            engine.report(str(number), epoch=epoch, val_score=1.0 if epoch < last else 0.1)
        engine.tell(str(number), TrialStatus.COMPLETED, 0.1)
    engine.ask("late")
    for epoch in range(1, last):
        assert engine.report("late", epoch=epoch, val_score=0.5) is False  # ahead: kept
    # Behind the median at the last epoch, but there is nothing left to save.
    assert engine.report("late", epoch=last, val_score=0.5) is False
    assert engine.asked["late"].pruned_at is None
    engine.ask("early")
    assert engine.report("early", epoch=1, val_score=2.0) is True  # behind, epochs left


def test_multi_objective_study_gets_quality_and_the_measured_cost():
    engine = bridge(objectives="quality,latency")
    assert len(engine.study.directions) == 2
    engine.ask("a")
    engine.note_cost("a", cost(3.5))
    assert not engine.report("a", 1, 0.4, 0.1)  # Optuna's Trial.report would raise here
    engine.tell("a", TrialStatus.COMPLETED, 0.25, cost(3.5))
    assert engine.study.trials[0].values == [0.25, 3.5]


def test_pareto_pruner_never_stops_the_cheapest_trial():
    pruner = ParetoMedianPruner(min_peers=3)
    for number, latency in enumerate([2.0, 3.0, 4.0, 5.0]):
        pruner.note_cost(number, (latency,))
    for number, score in enumerate([0.9, 0.8, 0.7]):  # scores to maximise
        pruner.report(number + 1, rung=2, score=score)
    # trial 0 is the cheapest: however bad, it may still land on the front
    assert not pruner.report(0, rung=2, score=-100.0)


def test_pareto_pruner_stops_a_trial_below_the_median_of_cheaper_ones():
    pruner = ParetoMedianPruner(min_peers=3)
    for number, latency in enumerate([1.0, 2.0, 3.0, 9.0, 9.5]):
        pruner.note_cost(number, (latency,))
    for number, score in enumerate([0.6, 0.7, 0.8]):
        assert not pruner.report(number, rung=2, score=score)
    assert pruner.report(3, rung=2, score=0.5)  # dearer and worse than the cheaper median
    assert not pruner.report(4, rung=2, score=0.75)  # dearer but better than the median
    assert not pruner.report(3, rung=1, score=0.0)  # warm-up rung: never


def test_pareto_pruner_compares_on_every_cost():
    pruner = ParetoMedianPruner(min_peers=1)
    pruner.note_cost(0, (1.0, 5000.0))  # faster but larger
    pruner.note_cost(1, (2.0, 1000.0))
    pruner.report(0, rung=2, score=0.9)
    assert not pruner.report(1, rung=2, score=0.1)  # no trial is cheaper on both costs


def test_pruning_off_in_a_multi_objective_search():
    engine = bridge(pruner="none", objectives="quality,params")
    assert engine.pareto_pruner is None


def _open_after(barrier, url: str) -> None:  # noqa: ANN001
    from archsearch.search.optuna_bridge import open_storage

    barrier.wait()
    open_storage(url)


def test_searches_starting_together_on_a_new_database_all_open_its_study_storage(tmp_path):
    """Two API drivers once lost a task to 'table alembic_version already exists'."""
    import multiprocessing

    context = multiprocessing.get_context("spawn")
    url = f"sqlite:///{tmp_path / 'new.db'}"
    barrier = context.Barrier(4)
    workers = [context.Process(target=_open_after, args=(barrier, url)) for _ in range(4)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(120)
    assert [w.exitcode for w in workers] == [0, 0, 0, 0]


def test_the_initial_design_runs_the_ranked_families_first_then_the_rest_by_name():
    engine = bridge()
    engine.enqueue_initial_design([], family_order=("resnet", "gru", "not-in-space"))
    asked = [engine.ask(str(i)) for i in range(4)]
    rest = sorted(set(load_space().families) - {"resnet", "gru"})
    assert [a.arch.family for a in asked] == ["resnet", "gru", *rest[:2]]
    # each at its default configuration, not at a random draw
    gru = asked[1]
    assert dict(gru.arch.hparams) == {"d_model": 64, "dropout": 0.0, "pooling": "last",
                                      "quantize": "none", "series_norm": False,
                                      "window_anchor": "none", "n_layers": 1,
                                      "bidirectional": False}
    assert (gru.train.lr, gru.train.batch_size, gru.train.weight_decay) == (1e-3, 64, 0.0)


class _Quiet:
    """An observer that keeps nothing (the coordinator's own state is under test)."""

    def __getattr__(self, name):
        return lambda *args, **kwargs: None


def test_trials_started_near_the_end_of_a_time_budget_get_the_time_left():
    import time

    from archsearch.search.budget import MIN_TRIAL_SECONDS, within_time_left
    from archsearch.search.coordinator import Coordinator
    from archsearch.types import Constraints

    coordinator = Coordinator(bridge(), _Quiet(), Constraints(max_trial_minutes=2.0), seed=0)
    early = coordinator.suggest("early")
    assert early["constraints"]["max_trial_minutes"] == 2.0  # no time budget: the share
    coordinator.trials_end = time.time() + 40.0
    late = coordinator.suggest("late")
    expected = within_time_left(Constraints(max_trial_minutes=2.0), 40.0).max_trial_minutes
    assert late["constraints"]["max_trial_minutes"] == pytest.approx(expected, rel=0.05)
    assert coordinator.specs[late["number"]].constraints.max_trial_minutes < 1.0
    coordinator.trials_end = time.time() + MIN_TRIAL_SECONDS / 2
    assert coordinator.suggest("too late") is None  # no more trials: time only runs out
    assert "too late" not in coordinator.numbers
