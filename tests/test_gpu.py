"""The CUDA paths: trials train in bf16 on the GPU, costs are measured there, int8 copies run on
the CPU, and a Ray search with GPUs per trial puts its trials on the GPU.

Skipped where no CUDA device is visible (CI has none); run on a GPU machine with
``pytest -m gpu``. The README gives the last run's numbers.
"""

from __future__ import annotations

import dataclasses
import math

import pytest
import torch

from archsearch.measure import measure_cost, train_step_ms, training_dtype
from archsearch.report.scaling import measure_scaling
from archsearch.trial import Snapshots, TrialSpec, run_trial
from archsearch.trial.runner import model_io
from archsearch.types import ArchConfig, Constraints, TrainConfig, TrialStatus
from tests.records import task_record, trial_record
from tests.test_blocks_contract import CASES, INT8_CASES

pytestmark = [pytest.mark.gpu,
              pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")]

TRAIN = TrainConfig(lr=3e-3, batch_size=32, max_steps=4, eval_every=2)  # 2 rounds
ON_GPU = Constraints(device="cuda")


@pytest.mark.parametrize("case", sorted(CASES))
def test_every_family_trains_and_is_measured_on_the_gpu(case, tiny_data):
    family, hparams = CASES[case]
    reports = []
    result = run_trial(TrialSpec(ArchConfig(family, {"d_model": 16, **hparams}), TRAIN, ON_GPU),
                       tiny_data, reports.append)
    outcome = result.outcome
    assert outcome.status is TrialStatus.COMPLETED, outcome.error
    assert outcome.cost.device == "cuda" and outcome.cost.latency_ms > 0
    assert outcome.cost.memory_method.startswith("weights + torch.cuda")
    assert [r.epoch for r in reports] == [1, 2]
    assert all(math.isfinite(r.train_loss) for r in reports)
    assert math.isfinite(outcome.test_score)
    assert all(v.device.type == "cpu" for v in result.state_dict.values())  # exportable as is


def test_a_trial_resumed_on_the_gpu_draws_its_dropout_on_from_where_it_stopped(tiny_data):
    # Dropout on a GPU draws from the device's generator; the resumed run must restore it, so
    # that it ends where the uninterrupted run ends (the count of draws is the same; the
    # values of bf16 steps need not be bit for bit).
    spec = TrialSpec(ArchConfig("transformer", {"d_model": 16, "dropout": 0.3}),
                     TrainConfig(lr=3e-3, batch_size=32, max_steps=6, eval_every=2), ON_GPU,
                     seed=5)
    run_trial(spec, tiny_data, lambda r: None)
    uninterrupted = torch.cuda.get_rng_state()
    saved = []

    def stop_after_round_1(report, state):
        saved.append(state)
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_trial(spec, tiny_data, lambda r: None, snapshots=Snapshots(stop_after_round_1, 0.0))
    assert saved[-1]["cuda_rng"] is not None
    resumed = run_trial(dataclasses.replace(spec, seed=99), tiny_data, lambda r: None,
                        snapshots=Snapshots(lambda r, s: None, 0.0, saved[-1]))
    assert resumed.outcome.status is TrialStatus.COMPLETED, resumed.outcome.error
    assert torch.equal(torch.cuda.get_rng_state(), uninterrupted)


@pytest.mark.parametrize("case", INT8_CASES)
def test_an_int8_trial_trains_on_the_gpu_and_is_measured_and_scored_on_the_cpu(case,
                                                                                tiny_data):
    family, hparams = CASES[case]
    arch = ArchConfig(family, {"d_model": 16, "quantize": "int8", **hparams})
    outcome = run_trial(TrialSpec(arch, TRAIN, ON_GPU), tiny_data, lambda r: None).outcome
    assert outcome.status is TrialStatus.COMPLETED, outcome.error
    assert outcome.cost.quantized == "int8" and outcome.cost.device == "cpu"
    assert math.isfinite(outcome.test_score)


def test_the_training_step_is_timed_in_the_precision_trials_train_in(tiny_data):
    from archsearch.blocks import build_model

    cuda = torch.device("cuda")
    assert training_dtype(cuda) is torch.bfloat16 and training_dtype(torch.device("cpu")) is None
    model = build_model(ArchConfig("transformer", {"d_model": 256, "n_layers": 2}),
                        model_io(tiny_data, Constraints())).to(cuda)
    seen = set()
    hook = model.register_forward_hook(lambda m, args, out: seen.add(out.dtype))
    median, _ = train_step_ms(model, tiny_data.n_features, 64, 32, cuda, warmup=1, repeats=3)
    hook.remove()
    assert median > 0 and torch.bfloat16 in seen


def test_cost_of_the_same_model_on_gpu_and_cpu(tiny_data):
    from archsearch.blocks import build_model

    model = build_model(ArchConfig("lstm", {"d_model": 32}), model_io(tiny_data, Constraints()))
    cpu = measure_cost(model, tiny_data.n_features, 64, torch.device("cpu"), batch_size=32)
    gpu = measure_cost(model.to("cuda"), tiny_data.n_features, 64, torch.device("cuda"),
                       batch_size=32)
    assert (cpu.device, gpu.device) == ("cpu", "cuda")
    assert cpu.params == gpu.params and cpu.flops == gpu.flops
    assert gpu.train_step_ms > 0 and gpu.peak_memory_mb > 0


def test_report_scaling_on_the_gpu_times_an_int8_copy_on_the_cpu():
    task = task_record(source="builtin:adding", dataset_name="adding", budget_trials=2,
                       meta_features={"seq_len": 32, "n_features": 2, "n_outputs": 1})
    trials = [trial_record(id=n, number=n, family=family,
                           config={"family": family, "model": model})
              for n, (family, model) in enumerate([("gru", {"d_model": 16}),
                                                   ("lstm", {"d_model": 16,
                                                             "quantize": "int8"})])]
    table = measure_scaling(task, trials, budget_s=60)
    rows = {row.family: row for row in table.rows}
    assert table.device == "cuda"
    assert rows["lstm"].error is None and rows["lstm"].int8_on_cpu
    assert rows["gru"].error is None and not rows["gru"].int8_on_cpu
    assert all(row.latency_ms and row.train_step_ms for row in rows.values())


@pytest.mark.slow
def test_a_search_with_a_gpu_per_trial_trains_on_the_gpu(tmp_path):
    pytest.importorskip("ray")
    from archsearch.options import SearchOptions
    from archsearch.store import Store
    from archsearch.workflow import SearchRequest, run_task

    db = f"sqlite:///{tmp_path / 'gpu.db'}"
    options = SearchOptions(budget_trials=4, cv_folds=0, gpus_per_trial=0.5, seed=1)
    summary = run_task(SearchRequest(data="builtin:adding?length=16&n=200", options=options,
                                     db_url=db, report_dir=tmp_path / "reports"),
                       lambda line: None)
    with Store(db) as store:
        trials = store.trials(summary["task_id"])
    assert summary["status"] == "completed" and len(trials) == 4
    measured = [t for t in trials if t.status in ("completed", "pruned")]
    assert measured and all(t.device in ("cuda", "cpu") for t in measured)
    # Float trials run on the GPU Ray gave them (an int8 one is measured on the CPU).
    assert any(t.device == "cuda" for t in measured)
