"""Measurement: parameter and FLOP counts, timings with pinned threads, memory, int8 size."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from archsearch.blocks import build_model
from archsearch.measure import (
    available_memory_mb,
    count_flops,
    count_params,
    fixed_threads,
    forward_peak_mb,
    latency_ms,
    measure_cost,
    model_size_mb,
    rnn_flops,
    step_latency_ms,
    summarise,
    time_interleaved,
    train_step_ms,
)
from archsearch.measure.memory import CPU_METHOD, LiveTensorPeak
from archsearch.types import ArchConfig, CostMeasurement, ModelIO, TaskKind

CPU = torch.device("cpu")
IO = ModelIO(n_features=2, task=TaskKind.REGRESSION, n_outputs=1, max_len=16)


def model(family: str, **hparams: object) -> torch.nn.Module:
    torch.manual_seed(0)
    return build_model(ArchConfig(family, {"d_model": 16} | hparams), IO)


def test_measure_cost_keeps_its_signature_and_fills_the_defaults() -> None:
    cost = measure_cost(model("transformer", n_layers=1), 2, 16, CPU, repeats=2)
    assert isinstance(cost, CostMeasurement)
    assert cost.params == count_params(model("transformer", n_layers=1))
    assert cost.flops and cost.flops > 0
    assert 0 < cost.latency_ms <= cost.latency_p95_ms
    assert cost.peak_memory_mb > 0 and cost.memory_method == CPU_METHOD
    assert cost.device == "cpu" and cost.threads == torch.get_num_threads()
    assert cost.step_ms is None  # a Transformer does not stream
    assert cost.batch_size is cost.train_step_ms is cost.latency_batch_ms is None
    assert cost.quantized == "none" and cost.model_size_mb > 0 and cost.flops_method
    # It round-trips through a dict, as the search room sends it between processes.
    assert CostMeasurement(**dataclasses.asdict(cost)) == cost


def test_measure_cost_with_batch_threads_and_streaming() -> None:
    before = torch.get_num_threads()
    lstm = model("lstm")
    lstm.train()
    weights = {k: v.clone() for k, v in lstm.state_dict().items()}
    cost = measure_cost(lstm, 2, 16, CPU, repeats=2, batch_size=4, threads=1)
    assert torch.get_num_threads() == before  # restored
    assert cost.threads == 1 and cost.batch_size == 4
    assert cost.latency_batch_ms > 0 and cost.latency_batch_p95_ms >= cost.latency_batch_ms
    assert cost.train_step_ms > 0
    assert cost.step_ms > 0 and cost.step_p95_ms >= cost.step_ms
    assert lstm.training  # mode restored
    assert all(torch.equal(v, weights[k]) for k, v in lstm.state_dict().items())  # untouched


def test_int8_is_measured_as_deployed() -> None:
    # d_model 64: weights, not the serialization overhead, dominate the size
    float_cost = measure_cost(model("lstm", n_layers=2, d_model=64), 2, 16, CPU, repeats=2)
    int8_cost = measure_cost(model("lstm", n_layers=2, d_model=64, quantize="int8"), 2, 16, CPU,
                             repeats=2)
    assert int8_cost.quantized == "int8" and float_cost.quantized == "none"
    assert int8_cost.params == float_cost.params and int8_cost.flops == float_cost.flops
    assert int8_cost.model_size_mb < 0.5 * float_cost.model_size_mb
    assert int8_cost.step_ms > 0  # the int8 LSTM streams too


def test_interleaved_timing_alternates_the_functions() -> None:
    calls: list[str] = []
    times = time_interleaved([lambda: calls.append("a"), lambda: calls.append("b")], CPU,
                             warmup=1, repeats=3)
    assert calls == ["a", "b"] * 4  # one warm-up round, then three timed rounds
    assert [len(t) for t in times] == [3, 3] and all(ms >= 0 for t in times for ms in t)


def test_fixed_threads_pins_and_restores() -> None:
    before = torch.get_num_threads()
    with fixed_threads(1) as n:
        assert n == 1 and torch.get_num_threads() == 1
    assert torch.get_num_threads() == before
    with fixed_threads() as n:
        assert n == before
    with pytest.raises(ValueError), fixed_threads(0):
        pass
    assert torch.get_num_threads() == before


def test_rnn_flops_are_analytic_and_count_valid_tokens_only() -> None:
    lstm, gru = model("lstm", n_layers=2), model("gru", bidirectional=True)
    x = torch.randn(3, 10, 2)
    # embed (2 -> 16) and head (16 -> 1) matmuls, plus 2 * 4 gates * H * (I + H) per token/layer
    linear = 2 * 2 * 16 * 30 + 2 * 16 * 1 * 3
    assert count_flops(lstm, x) == linear + 2 * (2 * 4 * 16 * 32) * 30
    assert rnn_flops(gru.block.rnn, 30) == 2 * (2 * 3 * 8 * (16 + 8)) * 30
    assert count_flops(gru, x) == linear + rnn_flops(gru.block.rnn, 30)
    ragged = count_flops(lstm, x, torch.tensor([10, 4, 2]))
    assert ragged == 2 * 2 * 16 * 30 + 2 * 16 * 3 + 2 * (2 * 4 * 16 * 32) * 16


def test_fft_flops_are_counted_for_s4d() -> None:
    s4d, selective = model("ssm", kind="s4d", n_layers=1), model("ssm", kind="selective")
    x = torch.randn(1, 16, 2)
    no_fft = torch.utils.flop_counter.FlopCounterMode(display=False)
    with torch.no_grad(), no_fft:
        s4d(x)
    assert count_flops(s4d, x) > no_fft.get_total_flops()
    assert count_flops(selective, x) > 0


def test_latency_step_and_train_timings() -> None:
    lin = model("linear_attention", n_layers=1)
    lin_causal = build_model(ArchConfig("linear_attention", {"d_model": 16, "n_layers": 1}),
                             dataclasses.replace(IO, causal=True))
    median, p95 = latency_ms(lin.eval(), torch.randn(2, 16, 2), warmup=1, repeats=3)
    assert 0 < median <= p95
    step_median, step_p95 = step_latency_ms(lin_causal.eval(), 2, CPU, tokens=4, repeats=2)
    assert 0 < step_median <= step_p95
    with pytest.raises(ValueError, match="no step"):
        step_latency_ms(lin, 2, CPU)
    cls = build_model(ArchConfig("gru", {"d_model": 8}),
                      ModelIO(2, TaskKind.CLASSIFICATION, 3, 16))
    train_median, _ = train_step_ms(cls, 2, 16, 4, CPU, repeats=2)
    assert train_median > 0
    assert summarise([3.0, 1.0, 2.0]) == (2.0, 3.0)


def test_cpu_peak_memory_tracks_live_tensors() -> None:
    with torch.no_grad(), LiveTensorPeak() as tracker:
        a = torch.ones(1000, 1000)  # 4 MB
        b = a * 2  # 8 MB live
        del a
        c = b * 2  # a freed: still 8 MB
        del b, c
    assert 7.5 * 2**20 < tracker.peak < 8.5 * 2**20
    lstm = model("lstm")
    mb, method = forward_peak_mb(lstm, torch.randn(1, 16, 2))
    assert mb > count_params(lstm) * 4 / 2**20 and method == CPU_METHOD
    assert model_size_mb(lstm) > 0


def test_available_memory_is_positive_and_below_the_machines_total() -> None:
    with open("/proc/meminfo") as fh:
        total_mb = next(int(line.split()[1]) for line in fh if line.startswith("MemTotal:")) / 1024
    assert 0 < available_memory_mb() <= total_mb
