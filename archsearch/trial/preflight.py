"""Before a model is built: does its estimated cost fit the constraints and the worker?

A trial estimates its configuration first (:mod:`archsearch.measure.estimate`, nothing
allocated) and ends ``infeasible``, without building the model, when the estimate breaks
``max_params``, ``max_memory_mb`` (the batch-1 forward, what the measurement after building
would confirm) or the worker's memory: the larger of its training step and its evaluation must
fit in MEMORY_SHARE of the memory available, the training step as the trial will run it (on a
CPU, in chunks: :func:`trial_estimate`). Configurations that fit go on to be built and
measured. :func:`refuse_unfit_data` applies the same test to the smallest configurations of
every family, so that a data set nothing can train on is refused before a task is stored.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterable

from archsearch.data import PreparedData
from archsearch.errors import DataError, SpaceError
from archsearch.measure.estimate import CostEstimate, estimate_cost
from archsearch.types import ArchConfig, Constraints, ModelIO, TrainConfig

# Of the memory available to a worker when a trial starts, the share one trial may plan to use
# (its training step or its evaluation, as estimated): half, because the estimate leaves out
# the process itself, the data and PyTorch's scratch space, and a worker may run trials
# beside others.
MEMORY_SHARE = 0.5
EVAL_BATCH_SIZE = 256  # the most sequences per batch of validation and test
# The most memory one batch's activations plan for: an evaluation whose batch would need more
# runs in smaller batches, and a training batch that would is split into chunks whose gradients
# add up to the batch's (where no layer couples a batch's series, on a CPU). On a CPU, beyond
# it, the selective scan's (B, L, d, n) tensors are memory-bound: on the adding problem (100
# steps, d_model 64) an evaluation took 7.0 s at batch 256 (2.3 GB estimated), 2.2 s at 64 and
# 2.1 s at 8, and a training step at batch 32 0.8 s whole (1 GB), 0.5 s in 4 chunks; on
# GunPoint (150 steps) 2.5 s whole (1.5 GB), 0.9 s in 6 chunks. Attention over 361 steps
# (PickupGestureWiimoteZ, d_model 128, batch 32, ~300 MB) gained 10-25 % in 2 chunks. The other
# families stayed under 100 MB at evaluation batch 256, where the batch barely matters.
BATCH_MB = 256.0

_ADVICE = ("To fit, shorten the sequences (forecasting: a smaller `--lookback`; otherwise cut or "
           "downsample the series), search smaller models (a lower d_model, fewer layers or "
           "heads, a smaller batch_size in the search space), or, for a deployment bound, set "
           "`--constraint max_memory_mb=N`.")


def trial_estimate(arch: ArchConfig, io: ModelIO, data: PreparedData, batch_size: int, *,
                   on_cpu: bool) -> CostEstimate:
    """The estimate of ``arch`` on ``data`` as a trial runs it: batches of ``batch_size`` (at
    most the training split), evaluation batches of EVAL_BATCH_SIZE (at most the larger of
    validation and test) or as many as fit BATCH_MB (at least one), padding masks when
    some sequence is shorter than the longest; its ``eval_batch_size`` is the batch the trial
    evaluates in. ``on_cpu``: the trial trains on a CPU, where a batch whose activations
    exceed BATCH_MB runs in :func:`train_chunks` chunks unless the model couples its batch;
    the estimate's ``chunks`` says how many, and its training step is the largest chunk's."""
    splits = (data.train, data.val, data.test)
    padded = any(bool((split.lengths < data.seq_len).any()) for split in splits)
    batch = max(1, min(batch_size, len(data.train)))
    most = max(1, min(EVAL_BATCH_SIZE, max(len(data.val), len(data.test))))
    estimate = estimate_cost(arch, io, data.seq_len, batch, eval_batch_size=most, padded=padded)
    per_series_mb = (estimate.eval_mb - estimate.weights_mb) / most
    fitting = min(most, max(1, int(BATCH_MB / per_series_mb))) if per_series_mb > 0 \
        else most
    if fitting < most:
        estimate = estimate_cost(arch, io, data.seq_len, batch, eval_batch_size=fitting,
                                 padded=padded)
    chunks = train_chunks(estimate) if on_cpu and not estimate.batch_coupled else 1
    if chunks == 1:
        return estimate
    largest = estimate_cost(arch, io, data.seq_len, math.ceil(batch / chunks), padded=padded)
    return dataclasses.replace(estimate, train_step_mb=largest.train_step_mb,
                               train_batch_mb=largest.train_batch_mb, chunks=chunks)


def train_chunks(estimate: CostEstimate) -> int:
    """Into how many chunks a training batch on a CPU splits so that each chunk's activations
    fit BATCH_MB (1: the whole batch; at most one series a chunk). A GPU trains whole batches:
    its memory and bandwidth favour them."""
    return min(estimate.batch_size, max(1, math.ceil(estimate.train_batch_mb / BATCH_MB)))


def estimate_violations(estimate: CostEstimate, constraints: Constraints,
                        available_mb: float) -> list[str]:
    """Why ``estimate`` cannot run here (empty when it fits): the user's ``max_params`` and
    ``max_memory_mb`` (against the batch-1 forward, as measured later), and MEMORY_SHARE of
    ``available_mb`` (against the training step or the evaluation, whichever is larger)."""
    # The constraints' own wording; latency is measured only once the model exists.
    reasons = constraints.violations(estimate.params, 0.0, estimate.forward_mb)
    budget = MEMORY_SHARE * available_mb
    if estimate.run_mb > budget:
        chunked = f" in {estimate.chunks} chunks" if estimate.chunks > 1 else ""
        what = (f"a training step at batch {estimate.batch_size}{chunked}"
                if estimate.train_step_mb >= estimate.eval_mb
                else f"an evaluation at batch {estimate.eval_batch_size}")
        reasons.append(f"an estimated {estimate.run_mb:,.0f} MB for {what} of sequences of "
                       f"{estimate.seq_len:,} steps > {MEMORY_SHARE:g} of the {available_mb:,.0f} "
                       f"MB this worker has available ({budget:,.0f} MB)")
    return reasons


def infeasible_message(reasons: list[str]) -> str:
    """The error of a trial ended by its estimate: the reasons, and what to change."""
    return f"estimated before building the model: {'; '.join(reasons)}. {_ADVICE}"


def refuse_unfit_data(data: PreparedData, io: ModelIO, constraints: Constraints,
                      candidates: Iterable[tuple[ArchConfig, TrainConfig]],
                      available_mb: float, *, on_cpu: bool) -> None:
    """Raise :class:`DataError` when none of ``candidates`` (the smallest configurations of
    every family of the space) fits trials on a CPU (``on_cpu``) or a GPU; return at the first
    that does. A candidate that cannot be built (a space error) is skipped: its trials report
    that error, not this function."""
    cheapest: tuple[CostEstimate, ArchConfig, list[str]] | None = None
    for arch, train in candidates:
        try:
            estimate = trial_estimate(arch, io, data, train.batch_size, on_cpu=on_cpu)
        except SpaceError:
            continue
        reasons = estimate_violations(estimate, constraints, available_mb)
        if not reasons:
            return
        if cheapest is None or estimate.run_mb < cheapest[0].run_mb:
            cheapest = (estimate, arch, reasons)
    if cheapest is None:
        return
    estimate, arch, reasons = cheapest
    raise DataError(
        f"the data set's sequences of {data.seq_len:,} steps are too long for every family of "
        f"the search space: even the cheapest configuration, {arch.family} at d_model "
        f"{arch.hparams.get('d_model')}, breaks a limit ({'; '.join(reasons)}), so every "
        f"trial would end infeasible. {_ADVICE}")
