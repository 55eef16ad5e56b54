"""Train and evaluate one architecture configuration.

Scores are those of the model as deployed: with ``quantize: int8`` the model trains in float32,
and every validation and the test score run on its int8 copy (``inference_model``, CPU only),
so the search ranks what would ship, quantization error included.

A trial that trains for rounds saves a snapshot of its training state between them
(:class:`Snapshots`): a search stopped mid-trial goes on from the latest one instead of
training it again from the start (a trial of a long sequence task can outlast a sitting).
"""

from __future__ import annotations

import copy
import dataclasses
import math
import time
import traceback
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from archsearch.blocks import SequenceModel, build_model, deploy, param_groups
from archsearch.blocks.readout import MAX_FIT_SERIES, ridge_for
from archsearch.data import PreparedData, Split
from archsearch.errors import ArchsearchError
from archsearch.measure import available_memory_mb, measure_cost, select_device, training_dtype
from archsearch.measure.estimate import CostEstimate
from archsearch.options import seconds_from_env
from archsearch.trial.preflight import (
    EVAL_BATCH_SIZE,
    estimate_violations,
    infeasible_message,
    trial_estimate,
)
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
ABSENT_CLASS_LOGIT = -1e4  # a ridge head's logit for a class its training split lacks
CostCallback = Callable[[CostMeasurement], None]
SnapshotCallback = Callable[[EpochReport, dict[str, Any]], None]
SNAPSHOT_SECONDS = 60.0  # training seconds between a trial's snapshots: what a stop can cost
SNAPSHOT_ENV = "ARCHSEARCH_SNAPSHOT_SECONDS"  # shorter for tests, longer for large models


@dataclass(frozen=True)
class TrialSpec:
    """Everything needed to run one trial, independent of who schedules it."""

    arch: ArchConfig
    train: TrainConfig
    constraints: Constraints = field(default_factory=Constraints)
    seed: int = 0
    # time.time() by which training stops, whatever its time limit (None: no such time): the
    # end of a time budget, which counts the trial's start on a worker too
    train_until: float | None = None


@dataclass(frozen=True)
class Snapshots:
    """Where a trial's training state goes between rounds, and the one it goes on from.

    ``save`` receives a round's report with the state (model, optimizer, schedule, best round
    so far, random state, the rounds' reports) in place of ``on_epoch``, once ``every_s``
    training seconds have passed since the last snapshot (never after the last round: the
    trial's result follows). ``resume_from``: a state an earlier run of the same
    configuration saved; the trial reports its earlier rounds again, then trains on from it,
    as it would have without the stop."""

    save: SnapshotCallback
    every_s: float = SNAPSHOT_SECONDS
    resume_from: dict[str, Any] | None = None


def snapshot_seconds() -> float:
    """The snapshot interval: ``$ARCHSEARCH_SNAPSHOT_SECONDS``, else SNAPSHOT_SECONDS."""
    return seconds_from_env(SNAPSHOT_ENV, SNAPSHOT_SECONDS, 0, 86400,
                            "the training time between a trial's snapshots")


@dataclass
class TrialResult:
    outcome: TrialOutcome
    state_dict: dict[str, torch.Tensor] | None  # best-validation weights (None unless completed)


def model_io(data: PreparedData, constraints: Constraints) -> ModelIO:
    return ModelIO(n_features=data.n_features, task=data.task, n_outputs=data.n_outputs,
                   max_len=data.seq_len, causal=constraints.streaming, anchors=data.anchors)


def run_trial(spec: TrialSpec, data: PreparedData, on_epoch: EpochCallback,
              on_cost: CostCallback | None = None,
              snapshots: Snapshots | None = None) -> TrialResult:
    """Cost first, then train with per-epoch reports, then test.

    The cost is estimated before the model is built (``preflight``): a configuration whose
    estimate breaks a constraint or would not fit this worker's memory ends ``infeasible``
    without allocating anything. The rest are built and measured untrained, and a measured
    violation ends them ``infeasible`` too. Configuration errors, exceptions and NaN losses end
    in a ``failed`` outcome carrying the error; infeasible trials train zero epochs. With
    ``snapshots``, a trained model's state is saved between rounds, and a trial resumed from
    one trains on from it (see :class:`Snapshots`).
    """
    torch.manual_seed(spec.seed)
    np.random.seed(spec.seed)
    try:
        device = select_device(spec.constraints.device)
    except RuntimeError as exc:  # device=cuda where this trial was given no GPU: record it
        return TrialResult(_ended(TrialStatus.FAILED, None, 0, str(exc)), None)
    try:
        spec.train.check()
        io = model_io(data, spec.constraints)
        estimate = trial_estimate(spec.arch, io, data, spec.train.batch_size,
                                  on_cpu=device.type == "cpu")
        reasons = estimate_violations(estimate, spec.constraints, _available_mb(device))
        if reasons:
            return TrialResult(_ended(TrialStatus.INFEASIBLE, None, 0,
                                      infeasible_message(reasons)), None)
        model = build_model(spec.arch, io).to(device)
        model.init_from_data(*_init_sample(data.train, device, spec.seed))
        cost = measure_cost(model, data.n_features, data.seq_len, device)
    except ArchsearchError as exc:
        return TrialResult(_ended(TrialStatus.FAILED, None, 0, str(exc)), None)
    if on_cost is not None:
        on_cost(cost)
    violations = spec.constraints.violations(cost.params, cost.latency_ms, cost.peak_memory_mb)
    if violations:
        return TrialResult(_ended(TrialStatus.INFEASIBLE, cost, 0, "; ".join(violations)), None)
    try:
        return _train(spec, data, model, device, cost, on_epoch, estimate, snapshots)
    except Exception as exc:  # a broken trial must not end the search: record it
        if _is_out_of_memory(exc) and device.type == "cuda":
            torch.cuda.empty_cache()
        message = f"{type(exc).__name__}: {exc}\n{traceback.format_exc(limit=3)}"
        return TrialResult(_ended(TrialStatus.FAILED, cost, 0, message), None)


def _init_sample(split: Split, device: torch.device, seed: int
                 ) -> tuple[torch.Tensor, torch.Tensor]:
    """Up to EVAL_BATCH_SIZE training series, drawn by ``seed``, for a family's data-dependent
    initialisation (its own generator: the trial's random stream stays as it was)."""
    pick = torch.randperm(len(split), generator=torch.Generator().manual_seed(seed))
    idx = pick[:EVAL_BATCH_SIZE].numpy()
    return (torch.from_numpy(split.X[idx]).to(device),
            torch.from_numpy(split.lengths[idx]).to(device))


def _available_mb(device: torch.device) -> float:
    """What the trial's device has free: the GPU's free memory, or the machine's."""
    if device.type == "cuda":
        return torch.cuda.mem_get_info(device)[0] / 2**20
    return available_memory_mb()


def _ended(status: TrialStatus, cost, epochs: int, error: str) -> TrialOutcome:  # noqa: ANN001
    return TrialOutcome(status=status, cost=cost, epochs_run=epochs, best_epoch=None,
                        val_score=None, test_score=None, train_seconds=0.0, error=error)


def _is_out_of_memory(exc: Exception) -> bool:
    return isinstance(exc, torch.OutOfMemoryError) or "out of memory" in str(exc).lower()


def _train(spec: TrialSpec, data: PreparedData, model: SequenceModel, device: torch.device,
           cost, on_epoch: EpochCallback, estimate: CostEstimate,  # noqa: ANN001
           snapshots: Snapshots | None) -> TrialResult:
    eval_batch = estimate.eval_batch_size
    if model.fits_in_closed_form:
        return _fit_readout(spec, data, model, device, cost, on_epoch, eval_batch)
    train = spec.train
    metric = Metric.for_task(data.task)
    optimizer = torch.optim.AdamW(param_groups(model, train.lr, train.weight_decay))
    amp_dtype = training_dtype(device)  # bf16 mixed precision on GPU only
    clock = TrainingClock((spec.constraints.max_trial_minutes or math.inf) * 60.0,
                          spec.train_until)
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, warmup_cosine(train, clock))
    best = _BestRound(metric)
    run = _Run(spec.seed)
    if snapshots is not None and snapshots.resume_from is not None:
        run.restore(snapshots.resume_from, spec, model, optimizer, schedule, clock, best,
                    device)
        for report in run.reports:  # the earlier rounds, for the store and the pruner
            on_epoch(report)
    batches = _endless_batches(data.train, train.batch_size, device,
                               torch.Generator().manual_seed(run.data_seed), skip=run.steps)
    saved_at = clock.seconds
    while run.steps < train.max_steps:
        steps = min(train.eval_every, train.max_steps - run.steps)
        with clock:
            train_loss = _train_steps(model, batches, steps, optimizer, schedule, train,
                                      amp_dtype, estimate.chunks)
        run.steps += steps
        rounds = len(run.reports) + 1
        if not math.isfinite(train_loss):
            outcome = TrialOutcome(TrialStatus.FAILED, cost, rounds, best.round, best.score,
                                   None, clock.seconds, error=f"training loss became "
                                   f"{train_loss} in round {rounds} (step {run.steps})")
            return TrialResult(outcome, None)
        val_score, val_loss = _evaluate_deployed(model, data.val, data.task, device, eval_batch)
        best.offer(rounds, val_score, val_loss, model)
        report = EpochReport(rounds, train_loss, val_score, clock.seconds)
        run.reports.append(report)
        ends = (run.steps >= train.max_steps or clock.fraction >= 1.0
                or 0 < train.patience <= rounds - best.round)
        if snapshots is not None and not ends and clock.seconds - saved_at >= snapshots.every_s:
            snapshots.save(report, run.state(spec, model, optimizer, schedule, clock, best,
                                             device))
            saved_at = clock.seconds
        else:
            on_epoch(report)
        if ends:
            break
    model.load_state_dict(best.state)
    test_score, _ = _evaluate_deployed(model, data.test, data.task, device, eval_batch)
    outcome = TrialOutcome(TrialStatus.COMPLETED, cost, len(run.reports), best.round,
                           best.score, test_score, clock.seconds)
    return TrialResult(outcome, best.state)


class _Run:
    """Where one training run is: optimizer steps done, the rounds' reports, and the seed of
    its data order; saved as a snapshot's state and restored from one."""

    def __init__(self, seed: int) -> None:
        self.steps = 0
        self.reports: list[EpochReport] = []
        self.data_seed = seed  # a resumed run keeps the order its first run drew

    def state(self, spec: TrialSpec, model: SequenceModel, optimizer: torch.optim.Optimizer,
              schedule: torch.optim.lr_scheduler.LRScheduler, clock: TrainingClock,
              best: _BestRound, device: torch.device) -> dict[str, Any]:
        return {
            "config": _config_of(spec), "steps": self.steps, "data_seed": self.data_seed,
            "reports": [dataclasses.asdict(r) for r in self.reports], "seconds": clock.seconds,
            "model": {k: v.detach().cpu() for k, v in model.state_dict().items()},
            "optimizer": optimizer.state_dict(), "schedule": schedule.state_dict(),
            "best": {"round": best.round, "score": best.score, "loss": best.loss,
                     "state": best.state},
            "rng": torch.get_rng_state(),
            # dropout on a GPU draws from that device's own generator
            "cuda_rng": (torch.cuda.get_rng_state(device) if device.type == "cuda" else None),
        }

    def restore(self, state: dict[str, Any], spec: TrialSpec, model: SequenceModel,
                optimizer: torch.optim.Optimizer,
                schedule: torch.optim.lr_scheduler.LRScheduler, clock: TrainingClock,
                best: _BestRound, device: torch.device) -> None:
        if state.get("config") != _config_of(spec):
            raise ValueError("the snapshot is of another configuration")
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        schedule.load_state_dict(state["schedule"])
        clock.seconds = float(state["seconds"])
        saved = state["best"]
        best.round, best.score, best.loss, best.state = (saved["round"], saved["score"],
                                                         saved["loss"], saved["state"])
        torch.set_rng_state(state["rng"])
        if device.type == "cuda" and state.get("cuda_rng") is not None:
            torch.cuda.set_rng_state(state["cuda_rng"], device)
        self.steps, self.data_seed = int(state["steps"]), int(state["data_seed"])
        self.reports = [EpochReport(**r) for r in state["reports"]]


def _config_of(spec: TrialSpec) -> dict[str, Any]:
    """What a snapshot must have been trained with to be resumed by ``spec``."""
    return {"family": spec.arch.family, "hparams": dict(spec.arch.hparams),
            "train": dataclasses.asdict(spec.train)}


def _fit_readout(spec: TrialSpec, data: PreparedData, model: SequenceModel,
                 device: torch.device, cost, on_epoch: EpochCallback,  # noqa: ANN001
                 eval_batch: int) -> TrialResult:
    """A model of fixed features (``fits_in_closed_form``): its ridge head is fitted on (up to
    MAX_FIT_SERIES of) the training split, then scored as one validation round."""
    clock = TrainingClock()
    with clock:
        train_loss = fit_ridge_readout(model, data.train.subset(MAX_FIT_SERIES, spec.seed),
                                       device)
    val_score, val_loss = _evaluate_deployed(model, data.val, data.task, device, eval_batch)
    best = _BestRound(Metric.for_task(data.task))
    best.offer(1, val_score, val_loss, model)
    on_epoch(EpochReport(1, train_loss, val_score, clock.seconds))
    test_score, _ = _evaluate_deployed(model, data.test, data.task, device, eval_batch)
    outcome = TrialOutcome(TrialStatus.COMPLETED, cost, 1, best.round, best.score, test_score,
                           clock.seconds)
    return TrialResult(outcome, best.state)


@torch.no_grad()
def fit_ridge_readout(model: SequenceModel, split: Split, device: torch.device) -> float:
    """Fit ``model``'s head in closed form on its features of ``split`` (MiniRocket's readout:
    :func:`archsearch.blocks.readout.ridge_for`); the head's training loss after the fit."""
    model.eval()
    features, targets = [], []
    for X, y, lengths in _batches(split, EVAL_BATCH_SIZE, device, None):
        features.append(model.features(X, lengths).float().cpu())  # (B, W)
        # An anchored model's head forecasts the change from the window's last value.
        targets.append((y - model.anchor_base(X, lengths) if model.anchored else y).cpu())
    phi, y = torch.cat(features), torch.cat(targets)  # (N, W), (N,) or (N, ...)
    task = model.io.task
    ridge = ridge_for(task).fit(phi.numpy(), y.numpy() if task is TaskKind.CLASSIFICATION
                                else y.reshape(len(y), -1).numpy())
    weight = torch.zeros_like(model.head.weight, device="cpu")  # (n_outputs, W)
    bias = torch.full_like(model.head.bias, ABSENT_CLASS_LOGIT, device="cpu")  # (n_outputs,)
    coef = torch.as_tensor(ridge.coef_, dtype=weight.dtype).reshape(-1, phi.shape[1])
    intercept = torch.as_tensor(ridge.intercept_, dtype=bias.dtype).reshape(-1)
    if task is not TaskKind.CLASSIFICATION:
        weight[:], bias[:] = coef, intercept
    else:  # one row per class seen in the training split; an unseen class is never predicted
        seen = torch.as_tensor(ridge.classes_, dtype=torch.long)
        if len(seen) == 2:  # one decision function s, positive for classes_[1]: logits -+s/2
            coef, intercept = torch.cat([-coef, coef]) / 2, torch.cat([-intercept, intercept]) / 2
        weight[seen], bias[seen] = coef, intercept
    model.head.weight.copy_(weight)
    model.head.bias.copy_(bias)
    return float(_loss(model.head(phi.to(device)), y.to(device), task))


class TrainingClock:
    """A trial's training seconds (validation excluded; time it with ``with clock:``) against
    its time limit (``max_trial_minutes``; inf: none), and the time from its start against
    ``until`` (a ``time.time()``; None: none), whichever is further along."""

    def __init__(self, limit_s: float = math.inf, until: float | None = None) -> None:
        self.limit_s = limit_s
        self.seconds = 0.0
        self._since: float | None = None
        self._started = time.time()
        self._until = until

    def __enter__(self) -> TrainingClock:
        self._since = time.perf_counter()
        return self

    def __exit__(self, *exc: object) -> None:
        self.seconds += time.perf_counter() - self._since
        self._since = None

    @property
    def fraction(self) -> float:
        """The share of the time limit used so far, the running stretch included."""
        running = 0.0 if self._since is None else time.perf_counter() - self._since
        trained = (self.seconds + running) / self.limit_s
        if self._until is None:
            return trained
        now = time.time()
        span = self._until - self._started
        return max(trained, (now - self._started) / span if span > 0 else math.inf)


def warmup_cosine(train: TrainConfig,
                  clock: TrainingClock | None = None) -> Callable[[int], float]:
    """The learning-rate factor at optimizer step ``s``: linear warm-up over
    ``warmup_fraction`` of the budget, then a cosine decay to zero at ``max_steps``.

    With a ``clock``, the schedule runs on whichever is further along, the steps or the time
    limit (as a share of ``max_steps``): a trial that its time limit stops early (a slow
    configuration under a time budget) has annealed by then instead of stopping at a high
    learning rate (budget-aware schedules, Li et al. 2020, "Budgeted Training")."""
    warmup = max(1, round(train.warmup_fraction * train.max_steps))

    def factor(step: int) -> float:
        if clock is not None:
            step = max(step, clock.fraction * train.max_steps)
        if step < warmup:
            return (step + 1) / warmup
        progress = (step - warmup) / max(1, train.max_steps - warmup)
        return 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))

    return factor


class _BestRound:
    """The best validation round so far and its weights. On a tie in the metric (accuracy on a
    few validation series ties often) the lower validation loss wins, so an early round that
    happens to classify as well is not kept over a better-fitted later one."""

    def __init__(self, metric: Metric) -> None:
        self.metric = metric
        self.round: int | None = None
        self.score: float | None = None
        self.loss = math.inf
        self.state: dict[str, torch.Tensor] | None = None

    def offer(self, round_: int, score: float, loss: float, model: nn.Module) -> None:
        tie = self.score is not None and score == self.score
        if self.metric.better(score, self.score) or (tie and loss < self.loss):
            self.round, self.score, self.loss = round_, score, loss
            self.state = copy.deepcopy({k: v.detach().cpu() for k, v in
                                        model.state_dict().items()})


def _batches(split: Split, batch_size: int, device: torch.device,
             generator: torch.Generator | None) -> Iterator[tuple[torch.Tensor, ...]]:
    for idx in _batch_indices(len(split), batch_size, generator):
        yield _batch(split, idx, device)


def _batch_indices(n: int, batch_size: int,
                   generator: torch.Generator | None) -> Iterator[np.ndarray]:
    order = torch.randperm(n, generator=generator) if generator is not None else torch.arange(n)
    for start in range(0, n, batch_size):
        yield order[start:start + batch_size].numpy()


def _batch(split: Split, idx: np.ndarray, device: torch.device) -> tuple[torch.Tensor, ...]:
    return (torch.from_numpy(split.X[idx]).to(device), torch.from_numpy(split.y[idx]).to(device),
            torch.from_numpy(split.lengths[idx]).to(device))


def _endless_batches(split: Split, batch_size: int, device: torch.device,
                     generator: torch.Generator, skip: int = 0
                     ) -> Iterator[tuple[torch.Tensor, ...]]:
    """Shuffled batches, epoch after epoch, after the first ``skip`` (a resumed run's: drawn
    but not loaded); the last batch of an epoch is dropped when a full one is possible (a
    batch of one series would give BatchNorm nothing to normalise)."""
    full = len(split) >= batch_size
    while True:
        for idx in _batch_indices(len(split), batch_size, generator):
            if len(idx) == batch_size or not full:
                if skip:
                    skip -= 1
                else:
                    yield _batch(split, idx, device)


def _loss(logits: torch.Tensor, y: torch.Tensor, task: TaskKind) -> torch.Tensor:
    if task is TaskKind.CLASSIFICATION:
        return F.cross_entropy(logits.float(), y)
    return F.mse_loss(logits.float(), y.view(logits.shape[0], -1).float())


def _train_steps(model: SequenceModel, batches: Iterator[tuple[torch.Tensor, ...]], steps: int,
                 optimizer: torch.optim.Optimizer, schedule: torch.optim.lr_scheduler.LRScheduler,
                 train: TrainConfig, amp_dtype: torch.dtype | None, chunks: int = 1) -> float:
    """``steps`` optimizer steps; the mean training loss over them. Each batch runs in
    ``chunks`` parts whose losses, weighted by their share of the batch, add up to the
    batch's mean loss, and so their gradients to its gradient."""
    model.train()
    total = 0.0
    for _ in range(steps):
        X, y, lengths = next(batches)
        optimizer.zero_grad(set_to_none=True)
        parts = min(chunks, len(y))
        for X_c, y_c, lengths_c in zip(X.tensor_split(parts), y.tensor_split(parts),
                                       lengths.tensor_split(parts), strict=True):
            with torch.autocast(X.device.type, dtype=amp_dtype, enabled=amp_dtype is not None):
                part = _loss(model(X_c, lengths_c), y_c, model.io.task) * (len(y_c) / len(y))
            part.backward()
            total += float(part.detach())
        torch.nn.utils.clip_grad_norm_(model.parameters(), train.grad_clip)
        optimizer.step()
        schedule.step()
    return total / max(steps, 1)


def _evaluate_deployed(model: SequenceModel, split: Split, task: TaskKind,
                       device: torch.device, batch_size: int) -> tuple[float, float]:
    """:func:`evaluate_with_loss` on what is deployed: the int8 copy (on CPU, where PyTorch's
    dynamic quantization runs) when the model is configured ``quantize: int8``, else the model
    itself."""
    deployed, where = deploy(model, device)
    return evaluate_with_loss(deployed, split, task, where, batch_size)


def evaluate(model: SequenceModel, split: Split, task: TaskKind, device: torch.device,
             batch_size: int = EVAL_BATCH_SIZE) -> float:
    """Accuracy (classification) or mean squared error (regression, forecast) on ``split``."""
    return evaluate_with_loss(model, split, task, device, batch_size)[0]


def evaluate_with_loss(model: SequenceModel, split: Split, task: TaskKind, device: torch.device,
                       batch_size: int = EVAL_BATCH_SIZE) -> tuple[float, float]:
    """(score, mean loss) on ``split``: accuracy and cross-entropy for classification, mean
    squared error twice otherwise."""
    model.eval()
    correct, loss_sum, count = 0.0, 0.0, 0
    with torch.no_grad():
        for X, y, lengths in _batches(split, batch_size, device, None):
            out = model(X, lengths).float()
            if task is TaskKind.CLASSIFICATION:
                correct += float((out.argmax(-1) == y).sum())
                loss_sum += float(F.cross_entropy(out, y, reduction="sum"))
            else:
                loss_sum += float(((out - y.view(out.shape[0], -1)) ** 2).mean(-1).sum())
            count += len(y)
    loss = loss_sum / max(count, 1)
    return (correct / max(count, 1) if task is TaskKind.CLASSIFICATION else loss), loss
