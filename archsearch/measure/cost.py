"""What a trial records of a model: :func:`measure_cost` (and the device it runs on)."""

from __future__ import annotations

import io

import torch
from torch import nn

from archsearch.measure.flops import FLOPS_METHOD, count_flops
from archsearch.measure.memory import forward_peak_mb
from archsearch.measure.timing import fixed_threads, latency_ms, step_latency_ms, train_step_ms
from archsearch.types import CostMeasurement


def wants_cuda(requested: str = "auto") -> bool:
    """Whether the ``device`` setting (cpu, cuda, auto) asks for the GPU: ``auto`` picks CUDA
    when present."""
    return requested == "cuda" or (requested == "auto" and torch.cuda.is_available())


def select_device(requested: str = "auto") -> torch.device:
    """The device :func:`wants_cuda` names; ``cuda`` without a GPU falls back loudly to an
    error."""
    if not wants_cuda(requested):
        return torch.device("cpu")
    if not torch.cuda.is_available():
        raise RuntimeError("device=cuda was requested but no CUDA device is visible")
    return torch.device("cuda")


def count_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def model_size_mb(model: nn.Module) -> float:
    """Size of the serialized ``state_dict`` in MB: what export writes (int8 weights count 1 B)."""
    buffer = io.BytesIO()
    torch.save(model.state_dict(), buffer)
    return buffer.getbuffer().nbytes / 2**20


def measure_cost(model: nn.Module, n_features: int, seq_len: int, device: torch.device,
                 repeats: int = 10, *, batch_size: int | None = None,
                 threads: int | None = None, step_tokens: int = 16,
                 warmup: int = 3) -> CostMeasurement:
    """Measure an (untrained) model on ``device``, in eval mode, threads pinned.

    Always: parameters, FLOPs, latency (median, p95) at batch 1, peak memory of one forward,
    serialized size, and, for a model that streams, per-token step latency at batch 1 over
    ``step_tokens`` tokens (0 skips it). With ``batch_size``: latency at that batch size and the
    time of one training step (forward, backward, AdamW) at that batch size.

    A model configured with ``quantize: int8`` (see ``archsearch.blocks.quantize``) is measured
    as deployed: latency, memory and size of its int8 copy, on CPU whatever ``device`` is
    (PyTorch's dynamic quantization has no CUDA kernels; the recorded ``device`` says "cpu").
    Parameter and FLOP counts are those of the float graph; the training step, which runs in
    float, is timed on the float model on ``device``.
    """
    from archsearch.blocks.quantize import deploy

    was_training = model.training
    model.eval()
    deployed, run_on = deploy(model, device)
    quantized = "int8" if deployed is not model else "none"
    x = torch.randn(1, seq_len, n_features, device=run_on)
    try:
        with fixed_threads(threads) as n_threads:
            median, p95 = latency_ms(deployed, x, warmup=warmup, repeats=repeats)
            batch_median = batch_p95 = step_median = step_p95 = train_ms = None
            if batch_size is not None:
                xb = torch.randn(batch_size, seq_len, n_features, device=run_on)
                batch_median, batch_p95 = latency_ms(deployed, xb, warmup=warmup,
                                                     repeats=repeats)
                train_ms, _ = train_step_ms(model, n_features, seq_len, batch_size, device,
                                            repeats=max(1, min(repeats, 5)))
                model.eval()
            if step_tokens and getattr(deployed, "can_step", False):
                step_median, step_p95 = step_latency_ms(deployed, n_features, run_on,
                                                        tokens=step_tokens,
                                                        repeats=max(1, min(repeats, 5)))
            memory_mb, method = forward_peak_mb(deployed, x)
        return CostMeasurement(
            params=count_params(model),
            flops=count_flops(model, x.to(device)),
            latency_ms=median,
            latency_p95_ms=p95,
            peak_memory_mb=memory_mb,
            memory_method=method,
            device=run_on.type,
            threads=n_threads,
            batch_size=batch_size,
            latency_batch_ms=batch_median,
            latency_batch_p95_ms=batch_p95,
            step_ms=step_median,
            step_p95_ms=step_p95,
            train_step_ms=train_ms,
            model_size_mb=model_size_mb(deployed),
            quantized=quantized,
            flops_method=FLOPS_METHOD,
        )
    finally:
        model.train(was_training)
