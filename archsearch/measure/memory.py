"""Peak memory of a forward pass.

On CUDA: the caching allocator's peak (``max_memory_allocated``). On CPU, PyTorch keeps no such
statistic, so we count it: a ``TorchDispatchMode`` sees every tensor each ATen op returns, adds
its storage size when the storage first appears and subtracts it when the storage is freed. The
peak of that sum plus the weights is the figure reported; scratch memory inside one fused kernel
is not visible to it, which the stated method says. For a dynamically quantized model the
weights are counted as the serialized size of its state (its packed int8 weights are not
parameters).
"""

from __future__ import annotations

import io
import os
import weakref
from pathlib import Path

import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_flatten

CPU_METHOD = "weights + peak of live tensor storages across ATen ops (TorchDispatchMode)"
CUDA_METHOD = "weights + torch.cuda.max_memory_allocated during forward"


class LiveTensorPeak(TorchDispatchMode):
    """Tracks the peak bytes of tensor storages created while the mode is active."""

    def __init__(self) -> None:
        super().__init__()
        self.live: dict[int, int] = {}
        self.current = 0
        self.peak = 0

    def _release(self, key: int) -> None:
        self.current -= self.live.pop(key, 0)

    def __torch_dispatch__(self, func, types, args=(), kwargs=None) -> object:  # noqa: ANN001
        out = func(*args, **(kwargs or {}))
        for value in tree_flatten(out)[0]:
            if not isinstance(value, torch.Tensor):
                continue
            storage = value.untyped_storage()
            key = storage.data_ptr()
            if key and key not in self.live:
                self.live[key] = storage.nbytes()
                self.current += storage.nbytes()
                self.peak = max(self.peak, self.current)
                weakref.finalize(storage, self._release, key)
        return out


def weights_bytes(model: torch.nn.Module) -> int:
    """Bytes of the weights: parameters and buffers, or, for a dynamically quantized model
    (whose packed int8 weights are neither), the size of its serialized ``state_dict``."""
    if any(type(m).__module__.startswith("torch.ao.nn.quantized") for m in model.modules()):
        buffer = io.BytesIO()
        torch.save(model.state_dict(), buffer)
        return buffer.getbuffer().nbytes
    tensors = list(model.parameters()) + list(model.buffers())
    return sum(t.numel() * t.element_size() for t in tensors)


def forward_peak_mb(model: torch.nn.Module, x: torch.Tensor) -> tuple[float, str]:
    """Peak memory (MB) of one no-grad forward of ``model`` on ``x``, and the method used."""
    with torch.no_grad():
        if x.is_cuda:
            torch.cuda.synchronize(x.device)
            torch.cuda.reset_peak_memory_stats(x.device)
            before = torch.cuda.memory_allocated(x.device)
            model(x)
            torch.cuda.synchronize(x.device)
            activations = torch.cuda.max_memory_allocated(x.device) - before
            return (weights_bytes(model) + activations) / 2**20, CUDA_METHOD
        with LiveTensorPeak() as tracker:
            model(x)
        return (weights_bytes(model) + tracker.peak) / 2**20, CPU_METHOD


def available_memory_mb() -> float:
    """Memory (MiB) this process can still take: the kernel's MemAvailable (free memory plus
    what caches would give back), capped by the cgroup's limit less its usage where a container
    sets one; free pages alone where /proc/meminfo is missing (not Linux)."""
    try:
        meminfo = Path("/proc/meminfo").read_text()
        available = next(int(line.split()[1]) * 1024 for line in meminfo.splitlines()
                         if line.startswith("MemAvailable:"))
    except (OSError, StopIteration, ValueError):
        available = os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    try:  # cgroup v2: "max" when unlimited
        limit = Path("/sys/fs/cgroup/memory.max").read_text().strip()
        used = int(Path("/sys/fs/cgroup/memory.current").read_text())
        if limit != "max":
            available = min(available, int(limit) - used)
    except (OSError, ValueError):
        pass
    return max(available, 0) / 2**20
