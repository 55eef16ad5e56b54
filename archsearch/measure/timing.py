"""Wall-clock timings: warm-up, then median and p95 over repeats, threads fixed, CUDA synced.

Every timing runs inside :func:`fixed_threads`, which sets ``torch.set_num_threads`` to the
requested count (default: the current one) and restores the previous count afterwards, so the
recorded thread count is the one the numbers were taken with. On CUDA the device is synchronised
before the clock starts and before it stops.
"""

from __future__ import annotations

import contextlib
import statistics
import time
from collections.abc import Callable, Iterator, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from archsearch.types import TaskKind


@contextlib.contextmanager
def fixed_threads(threads: int | None = None) -> Iterator[int]:
    """Pin intra-op threads for the block (``None``: the current count); yields the count."""
    previous = torch.get_num_threads()
    count = previous if threads is None else threads
    if count < 1:
        raise ValueError(f"threads must be >= 1, got {count}")
    torch.set_num_threads(count)
    try:
        yield count
    finally:
        torch.set_num_threads(previous)


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def summarise(times_ms: list[float]) -> tuple[float, float]:
    """(median, p95) of a list of milliseconds (p95 by nearest rank)."""
    ordered = sorted(times_ms)
    p95 = ordered[min(len(ordered) - 1, int(round(0.95 * (len(ordered) - 1))))]
    return statistics.median(ordered), p95


def time_calls(fn: Callable[[], object], device: torch.device, warmup: int,
               repeats: int) -> list[float]:
    """Milliseconds of ``repeats`` calls of ``fn`` after ``warmup`` untimed ones."""
    if repeats < 1:
        raise ValueError(f"repeats must be >= 1, got {repeats}")
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        sync(device)
        start = time.perf_counter()
        fn()
        sync(device)
        times.append((time.perf_counter() - start) * 1000.0)
    return times


def time_interleaved(fns: Sequence[Callable[[], object]], device: torch.device, warmup: int,
                     repeats: int) -> list[list[float]]:
    """Milliseconds per function of ``repeats`` rounds, each calling every function once in
    turn, after ``warmup`` untimed rounds. Functions compared by a ratio then see the same
    machine load, which on a shared machine drifts between two back-to-back measurements."""
    for _ in range(warmup):
        for fn in fns:
            fn()
    times: list[list[float]] = [[] for _ in fns]
    for _ in range(repeats):
        for fn, samples in zip(fns, times, strict=True):
            samples.extend(time_calls(fn, device, 0, 1))
    return times


def latency_ms(model: nn.Module, x: torch.Tensor, warmup: int = 3, repeats: int = 10,
               lengths: torch.Tensor | None = None) -> tuple[float, float]:
    """(median, p95) milliseconds of a no-grad forward ``model(x[, lengths])``."""
    args = (x,) if lengths is None else (x, lengths)
    with torch.no_grad():
        return summarise(time_calls(lambda: model(*args), x.device, warmup, repeats))


def step_latency_ms(model: nn.Module, n_features: int, device: torch.device, batch_size: int = 1,
                    tokens: int = 32, warmup: int = 1, repeats: int = 5) -> tuple[float, float]:
    """(median, p95) milliseconds per token of the streaming path ``model.step``.

    Each repeat streams ``tokens`` steps from a fresh state; its time divided by ``tokens`` is
    one sample. Raises ``ValueError`` for a model that cannot step.
    """
    if not getattr(model, "can_step", False):
        raise ValueError(f"{type(model).__name__} has no step (streaming) path")
    xs = torch.randn(tokens, batch_size, n_features, device=device)

    def stream() -> None:
        state = model.init_state(batch_size, device)
        for x_t in xs:
            _, state = model.step(x_t, state)

    with torch.no_grad():
        times = time_calls(stream, device, warmup, repeats)
    return summarise([t / tokens for t in times])


def training_dtype(device: torch.device) -> torch.dtype | None:
    """The autocast dtype training uses on ``device``: bf16 mixed precision on CUDA, None (float32)
    on CPU. Trials train with it and the training step is timed with it."""
    return torch.bfloat16 if device.type == "cuda" else None


def train_step_ms(model: nn.Module, n_features: int, seq_len: int, batch_size: int,
                  device: torch.device, warmup: int = 1, repeats: int = 5,
                  lr: float = 1e-3) -> tuple[float, float]:
    """(median, p95) milliseconds of one training step: forward, loss, backward, AdamW step, in
    the precision trials train in (:func:`training_dtype`: bf16 autocast on CUDA).

    The task's loss on random targets (cross-entropy for classification, MSE otherwise); the
    optimiser uses :func:`archsearch.blocks.param_groups`. Weights are restored afterwards, and
    the model's train/eval mode too.
    """
    from archsearch.blocks.optim import param_groups

    io = getattr(model, "io", None)
    x = torch.randn(batch_size, seq_len, n_features, device=device)
    state = {k: v.detach().clone() for k, v in model.state_dict().items()}
    was_training = model.training
    model.train()
    optimizer = torch.optim.AdamW(param_groups(model, lr, 0.0))
    with torch.no_grad():
        out_shape = model(x).shape
    if io is not None and io.task is TaskKind.CLASSIFICATION:
        target = torch.randint(0, out_shape[-1], (batch_size,), device=device)
        loss_fn = lambda out: F.cross_entropy(out, target)  # noqa: E731
    else:
        target = torch.randn(out_shape, device=device)
        loss_fn = lambda out: F.mse_loss(out, target)  # noqa: E731

    amp_dtype = training_dtype(x.device)

    def step() -> None:
        with torch.autocast(x.device.type, dtype=amp_dtype, enabled=amp_dtype is not None):
            loss = loss_fn(model(x).float())
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    try:
        times = time_calls(step, device, warmup, repeats)
    finally:
        optimizer.zero_grad(set_to_none=True)
        model.load_state_dict(state)
        model.train(was_training)
    return summarise(times)
