"""Measure room: the only place that times things. Parameters, FLOPs, latency, memory.

:func:`measure_cost` is what a trial records; the pieces (:func:`count_flops`,
:func:`latency_ms`, :func:`step_latency_ms`, :func:`train_step_ms`, :func:`forward_peak_mb`,
:func:`fixed_threads`, :func:`time_interleaved`) are public for the benchmark; what can be
known before a model exists, its estimated cost, is in :mod:`archsearch.measure.estimate`.
"""

from archsearch.measure.cost import (
    count_params,
    measure_cost,
    model_size_mb,
    select_device,
    wants_cuda,
)
from archsearch.measure.flops import FLOPS_METHOD, count_flops, rnn_flops
from archsearch.measure.memory import available_memory_mb, forward_peak_mb, weights_bytes
from archsearch.measure.timing import (
    fixed_threads,
    latency_ms,
    step_latency_ms,
    summarise,
    sync,
    time_interleaved,
    train_step_ms,
    training_dtype,
)

__all__ = [
    "FLOPS_METHOD",
    "available_memory_mb",
    "count_flops",
    "count_params",
    "fixed_threads",
    "forward_peak_mb",
    "latency_ms",
    "measure_cost",
    "model_size_mb",
    "rnn_flops",
    "select_device",
    "wants_cuda",
    "step_latency_ms",
    "summarise",
    "sync",
    "time_interleaved",
    "train_step_ms",
    "training_dtype",
    "weights_bytes",
]
