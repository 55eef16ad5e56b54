import dataclasses
import io
import math

import numpy as np
import pytest
import torch

from archsearch.blocks import build_model, inference_model
from archsearch.data import PreparedData, Split
from archsearch.measure import available_memory_mb, weights_bytes
from archsearch.measure.estimate import estimate_cost
from archsearch.measure.memory import LiveTensorPeak
from archsearch.trial import Snapshots, TrialSpec, evaluate, run_trial
from archsearch.trial.preflight import (
    BATCH_MB,
    EVAL_BATCH_SIZE,
    MEMORY_SHARE,
    estimate_violations,
    train_chunks,
    trial_estimate,
)
from archsearch.trial.runner import _train_steps, model_io
from archsearch.types import ArchConfig, Constraints, ModelIO, TaskKind, TrainConfig, TrialStatus
from tests.test_estimate import ESTIMATE_FACTORS

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


def test_a_trial_stopped_mid_training_goes_on_from_its_snapshot_as_if_never_stopped(tiny_data):
    # Dropout draws from the random state and 4 rounds of 32 run through the 72 training
    # series more than once, so the data order matters too: the resumed run must restore both.
    spec = TrialSpec(ArchConfig("gru", {"d_model": 8, "dropout": 0.3}),
                     TrainConfig(lr=3e-3, batch_size=32, max_steps=12, eval_every=3), seed=5)
    whole = []
    uninterrupted = run_trial(spec, tiny_data, whole.append)

    def stop_after_round_2(report, state):
        kept = io.BytesIO()
        torch.save(state, kept)  # as it travels: a file that loads with weights_only
        saved.append(torch.load(io.BytesIO(kept.getvalue()), weights_only=True))
        if report.epoch == 2:
            raise KeyboardInterrupt  # the stop lands right after the snapshot

    saved = []
    with pytest.raises(KeyboardInterrupt):
        run_trial(spec, tiny_data, lambda r: None, snapshots=Snapshots(stop_after_round_2, 0.0))
    assert [len(state["reports"]) for state in saved] == [1, 2]
    reports = []
    # Run again as a resume runs it: under another trial number, so another seed.
    resumed = run_trial(dataclasses.replace(spec, seed=99), tiny_data, reports.append,
                        snapshots=Snapshots(lambda r, state: reports.append(r), 0.0, saved[-1]))
    assert [(r.epoch, r.train_loss, r.val_score) for r in reports] == [
        (r.epoch, r.train_loss, r.val_score) for r in whole]
    assert resumed.outcome.status is TrialStatus.COMPLETED
    assert (resumed.outcome.val_score, resumed.outcome.test_score, resumed.outcome.best_epoch
            ) == (uninterrupted.outcome.val_score, uninterrupted.outcome.test_score,
                  uninterrupted.outcome.best_epoch)
    # Its training seconds go on from the snapshot's.
    assert resumed.outcome.train_seconds >= saved[-1]["seconds"] > 0
    other = TrialSpec(ArchConfig("gru", {"d_model": 8, "dropout": 0.1}), spec.train)
    refused = run_trial(other, tiny_data, lambda r: None,
                        snapshots=Snapshots(lambda r, s: None, 0.0, saved[-1])).outcome
    assert refused.status is TrialStatus.FAILED and "another configuration" in refused.error


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
    with LiveTensorPeak() as tracker:
        result = run_trial(TrialSpec(ArchConfig("transformer", {"d_model": 16}), TRAIN,
                                     Constraints(max_params=100)), tiny_data, reports.append)
    assert result.outcome.status is TrialStatus.INFEASIBLE
    assert result.outcome.epochs_run == 0 and reports == []
    assert "parameters > max_params=100" in result.outcome.error
    # Ended by its estimate: no model was built, nothing allocated, nothing measured.
    assert "estimated before building the model" in result.outcome.error
    assert tracker.peak == 0 and result.outcome.cost is None


def test_a_configuration_whose_estimate_fits_is_built_and_measured(tiny_data):
    # The estimate does not judge latency: the measurement after building does.
    result = run_trial(TrialSpec(ArchConfig("lstm", {"d_model": 16}), TRAIN,
                                 Constraints(max_latency_ms=1e-9)), tiny_data, lambda r: None)
    assert result.outcome.status is TrialStatus.INFEASIBLE
    assert result.outcome.cost is not None and "max_latency_ms" in result.outcome.error
    assert "estimated" not in result.outcome.error


def _ragged(n: int, seq_len: int) -> PreparedData:
    """n series of up to seq_len steps (half of them shorter: padded batches), one channel."""
    rng = np.random.default_rng(0)
    lengths = np.where(np.arange(n) % 2 == 0, seq_len, seq_len // 2).astype(np.int64)
    split = Split(X=rng.normal(size=(n, seq_len, 1)).astype(np.float32),
                  y=(np.arange(n) % 2).astype(np.int64), lengths=lengths)
    return PreparedData("ragged", TaskKind.CLASSIFICATION, split, split, split, n_features=1,
                        n_outputs=2, seq_len=seq_len)


def test_attention_too_long_for_this_worker_is_infeasible_before_anything_is_allocated():
    data = _ragged(64, 20_000)  # the max_steps data limit; 5 MB of data
    # 16 layers of T x T masks: about 30 GB for one series, so even chunks of one do not fit
    arch = ArchConfig("transformer", {"d_model": 32, "n_layers": 16, "n_heads": 2})
    planned = trial_estimate(arch, model_io(data, Constraints()), data, 32, on_cpu=True)
    if planned.run_mb < 2 * MEMORY_SHARE * available_memory_mb():
        pytest.skip(f"this machine's memory would hold {planned.run_mb:,.0f} MB for a trial")
    with LiveTensorPeak() as tracker:
        result = run_trial(TrialSpec(arch, TRAIN), data, lambda r: None)
    assert tracker.peak == 0
    outcome = result.outcome
    assert outcome.status is TrialStatus.INFEASIBLE and outcome.epochs_run == 0
    assert f"> {MEMORY_SHARE:g} of the" in outcome.error  # the worker's memory, not a constraint
    assert "MB this worker has available" in outcome.error and "20,000 steps" in outcome.error
    # the evaluation shrinks to batch 1 (BATCH_MB); the training step cannot, in chunks of one
    assert "a training step at batch 32 in 32 chunks" in outcome.error
    assert "--lookback" in outcome.error and "d_model" in outcome.error
    assert "estimated before building the model" in outcome.error


def test_a_memory_bound_evaluation_runs_in_smaller_batches():
    data = _ragged(400, 100)
    io = model_io(data, Constraints())
    scan = trial_estimate(ArchConfig("ssm", {"d_model": 64, "kind": "selective", "n_layers": 2}),
                          io, data, 32, on_cpu=True)  # (B, L, d, n) tensors: ~9 MB a series
    assert 1 < scan.eval_batch_size < EVAL_BATCH_SIZE
    assert scan.eval_mb - scan.weights_mb <= BATCH_MB
    lstm = trial_estimate(ArchConfig("lstm", {"d_model": 64}), io, data, 32, on_cpu=True)
    assert lstm.eval_batch_size == EVAL_BATCH_SIZE
    assert scan.chunks > 1 and lstm.chunks == 1  # and in training, chunks


def test_on_a_cpu_a_training_step_is_planned_and_measured_at_its_largest_chunk():
    data = _ragged(400, 100)
    io = model_io(data, Constraints())
    arch = ArchConfig("ssm", {"d_model": 64, "kind": "selective", "n_layers": 2})
    whole = trial_estimate(arch, io, data, 32, on_cpu=False)  # a GPU's whole batch
    chunked = trial_estimate(arch, io, data, 32, on_cpu=True)
    assert whole.chunks == 1 and chunked.chunks == train_chunks(whole) > 1
    assert chunked.train_step_mb < 0.75 * whole.train_step_mb
    assert estimate_violations(whole, Constraints(), 1.5 * whole.train_step_mb)
    assert not estimate_violations(chunked, Constraints(), 1.5 * whole.train_step_mb)
    batch = (torch.from_numpy(data.train.X[:32]), torch.from_numpy(data.train.y[:32]),
             torch.from_numpy(data.train.lengths[:32]))
    low, high = ESTIMATE_FACTORS
    for planned in (whole, chunked):
        model = build_model(arch, io)
        optimizer = torch.optim.AdamW(model.parameters())
        schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: 1.0)
        with LiveTensorPeak() as tracker:
            _train_steps(model, iter([batch]), 1, optimizer, schedule, TRAIN, None,
                         planned.chunks)
        measured = (weights_bytes(model) + tracker.peak) / 2**20
        assert low * measured <= planned.train_step_mb <= high * measured, (planned, measured)


@pytest.mark.parametrize("family", ["lstm", "ssm"])
def test_a_batch_in_chunks_takes_the_step_of_the_whole_batch(family):
    data = _ragged(12, 16)  # half the series shorter: chunks of different lengths
    io = model_io(data, Constraints())
    arch = ArchConfig(family, {"d_model": 8, "n_layers": 1})  # dropout 0: deterministic
    weights = []
    for chunks in (1, 3):
        torch.manual_seed(0)
        model = build_model(arch, io)
        optimizer = torch.optim.AdamW(model.parameters(), lr=1e-2)
        schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: 1.0)
        batch = (torch.from_numpy(data.train.X), torch.from_numpy(data.train.y),
                 torch.from_numpy(data.train.lengths))
        _train_steps(model, iter([batch]), 1, optimizer, schedule, TRAIN, None, chunks)
        weights.append(torch.cat([p.detach().flatten() for p in model.parameters()]))
    assert torch.allclose(weights[0], weights[1], atol=1e-6)


def test_only_batch_statistics_forbid_chunks():
    io = ModelIO(n_features=1, task=TaskKind.CLASSIFICATION, n_outputs=2, max_len=16)
    coupled = {family: build_model(ArchConfig(family, hparams), io).batch_coupled
               for family, hparams in [("fcn", {}), ("lstm", {}), ("ssm", {}),
                                       ("transformer", {"moe_experts": 4})]}
    assert coupled == {"fcn": True, "lstm": False, "ssm": False, "transformer": False}
    # the estimate, on the meta device, says the same: the memory check plans no fcn chunks
    assert {family: estimate_cost(ArchConfig(family, hparams), io, 16, 8).batch_coupled
            for family, hparams in [("fcn", {}), ("lstm", {})]} == {"fcn": True, "lstm": False}


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


def _waves(n: int, classes: list[int], seed: int) -> Split:
    """Series of class c: a sine of c + 1 cycles at a random phase, plus noise."""
    rng = np.random.default_rng(seed)
    y = np.array([classes[i % len(classes)] for i in range(n)], dtype=np.int64)
    t = np.linspace(0, 1, 48)
    phase = rng.uniform(0, 2 * np.pi, size=(n, 1))
    X = np.sin(2 * np.pi * (y[:, None] + 1) * t + phase) + 0.3 * rng.normal(size=(n, 48))
    return Split(X[..., None].astype(np.float32), y, np.full(n, 48, dtype=np.int64))


ROCKET = ArchConfig("rocket", {"d_model": 4, "n_features": 336, "max_dilations": 4})


@pytest.mark.parametrize("classes", [[0, 1], [0, 1, 3]])
def test_a_ridge_readout_is_fitted_in_closed_form_as_minirocket_fits_it(classes):
    """rocket's head is MiniRocket's ridge classifier on the model's own features: one round,
    the same decisions as scikit-learn's fit on those features, and a class missing from the
    training split (3 of 4 here) never predicted."""
    from archsearch.blocks.readout import ridge_for

    train, val = _waves(60, classes, 0), _waves(40, classes, 1)
    data = PreparedData("waves", TaskKind.CLASSIFICATION, train, val, val, n_features=1,
                        n_outputs=4, seq_len=48)
    reports = []
    result = run_trial(TrialSpec(ROCKET, TRAIN, seed=2), data, reports.append)
    outcome = result.outcome
    assert outcome.status is TrialStatus.COMPLETED and [r.epoch for r in reports] == [1]
    assert outcome.val_score >= 0.9 and math.isfinite(reports[0].train_loss)
    model = build_model(ROCKET, model_io(data, Constraints()))
    model.load_state_dict(result.state_dict)
    model.eval()
    with torch.no_grad():
        features = model.features(torch.from_numpy(train.X)).numpy()
        decided = model(torch.from_numpy(val.X)).argmax(-1).numpy()
    ridge = ridge_for(TaskKind.CLASSIFICATION).fit(features, train.y)
    with torch.no_grad():
        expected = ridge.predict(model.features(torch.from_numpy(val.X)).numpy())
    assert (decided == expected).all() and set(decided) <= set(classes)
    assert outcome.val_score == evaluate(model, val, TaskKind.CLASSIFICATION, CPU)


def test_a_ridge_readout_regresses(tiny_data):
    reports = []
    outcome = run_trial(TrialSpec(ROCKET, TRAIN), tiny_data, reports.append).outcome
    assert outcome.status is TrialStatus.COMPLETED and len(reports) == 1
    assert outcome.test_score < 0.75 * float(np.var(tiny_data.test.y))  # beats the mean
