"""Train and evaluate one architecture configuration.

Scores are those of the model as deployed: with ``quantize: int8`` the model trains in float32,
and every validation and the test score run on its int8 copy (``inference_model``, CPU only),
so the search ranks what would ship, quantization error included.
"""

from __future__ import annotations

import copy
import math
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F

from archsearch.blocks import SequenceModel, build_model, deploy, param_groups
from archsearch.data import PreparedData, Split
from archsearch.errors import ArchsearchError
from archsearch.measure import measure_cost, select_device, training_dtype
from archsearch.types import (
    ArchConfig,
    Constraints,
    CostMeasurement,
    EpochReport,
    Metric,
    ModelIO,
    TaskKind,
    TrainConfig,
    TrialOutcome,
    TrialStatus,
)

EpochCallback = Callable[[EpochReport], None]
CostCallback = Callable[[CostMeasurement], None]


@dataclass(frozen=True)
class TrialSpec:
    """Everything needed to run one trial, independent of who schedules it."""

    arch: ArchConfig
    train: TrainConfig
    constraints: Constraints = field(default_factory=Constraints)
    seed: int = 0


@dataclass
class TrialResult:
    outcome: TrialOutcome
    state_dict: dict[str, torch.Tensor] | None  # best-validation weights (None unless completed)


def model_io(data: PreparedData, constraints: Constraints) -> ModelIO:
    return ModelIO(n_features=data.n_features, task=data.task, n_outputs=data.n_outputs,
                   max_len=data.seq_len, causal=constraints.streaming)


def run_trial(spec: TrialSpec, data: PreparedData, on_epoch: EpochCallback,
              on_cost: CostCallback | None = None) -> TrialResult:
    """Cost first (on the untrained model), then train with per-epoch reports, then test.

    Configuration errors, exceptions and NaN losses end in a ``failed`` outcome carrying the
    error; constraint violations in ``infeasible`` with zero epochs.
    """
    torch.manual_seed(spec.seed)
    np.random.seed(spec.seed)
    try:
        device = select_device(spec.constraints.device)
    except RuntimeError as exc:  # device=cuda where this trial was given no GPU: record it
        return TrialResult(_ended(TrialStatus.FAILED, None, 0, str(exc)), None)
    try:
        model = build_model(spec.arch, model_io(data, spec.constraints)).to(device)
        cost = measure_cost(model, data.n_features, data.seq_len, device)
    except ArchsearchError as exc:
        return TrialResult(_ended(TrialStatus.FAILED, None, 0, str(exc)), None)
    if on_cost is not None:
        on_cost(cost)
    violations = spec.constraints.violations(cost.params, cost.latency_ms, cost.peak_memory_mb)
    if violations:
        return TrialResult(_ended(TrialStatus.INFEASIBLE, cost, 0, "; ".join(violations)), None)
    try:
        return _train(spec, data, model, device, cost, on_epoch)
    except Exception as exc:  # a broken trial must not end the search: record it
        if _is_out_of_memory(exc) and device.type == "cuda":
            torch.cuda.empty_cache()
        message = f"{type(exc).__name__}: {exc}\n{traceback.format_exc(limit=3)}"
        return TrialResult(_ended(TrialStatus.FAILED, cost, 0, message), None)


def _ended(status: TrialStatus, cost, epochs: int, error: str) -> TrialOutcome:  # noqa: ANN001
    return TrialOutcome(status=status, cost=cost, epochs_run=epochs, best_epoch=None,
                        val_score=None, test_score=None, train_seconds=0.0, error=error)


def _is_out_of_memory(exc: Exception) -> bool:
    return isinstance(exc, torch.OutOfMemoryError) or "out of memory" in str(exc).lower()


def _train(spec: TrialSpec, data: PreparedData, model: SequenceModel, device: torch.device,
           cost, on_epoch: EpochCallback) -> TrialResult:  # noqa: ANN001
    metric = Metric.for_task(data.task)
    optimizer = torch.optim.AdamW(param_groups(model, spec.train.lr, spec.train.weight_decay))
    amp_dtype = training_dtype(device)  # bf16 mixed precision on GPU only
    generator = torch.Generator().manual_seed(spec.seed)
    time_limit_s = (spec.constraints.max_trial_minutes or math.inf) * 60.0
    best_score, best_epoch, best_state = None, None, None
    train_seconds = 0.0
    epochs_run = 0
    for epoch in range(1, spec.train.max_epochs + 1):
        start = time.perf_counter()
        train_loss = _train_epoch(model, data.train, optimizer, spec.train, device, amp_dtype,
                                  generator)
        train_seconds += time.perf_counter() - start
        epochs_run = epoch
        if not math.isfinite(train_loss):
            outcome = TrialOutcome(TrialStatus.FAILED, cost, epoch, best_epoch, best_score, None,
                                   train_seconds, error=f"training loss became {train_loss} at "
                                   f"epoch {epoch}")
            return TrialResult(outcome, None)
        val_score = _evaluate_deployed(model, data.val, data.task, device)
        if metric.better(val_score, best_score):
            best_score, best_epoch = val_score, epoch
            best_state = copy.deepcopy({k: v.detach().cpu() for k, v in
                                        model.state_dict().items()})
        on_epoch(EpochReport(epoch, train_loss, val_score, train_seconds))
        if train_seconds > time_limit_s:
            break
    model.load_state_dict(best_state)
    test_score = _evaluate_deployed(model, data.test, data.task, device)
    outcome = TrialOutcome(TrialStatus.COMPLETED, cost, epochs_run, best_epoch, best_score,
                           test_score, train_seconds)
    return TrialResult(outcome, best_state)


def _batches(split: Split, batch_size: int, device: torch.device,
             generator: torch.Generator | None):
    order = (torch.randperm(len(split), generator=generator) if generator is not None
             else torch.arange(len(split)))
    for start in range(0, len(split), batch_size):
        idx = order[start:start + batch_size].numpy()
        yield (torch.from_numpy(split.X[idx]).to(device),
               torch.from_numpy(split.y[idx]).to(device),
               torch.from_numpy(split.lengths[idx]).to(device))


def _loss(logits: torch.Tensor, y: torch.Tensor, task: TaskKind) -> torch.Tensor:
    if task is TaskKind.CLASSIFICATION:
        return F.cross_entropy(logits, y)
    return F.mse_loss(logits.float(), y.view(logits.shape[0], -1).float())


def _train_epoch(model: SequenceModel, split: Split, optimizer: torch.optim.Optimizer,
                 train: TrainConfig, device: torch.device, amp_dtype: torch.dtype | None,
                 generator: torch.Generator) -> float:
    model.train()
    total, count = 0.0, 0
    for X, y, lengths in _batches(split, train.batch_size, device, generator):
        with torch.autocast(device.type, dtype=amp_dtype, enabled=amp_dtype is not None):
            loss = _loss(model(X, lengths), y, model.io.task)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), train.grad_clip)
        optimizer.step()
        total += float(loss.detach()) * len(y)
        count += len(y)
    return total / max(count, 1)


def _evaluate_deployed(model: SequenceModel, split: Split, task: TaskKind,
                       device: torch.device) -> float:
    """:func:`evaluate` on what is deployed: the int8 copy (on CPU, where PyTorch's dynamic
    quantization runs) when the model is configured ``quantize: int8``, else the model itself."""
    deployed, where = deploy(model, device)
    return evaluate(deployed, split, task, where)


def evaluate(model: SequenceModel, split: Split, task: TaskKind, device: torch.device,
             batch_size: int = 256) -> float:
    """Accuracy (classification) or mean squared error (regression, forecast) on ``split``."""
    model.eval()
    correct, squared, count = 0.0, 0.0, 0
    with torch.no_grad():
        for X, y, lengths in _batches(split, batch_size, device, None):
            out = model(X, lengths).float()
            if task is TaskKind.CLASSIFICATION:
                correct += float((out.argmax(-1) == y).sum())
            else:
                squared += float(((out - y.view(out.shape[0], -1)) ** 2).mean(-1).sum())
            count += len(y)
    return (correct if task is TaskKind.CLASSIFICATION else squared) / max(count, 1)
