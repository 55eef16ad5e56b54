"""The training regime: a step budget with warm-up and cosine decay, early stopping on a
validation plateau, best-round weights, per-series normalisation, and the selection that
follows (finalists per family within the time left, every family kept in the ranking)."""

from __future__ import annotations

import dataclasses
import math
import os
import time

import numpy as np
import pytest
import torch

from archsearch.blocks import build_model
from archsearch.blocks.model import series_znorm
from archsearch.data import load_dataset, prepare
from archsearch.data.splits import forecast_indices
from archsearch.errors import SpaceError
from archsearch.options import SearchOptions
from archsearch.recommend import recommend
from archsearch.search.selection import FinalistPlan, fold_cpus, standard_error
from archsearch.space import load_space
from archsearch.trial import TrialSpec, run_trial
from archsearch.trial.crossval import FoldFit, refit_spec
from archsearch.trial.runner import TrainingClock, model_io, warmup_cosine
from archsearch.types import (
    ArchConfig,
    Constraints,
    Metric,
    ModelIO,
    TaskKind,
    TrainConfig,
    TrialOutcome,
    TrialStatus,
)
from archsearch.workflow import (
    CONCLUSION_SECONDS,
    FINALISTS_SHARE,
    SearchRequest,
    _time_plan,
    save_whole,
    selection_trials,
)
from tests.records import trial_record

ACCURACY = Metric("accuracy", "maximize")
MSE = Metric("mse", "minimize")


def test_learning_rate_warms_up_then_decays_to_zero_on_a_cosine():
    factor = warmup_cosine(TrainConfig(max_steps=100, warmup_fraction=0.1))
    assert factor(0) == pytest.approx(0.1) and factor(9) == pytest.approx(1.0)
    assert factor(10) == pytest.approx(1.0)
    assert factor(55) == pytest.approx(0.5, abs=1e-6)  # half-way through the decay
    assert factor(100) == pytest.approx(0.0, abs=1e-9)
    values = [factor(s) for s in range(10, 101)]
    assert all(a >= b for a, b in zip(values, values[1:], strict=False))


def test_rounds_follow_the_step_budget(tiny_data):
    reports = []
    train = TrainConfig(lr=3e-3, batch_size=16, max_steps=25, eval_every=10)
    outcome = run_trial(TrialSpec(ArchConfig("gru", {"d_model": 8}), train), tiny_data,
                        reports.append).outcome
    assert train.max_rounds == 3 and [r.epoch for r in reports] == [1, 2, 3]  # 10 + 10 + 5
    assert outcome.epochs_run == 3


def test_a_plateau_stops_training_and_the_best_round_is_kept(tiny_data):
    # A learning rate of ~0 cannot improve on the first round: patience 2 stops after round 3.
    reports = []
    train = TrainConfig(lr=1e-12, batch_size=16, max_steps=100, eval_every=5, patience=2,
                        warmup_fraction=0.0)
    result = run_trial(TrialSpec(ArchConfig("gru", {"d_model": 8}), train), tiny_data,
                       reports.append)
    assert len(reports) == 3 and result.outcome.best_epoch == 1
    assert result.outcome.status is TrialStatus.COMPLETED


def test_a_tie_in_accuracy_goes_to_the_lower_validation_loss():
    from archsearch.trial.runner import _BestRound

    best = _BestRound(ACCURACY)
    model = torch.nn.Linear(1, 1)
    best.offer(1, 1.0, 0.9, model)
    best.offer(2, 1.0, 0.2, model)  # same accuracy, better fitted
    best.offer(3, 1.0, 0.5, model)
    best.offer(4, 0.9, 0.01, model)  # lower accuracy never wins on loss
    assert (best.round, best.score, best.loss) == (2, 1.0, 0.2)


def test_a_budget_that_cannot_train_fails_the_trial_with_its_reason(tiny_data):
    result = run_trial(TrialSpec(ArchConfig("gru", {"d_model": 8}), TrainConfig(max_steps=0)),
                       tiny_data, lambda r: None)
    assert result.outcome.status is TrialStatus.FAILED
    assert "max_steps" in result.outcome.error


def test_series_norm_normalises_each_series_on_its_valid_steps_only():
    g = torch.Generator().manual_seed(0)
    x = 5.0 + 3.0 * torch.randn(2, 10, 2, generator=g)
    x[1, 6:] = 1e6  # padding garbage
    lengths = torch.tensor([10, 6])
    z = series_znorm(x, lengths)
    assert torch.allclose(z[0].mean(0), torch.zeros(2), atol=1e-5)
    assert torch.allclose(z[1, :6].std(0, unbiased=False), torch.ones(2), atol=1e-3)
    assert (z[1, 6:] == 0).all()
    # Invariant to each series' own offset and scale: what the model sees is its shape.
    assert torch.allclose(series_znorm(7.0 * x[:1] - 4.0, lengths[:1]), z[:1], atol=1e-4)


def test_series_norm_is_refused_on_a_causal_model_and_pinned_off_for_forecasting():
    io = ModelIO(n_features=1, task=TaskKind.CLASSIFICATION, n_outputs=2, max_len=8, causal=True)
    with pytest.raises(SpaceError, match="series_norm"):
        build_model(ArchConfig("gru", {"d_model": 8, "series_norm": True}), io)
    space = load_space()
    shared = {p.name: p for p in space.under(Constraints(), TaskKind.FORECAST).shared}
    assert shared["series_norm"].type == "fixed" and shared["series_norm"].value is False
    shared = {p.name: p for p in space.under(Constraints(), TaskKind.CLASSIFICATION).shared}
    assert shared["series_norm"].choices == (False, True)


def test_an_anchored_forecaster_adds_the_window_s_last_value_back():
    """window_anchor: last reads each window minus its last step and adds that step's value,
    in the target's units, to every step of the horizon: with a zero head it is the
    persistence forecast, and the window's level does not change what the block reads."""
    dataset = load_dataset("builtin:co2?lookback=16&horizon=3")
    data = prepare(dataset, seed=0)
    io = model_io(data, Constraints())
    model = build_model(ArchConfig("gru", {"d_model": 8, "window_anchor": "last"}), io).eval()
    torch.nn.init.zeros_(model.head.weight)
    torch.nn.init.zeros_(model.head.bias)
    x = torch.tensor(data.test.X[:5])
    last_raw = dataset.X[forecast_indices(dataset)[2][:5], -1, 0]  # (5,) ppm
    persistence = (last_raw - data.target_mean[0]) / data.target_std[0]
    with torch.no_grad():
        np.testing.assert_allclose(model(x).numpy(), np.repeat(persistence[:, None], 3, 1),
                                   rtol=1e-5)
        shifted = model.features(x + 2.0), model.features(x)
    assert torch.allclose(*shifted, atol=1e-5)
    assert "anchor_scale" not in model.state_dict()  # rebuilt from io: weights only


def test_window_anchor_is_refused_where_it_cannot_work_and_pinned_by_the_space():
    forecast = ModelIO(n_features=1, task=TaskKind.FORECAST, n_outputs=1, max_len=8,
                       anchors=((0, 1.0, 0.0),))
    classify = ModelIO(n_features=1, task=TaskKind.CLASSIFICATION, n_outputs=2, max_len=8)
    for io, message in [(classify, "needs a forecasting task"),
                        (dataclasses.replace(forecast, anchors=()), "needs a forecasting task"),
                        (dataclasses.replace(forecast, causal=True), "causal"),
                        (forecast, "one of none, last")]:
        anchor = "first" if message.startswith("one of") else "last"
        with pytest.raises(SpaceError, match=message):
            build_model(ArchConfig("gru", {"d_model": 8, "window_anchor": anchor}), io)
    space = load_space()
    for kind, constraints, pinned in [(TaskKind.FORECAST, Constraints(), "last"),
                                      (TaskKind.FORECAST, Constraints(streaming=True), "none"),
                                      (TaskKind.REGRESSION, Constraints(), "none"),
                                      (TaskKind.CLASSIFICATION, Constraints(), "none")]:
        shared = {p.name: p for p in space.under(constraints, kind).shared}
        assert shared["window_anchor"].value == pinned, (kind, constraints)


def test_an_anchored_forecaster_learns_a_trending_series():
    """CO2 rises out of its training range by the test split: anchored, a small GRU trained
    for 120 steps forecasts its test weeks within a few times the last value's own error
    (0.004 training variances); unanchored, the default space's families scored 4-8."""
    data = prepare(load_dataset("builtin:co2?lookback=52"), seed=0)
    spec = TrialSpec(ArchConfig("gru", {"d_model": 16, "window_anchor": "last"}),
                     TrainConfig(lr=3e-3, batch_size=32, max_steps=120, eval_every=15))
    result = run_trial(spec, data, lambda report: None)
    assert result.outcome.status is TrialStatus.COMPLETED
    assert result.outcome.test_score < 0.02, result.outcome


def outcome(val: float, seconds: float = 10.0, rounds: int = 10,
            best: int = 5) -> TrialOutcome:
    return TrialOutcome(TrialStatus.COMPLETED, None, rounds, best, val, None, seconds)


def test_finalists_are_the_best_trial_of_each_competitive_family_within_the_time_left():
    completed = {0: outcome(0.9), 1: outcome(0.95), 2: outcome(0.8), 3: outcome(0.7),
                 4: outcome(0.85)}
    families = {0: "gru", 1: "gru", 2: "fcn", 3: "lstm", 4: "resnet"}
    # On 10 validation series two standard errors of 0.95 are 0.24: lstm's 0.7 is out.
    plan = FinalistPlan(k=5, n_families=4, slots=1, n_val=10)
    k, picked = plan.pick(completed, families, ACCURACY, seconds_left=math.inf)
    assert k == 5 and [number for number, _ in picked] == [1, 4, 2]  # gru, resnet, fcn
    # On 1000 series the same scores are told apart: gru alone is competitive.
    many = FinalistPlan(k=5, n_families=4, slots=1, n_val=1000)
    assert [n for n, _ in many.pick(completed, families, ACCURACY, math.inf)[1]] == [1]
    # At most n_families, best first.
    two = FinalistPlan(k=5, n_families=2, slots=1, n_val=10)
    assert [n for n, _ in two.pick(completed, families, ACCURACY, math.inf)[1]] == [1, 4]
    # A fold costs 5 rounds x 1 s + the fold overhead of 5 s: all three finalists take 150 s
    # with 5 folds, 120 s with 4, 90 s with 3. Short of time, every finalist gets fewer folds.
    assert plan.seconds_needed(completed, families, ACCURACY) == pytest.approx(150.0)
    assert plan.pick(completed, families, ACCURACY, seconds_left=120.0) == (4, picked)
    assert plan.pick(completed, families, ACCURACY, seconds_left=90.0) == (3, picked)
    # Shorter still: those that fit with 3 folds, in rank order.
    k, fit = plan.pick(completed, families, ACCURACY, seconds_left=60.0)
    assert k == 3 and [number for number, _ in fit] == [1, 4]
    assert plan.pick(completed, families, ACCURACY, seconds_left=1.0) == (3, [])
    # A family too slow to re-score in time is passed over for the next one that fits.
    completed[1] = outcome(0.95, seconds=1000.0)
    k, fit = plan.pick(completed, families, ACCURACY, seconds_left=120.0)
    assert k == 3 and [number for number, _ in fit] == [4, 2]
    # The trials leave the finalists at most max_seconds.
    capped = FinalistPlan(k=5, n_families=4, slots=1, n_val=10, max_seconds=100.0)
    assert capped.seconds_needed(completed, families, ACCURACY) == 100.0


def test_the_last_wave_of_folds_shares_the_cpus_the_others_leave_idle():
    # Five folds on two CPUs: two waves of two, then the fifth alone on both.
    assert fold_cpus(5, 1.0, 2.0) == [1.0, 1.0, 1.0, 1.0, 2.0]
    assert fold_cpus(4, 1.0, 2.0) == [1.0] * 4  # no wave short of folds
    assert fold_cpus(1, 1.0, 2.0) == [2.0]  # a resume's last fold
    assert fold_cpus(7, 1.0, 3.0) == [1.0] * 6 + [3.0]
    assert fold_cpus(5, 1.0, 3.0) == [1.0] * 5  # two last folds cannot share one CPU
    assert fold_cpus(3, 2.0, 4.0) == [2.0, 2.0, 4.0]  # a trial's CPUs are the unit
    assert fold_cpus(3, 1.0, 0.0) == [1.0] * 3  # nothing free: as a trial, Ray queues them
    assert fold_cpus(0, 1.0, 2.0) == []
    # A fold whose family trains no faster on threads (gru's step loop) keeps one CPU.
    assert fold_cpus(3, 1.0, 2.0, [True, True, False]) == [1.0] * 3
    assert fold_cpus(3, 1.0, 2.0, [False, False, True]) == [1.0, 1.0, 2.0]


def test_the_margin_of_a_competitive_family_is_two_standard_errors_of_the_best_score():
    assert standard_error(ACCURACY, 1.0, 10) == pytest.approx(math.sqrt(12 / 14 * 2 / 14 / 10))
    assert standard_error(MSE, 0.01, 50) == pytest.approx(0.01 * math.sqrt(2 / 50))
    completed = {0: outcome(0.010), 1: outcome(0.0125), 2: outcome(0.02)}
    families = {0: "gru", 1: "tcn", 2: "lstm"}
    plan = FinalistPlan(k=5, n_families=5, slots=1, n_val=50)  # margin 0.004
    assert [n for n, _ in plan.pick(completed, families, MSE, math.inf)[1]] == [0, 1]


def test_a_time_budget_caps_each_trial_at_its_share():
    from archsearch.search.budget import MIN_TRIALS_PER_TIME_BUDGET, trial_constraints

    assert trial_constraints(Constraints(), None, 2) == Constraints()
    capped = trial_constraints(Constraints(max_params=10), 8.0, 2)
    assert capped.max_trial_minutes == pytest.approx(16.0 / MIN_TRIALS_PER_TIME_BUDGET)
    assert capped.max_params == 10
    assert trial_constraints(Constraints(max_trial_minutes=0.5), 8.0, 2).max_trial_minutes == 0.5


def test_a_trial_started_late_gets_the_time_left_not_more():
    from archsearch.search.budget import (
        TRAINING_SHARE_OF_TIME_LEFT,
        TRIAL_START_SECONDS,
        within_time_left,
    )

    capped = Constraints(max_trial_minutes=2.0)
    assert within_time_left(capped, None) == capped  # no time budget
    assert within_time_left(capped, 3600.0) == capped  # plenty left: its share stands
    late = within_time_left(capped, 65.0)
    assert late.max_trial_minutes * 60 == pytest.approx(
        (65.0 - TRIAL_START_SECONDS) * TRAINING_SHARE_OF_TIME_LEFT)
    assert within_time_left(capped, 0.0).max_trial_minutes * 60 == pytest.approx(1.0)


def test_the_schedule_follows_the_clock_when_time_runs_out_first():
    train = TrainConfig(max_steps=100, warmup_fraction=0.1)
    clock = TrainingClock(limit_s=10.0)
    factor = warmup_cosine(train, clock)
    assert factor(50) == warmup_cosine(train)(50)  # no time used: the steps rule
    clock.seconds = 5.5  # half the time limit, though only 20 steps were taken
    assert factor(20) == pytest.approx(warmup_cosine(train)(55))
    clock.seconds = 10.0
    assert factor(20) == pytest.approx(0.0, abs=1e-9)  # annealed when the time is up


def test_a_trial_stopped_by_its_time_limit_completes_annealed(tiny_data):
    reports = []
    spec = TrialSpec(ArchConfig("gru", {"d_model": 8}),
                     TrainConfig(lr=3e-3, batch_size=16, max_steps=10_000, eval_every=5),
                     Constraints(max_trial_minutes=0.02))  # 1.2 s of training
    outcome = run_trial(spec, tiny_data, reports.append).outcome
    assert outcome.status is TrialStatus.COMPLETED and outcome.test_score is not None
    assert 1.2 <= outcome.train_seconds < 5.0 and len(reports) < 10_000 // 5


def test_a_trial_that_starts_after_its_train_until_trains_one_round_and_reports(tiny_data):
    # its worker started late (a busy machine): one round, annealed, then its test score
    reports = []
    spec = TrialSpec(ArchConfig("gru", {"d_model": 8}),
                     TrainConfig(lr=3e-3, batch_size=16, max_steps=10_000, eval_every=5),
                     Constraints(max_trial_minutes=10.0), train_until=time.time())
    outcome = run_trial(spec, tiny_data, reports.append).outcome
    assert outcome.status is TrialStatus.COMPLETED and outcome.test_score is not None
    assert len(reports) == 1 and outcome.epochs_run == 1


def test_a_family_may_set_a_shared_parameter_its_own_way():
    from archsearch.search.sampling import params_for, sample_config

    space = load_space()
    assert "pooling" not in {p.name for p in space.shared_for("fcn")}
    assert "pooling" in {p.name for p in space.shared_for("gru")}
    import optuna

    study = optuna.create_study()
    study.enqueue_trial({"family": "fcn"})
    arch, train = sample_config(study.ask(), space)
    assert arch.hparams["pooling"] == "mean" and arch.hparams["d_model"] in (32, 64)
    config = {"family": "fcn", "model": dict(arch.hparams), "train": dict(train.__dict__)}
    params = params_for(space, config)
    assert params is not None and "pooling" not in params


def test_a_refit_trains_exactly_to_the_best_round_without_early_stopping():
    spec = TrialSpec(ArchConfig("gru", {}), TrainConfig(max_steps=600, eval_every=30,
                                                        patience=8), train_until=time.time())
    refit = refit_spec(spec, best_round=4)
    assert refit.train.max_steps == 120 and refit.train.patience == 0
    assert refit.train_until is None  # the trials' time has passed when folds run


def test_every_measured_family_stays_in_the_ranking_with_finalists_first():
    cv = {"cv_std": 0.05, "cv_folds": 5}
    trials = [
        trial_record(id=0, number=0, family="gru", val_score=1.0, cv_score=0.80, **cv),
        trial_record(id=1, number=1, family="gru", val_score=0.9),
        trial_record(id=2, number=2, family="fcn", val_score=0.9, cv_score=0.90, **cv),
        # lucky on one small split, never re-scored
        trial_record(id=3, number=3, family="lstm", val_score=1.0),
    ]
    chosen = selection_trials(trials)
    assert sorted(t.number for t in chosen) == [0, 2, 3]
    rec = recommend({"seq_len": 150, "task": "classification"}, ["fcn", "gru", "lstm"],
                    ACCURACY, chosen)
    assert rec.family == "fcn" and rec.trial_number == 2
    ranked = {r.family: r for r in rec.ranking}
    assert ranked["lstm"].measured == 1.0 and not ranked["lstm"].cross_validated
    assert [r.family for r in rec.ranking] == ["fcn", "gru", "lstm"]


def test_a_time_budget_leaves_room_for_the_finalists_and_the_report(tiny_data):
    started = time.time()
    request = SearchRequest(data="builtin:adding", options=SearchOptions(budget_minutes=8))
    assert request.options.budget_trials is None  # trials until the time is spent
    assert SearchRequest(data="builtin:adding").options.budget_trials == 12
    minutes, deadline = _time_plan(request, tiny_data, started)  # 97 sequences: small data
    assert deadline == pytest.approx(started + 480 - CONCLUSION_SECONDS, abs=1e-6)
    assert minutes * 60 == pytest.approx(480 * (1 - FINALISTS_SHARE) - CONCLUSION_SECONDS, abs=2)
    big = SearchRequest(data="builtin:adding",
                        options=SearchOptions(budget_minutes=8, cv_folds=0))
    minutes, _ = _time_plan(big, tiny_data, started)
    assert minutes * 60 == pytest.approx(480 - CONCLUSION_SECONDS, abs=2)
    assert _time_plan(SearchRequest(data="x"), tiny_data, started) == (None, None)


def test_rounds_are_equal_compute_across_batch_sizes():
    # Every trial of a search shares max_steps and eval_every, so rung k means the same number
    # of optimizer steps whatever the batch size or the family.
    a, b = TrainConfig(batch_size=16, max_steps=600, eval_every=30), TrainConfig(
        batch_size=64, max_steps=600, eval_every=30)
    assert a.max_rounds == b.max_rounds == 20
    assert np.isclose(TrainConfig(max_steps=601, eval_every=30).max_rounds, 21)


def test_a_five_times_lower_error_is_not_overruled_by_a_rule_of_thumb():
    # One diverged trial stretches the measured range; on a linear scale the rules' prior for
    # gru (short sequences) then outweighed a 5x lower MSE. Errors compare on a log scale.
    trials = [trial_record(id=0, number=0, family="gru", val_score=0.0069),
              trial_record(id=1, number=1, family="rnn_then_tf", val_score=0.0013),
              trial_record(id=2, number=2, family="ssm", val_score=0.1636)]
    rec = recommend({"seq_len": 100, "task": "regression"}, ["gru", "rnn_then_tf", "ssm"],
                    Metric("mse", "minimize"), trials)
    assert rec.family == "rnn_then_tf"
    assert Metric("mse", "minimize").utility(0.01) > Metric("mse", "minimize").utility(0.05)


class FoldNotes:
    """A search observer of finalists' cross-validation: its notes, each fold that ended
    (with its score), the finalists re-scored, and the folds an earlier sitting kept."""

    def __init__(self, kept: dict | None = None):
        self.notes, self.folds, self.scored, self.threads = [], [], [], {}
        self.kept = kept or {}

    def on_note(self, message):
        self.notes.append(message)

    def on_fold(self, number, k, fold, fit):
        self.folds.append((fold, fit.score))
        self.threads[fold] = fit.threads

    def kept_folds(self, number, k):
        return dict(self.kept)

    def on_cross_validation(self, number, mean, std, fold_states):
        self.scored.append((number, mean, len(fold_states)))


def cross_validate_one(data, observer, max_steps: int, k: int = 2,
                       deadline_in: float | None = None, share_idle_cpus: bool = False,
                       family: str = "gru") -> float:
    """Cross-validates one finished trial of ``family`` (trained ``max_steps`` per fold) on a
    local Ray runtime; the seconds it took."""
    import ray

    from archsearch.search.coordinator import Coordinator
    from archsearch.search.optuna_bridge import OptunaBridge
    from archsearch.search.ray_backend.finalists import cross_validate_finalists
    from archsearch.search.ray_backend.runtime import ray_runtime
    from archsearch.types import Objectives, TrialOutcome

    bridge = OptunaBridge.create(load_space(), ACCURACY, seed=0, sampler="tpe",
                                 pruner="median", max_rounds=4, storage=None, study_name="cv",
                                 objectives=Objectives.parse("quality"))
    coordinator = Coordinator(bridge, observer, Constraints(), seed=0)
    coordinator.specs[0] = TrialSpec(ArchConfig(family, {"d_model": 8}),
                                     TrainConfig(max_steps=max_steps, eval_every=max_steps))
    coordinator.completed[0] = TrialOutcome(TrialStatus.COMPLETED, None, 1, 1, 0.5, 0.5, 0.01)
    with ray_runtime(None):
        started = time.time()
        plan = FinalistPlan(k=k, n_families=1, slots=2, n_val=len(data.val))
        cross_validate_finalists(coordinator, plan, ray.put(data), {"cpu": 1, "gpu": 0}, 0,
                                 observer, deadline=None if deadline_in is None
                                 else started + deadline_in, share_idle_cpus=share_idle_cpus)
        return time.time() - started


def test_finalists_whose_folds_overrun_the_deadline_are_cancelled(tiny_data):
    # The cost estimate says the folds fit (the trial's rounds took 0.01 s); the folds actually
    # train 50,000 steps. The deadline must hold: the folds are cancelled, no score recorded.
    observer = FoldNotes()
    waited = cross_validate_one(tiny_data, observer, max_steps=50_000, deadline_in=12.0)
    assert observer.scored == [] and observer.folds == []
    assert any("did not finish within the time budget" in note for note in observer.notes)
    assert 11.0 < waited < 30.0


@pytest.mark.parametrize("family", ["tcn", "gru"])
def test_the_last_fold_trains_on_the_cpus_the_others_leave_idle_where_threads_help(tiny_data,
                                                                                   family):
    # Three folds on the embedded runtime: with two CPUs (CI's), folds 1 and 2 train one
    # thread each, side by side, and tcn's fold 3 then trains with two threads, not alone on
    # one; gru's step loop trains slower on two threads, so its fold 3 keeps one.
    observer = FoldNotes()
    cross_validate_one(tiny_data, observer, max_steps=20, k=3, share_idle_cpus=True,
                       family=family)
    cpus = fold_cpus(3, 1.0, float(len(os.sched_getaffinity(0))))
    expected = cpus if family == "tcn" else [1.0] * 3
    assert observer.threads == {fold: int(share) for fold, share in enumerate(expected)}
    assert len(observer.scored) == 1


def test_a_finalists_folds_kept_by_an_earlier_sitting_are_not_trained_again(tiny_data):
    # Fold 0 of 3 was kept by an earlier sitting (a made-up score): only folds 1 and 2 train, and
    # the cross-validated mean is over the kept fold and the two new ones.
    kept = FoldFit(0.125, {"weight": torch.zeros(1)})
    observer = FoldNotes(kept={0: kept})
    cross_validate_one(tiny_data, observer, max_steps=20, k=3)
    assert sorted(fold for fold, _ in observer.folds) == [1, 2]
    assert all(score is not None for _, score in observer.folds)
    expected = (0.125 + sum(score for _, score in observer.folds)) / 3
    assert observer.scored == [(0, pytest.approx(expected), 3)]
    assert any("1 of 3 folds kept from an earlier sitting" in note for note in observer.notes)


class Unpicklable:
    def __reduce__(self):
        raise RuntimeError("cut short mid-write")


def test_a_save_cut_short_leaves_the_file_as_it_was(tmp_path):
    # A fold's model, the finalists' folds or the bag: a save that dies partway must not leave
    # a truncated file where a resume (or the user) would read one.
    path = tmp_path / "trial-1-folds.pt"
    save_whole({"fold": torch.ones(2)}, path)
    with pytest.raises(RuntimeError, match="cut short"):
        save_whole({"fold": torch.zeros(2), "more": Unpicklable()}, path)
    assert torch.equal(torch.load(path)["fold"], torch.ones(2))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["trial-1-folds.pt"]
    save_whole({"fold": torch.zeros(2)}, path)
    assert torch.equal(torch.load(path)["fold"], torch.zeros(2))
