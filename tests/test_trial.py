import math

import numpy as np
import pytest
import torch

from archsearch.blocks import build_model, inference_model
from archsearch.data import PreparedData, Split
from archsearch.trial import TrialSpec, evaluate, run_trial
from archsearch.trial.runner import model_io
from archsearch.types import ArchConfig, Constraints, TaskKind, TrainConfig, TrialStatus

TRAIN = TrainConfig(lr=3e-3, batch_size=32, max_steps=9, eval_every=3)  # 3 rounds
CPU = torch.device("cpu")


def test_completed_trial_reports_every_round_and_tests_the_best(tiny_data):
    reports = []
    result = run_trial(TrialSpec(ArchConfig("gru", {"d_model": 8}), TRAIN), tiny_data,
                       reports.append)
    outcome = result.outcome
    assert outcome.status is TrialStatus.COMPLETED
    assert [r.epoch for r in reports] == [1, 2, 3]
    assert outcome.val_score == min(r.val_score for r in reports)
    assert outcome.best_epoch == min(reports, key=lambda r: r.val_score).epoch
    assert outcome.test_score is not None and math.isfinite(outcome.test_score)
    assert outcome.cost.params > 0 and outcome.cost.latency_ms > 0
    assert result.state_dict is not None


def test_training_learns_something(tiny_data):
    # The adding problem's constant predictor scores ~1/6 mse on the normalised target; a few
    # rounds of a small GRU must beat the untrained first round.
    reports = []
    run_trial(TrialSpec(ArchConfig("gru", {"d_model": 16}),
                        TrainConfig(lr=1e-2, batch_size=16, max_steps=60, eval_every=10)),
              tiny_data, reports.append)
    assert reports[-1].train_loss < reports[0].train_loss


def test_seeded_trials_are_deterministic(tiny_data):
    spec = TrialSpec(ArchConfig("lstm", {"d_model": 8}), TRAIN, seed=3)
    a = run_trial(spec, tiny_data, lambda r: None).outcome
    b = run_trial(spec, tiny_data, lambda r: None).outcome
    assert a.val_score == b.val_score and a.test_score == b.test_score


def test_int8_trial_is_measured_and_scored_as_deployed(tiny_data):
    arch = ArchConfig("lstm", {"d_model": 32, "quantize": "int8"})
    float_cost = run_trial(TrialSpec(ArchConfig("lstm", {"d_model": 32}), TRAIN), tiny_data,
                           lambda r: None).outcome.cost
    reports = []
    result = run_trial(TrialSpec(arch, TRAIN), tiny_data, reports.append)
    outcome = result.outcome
    assert outcome.status is TrialStatus.COMPLETED and len(reports) == 3
    assert outcome.cost.quantized == "int8" and outcome.cost.params == float_cost.params
    assert outcome.cost.model_size_mb < 0.5 * float_cost.model_size_mb
    assert reports[-1].train_loss < reports[0].train_loss  # it trains (in float)
    # The scores are the int8 copy's of the best float weights, not the float model's.
    model = build_model(arch, model_io(tiny_data, Constraints()))
    model.load_state_dict(result.state_dict)
    int8_test = evaluate(inference_model(model), tiny_data.test, tiny_data.task, CPU)
    float_test = evaluate(model, tiny_data.test, tiny_data.task, CPU)
    assert outcome.test_score == int8_test != float_test


def test_infeasible_trial_trains_zero_epochs(tiny_data):
    reports = []
    result = run_trial(TrialSpec(ArchConfig("transformer", {"d_model": 16}), TRAIN,
                                 Constraints(max_params=100)), tiny_data, reports.append)
    assert result.outcome.status is TrialStatus.INFEASIBLE
    assert result.outcome.epochs_run == 0 and reports == []
    assert "max_params=100" in result.outcome.error


def test_bad_config_fails_with_its_error(tiny_data):
    result = run_trial(TrialSpec(ArchConfig("lstm", {"d_model": 8, "width": 3}), TRAIN),
                       tiny_data, lambda r: None)
    assert result.outcome.status is TrialStatus.FAILED
    assert "does not take width" in result.outcome.error


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without a GPU")
def test_cuda_without_a_gpu_fails_the_trial_with_its_reason(tiny_data):
    result = run_trial(TrialSpec(ArchConfig("gru", {"d_model": 4}), TRAIN,
                                 Constraints(device="cuda")), tiny_data, lambda r: None)
    assert result.outcome.status is TrialStatus.FAILED
    assert "no CUDA device" in result.outcome.error


def test_nan_loss_fails_the_trial():
    X = np.ones((20, 5, 1), dtype=np.float32)
    y = np.full(20, np.inf, dtype=np.float32)  # an infinite target makes the loss non-finite
    split = Split(X, y, np.full(20, 5))
    data = PreparedData("bad", TaskKind.REGRESSION, split, split, split, 1, 1, 5)
    result = run_trial(TrialSpec(ArchConfig("gru", {"d_model": 4}), TRAIN), data, lambda r: None)
    assert result.outcome.status is TrialStatus.FAILED
    assert "loss became" in result.outcome.error


@pytest.mark.parametrize("family", ["lstm", "gru", "transformer"])
def test_streaming_constraint_builds_causal_models(tiny_data, family):
    result = run_trial(TrialSpec(ArchConfig(family, {"d_model": 8}),
                                 TrainConfig(max_steps=2, eval_every=2),
                                 Constraints(streaming=True)),
                       tiny_data, lambda r: None)
    assert result.outcome.status is TrialStatus.COMPLETED
