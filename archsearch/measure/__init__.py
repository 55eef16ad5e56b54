"""Measure room: the only place that times things. Parameters, FLOPs, latency, memory."""

from __future__ import annotations

import statistics
import time

import torch
from torch.utils.flop_counter import FlopCounterMode

from archsearch.measure.memory import forward_peak_mb
from archsearch.types import CostMeasurement

__all__ = ["count_params", "count_flops", "latency_ms", "measure_cost", "select_device"]


def select_device(requested: str = "auto") -> torch.device:
    """``auto`` picks CUDA when present; ``cuda`` without a GPU falls back loudly to an error."""
    if requested == "cpu":
        return torch.device("cpu")
    if requested == "cuda" or (requested == "auto" and torch.cuda.is_available()):
        if not torch.cuda.is_available():
            raise RuntimeError("device=cuda was requested but no CUDA device is visible")
        return torch.device("cuda")
    return torch.device("cpu")


def count_params(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def count_flops(model: torch.nn.Module, x: torch.Tensor) -> int:
    """FLOPs of one forward, by PyTorch's own counter (ops it has no formula for count 0)."""
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        model(x)
    return int(counter.get_total_flops())


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def latency_ms(model: torch.nn.Module, x: torch.Tensor, warmup: int = 3,
               repeats: int = 10) -> tuple[float, float]:
    """(median, p95) wall-clock milliseconds of a no-grad forward, after warm-up."""
    times = []
    with torch.no_grad():
        for _ in range(warmup):
            model(x)
        _sync(x.device)
        for _ in range(repeats):
            start = time.perf_counter()
            model(x)
            _sync(x.device)
            times.append((time.perf_counter() - start) * 1000.0)
    times.sort()
    p95 = times[min(len(times) - 1, int(round(0.95 * (len(times) - 1))))]
    return statistics.median(times), p95


def measure_cost(model: torch.nn.Module, n_features: int, seq_len: int,
                 device: torch.device, repeats: int = 10) -> CostMeasurement:
    """Measure an (untrained) model at batch 1 on ``device``, in eval mode."""
    was_training = model.training
    model.eval()
    x = torch.randn(1, seq_len, n_features, device=device)
    median, p95 = latency_ms(model, x, repeats=repeats)
    memory_mb, method = forward_peak_mb(model, x)
    cost = CostMeasurement(
        params=count_params(model),
        flops=count_flops(model, x),
        latency_ms=median,
        latency_p95_ms=p95,
        peak_memory_mb=memory_mb,
        memory_method=method,
        device=device.type,
        threads=torch.get_num_threads(),
    )
    model.train(was_training)
    return cost
