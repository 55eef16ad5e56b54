"""The shared vocabulary: frozen dataclasses passed between rooms.

Keeping these here (and free of torch, ray and optuna imports) lets every room talk to the others
without importing them: data -> blocks -> trial -> search -> store -> recommend -> report.
"""

from __future__ import annotations

import enum
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from archsearch.errors import ConstraintError, UsageError


class TaskKind(str, enum.Enum):
    CLASSIFICATION = "classification"
    REGRESSION = "regression"
    FORECAST = "forecast"


class TrialStatus(str, enum.Enum):
    RUNNING = "running"
    COMPLETED = "completed"
    PRUNED = "pruned"
    FAILED = "failed"
    INFEASIBLE = "infeasible"


def status_counts(statuses: Iterable[str]) -> dict[str, int]:
    """How many trials are in each :class:`TrialStatus` (every status present, zeros too)."""
    counts = {status.value: 0 for status in TrialStatus}
    for status in statuses:
        counts[status] += 1
    return counts


class TaskStatus(str, enum.Enum):
    QUEUED = "queued"
    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"
    INTERRUPTED = "interrupted"


@dataclass(frozen=True)
class Metric:
    """The validation/test metric of a task. ``sign`` turns it into something to maximise."""

    name: str
    direction: str  # "maximize" | "minimize"

    @property
    def maximizes(self) -> bool:
        return self.direction == "maximize"

    @property
    def sign(self) -> float:
        return 1.0 if self.maximizes else -1.0

    def better(self, a: float | None, b: float | None) -> bool:
        """True when score ``a`` beats ``b`` (None and NaN always lose)."""
        if a is None or math.isnan(a):
            return False
        if b is None or math.isnan(b):
            return True
        return self.sign * a > self.sign * b

    def utility(self, score: float) -> float:
        """What comparisons across trials measure, higher is better: the score itself for a
        maximised metric; minus the logarithm of an error, so that a 5x lower MSE counts the
        same however badly the worst trial did."""
        if self.maximizes:
            return score
        return -math.log(max(score, 1e-12))

    @staticmethod
    def for_task(task: TaskKind) -> Metric:
        if task is TaskKind.CLASSIFICATION:
            return Metric("accuracy", "maximize")
        return Metric("mse", "minimize")


# The Optuna pruners and samplers a search can use (named here, not in the search room, so that
# parsing a command line does not import Ray and Optuna).
PRUNERS = ("median", "halving", "hyperband", "wilcoxon", "none")
SAMPLERS = ("tpe", "random", "nsga2")

# What a multi-objective search minimises beside quality: a measured cost of the untrained model.
COST_OBJECTIVES = {"latency": "latency_ms", "params": "params", "memory": "peak_memory_mb"}


@dataclass(frozen=True)
class Objectives:
    """``quality`` alone (one objective), or quality plus measured costs (a Pareto search)."""

    costs: tuple[str, ...] = ()  # keys of COST_OBJECTIVES

    @staticmethod
    def parse(text: str) -> Objectives:
        """``quality[,latency|params|memory...]``, as given to ``--objectives``."""
        names = [name.strip() for name in text.split(",") if name.strip()]
        known = ", ".join(COST_OBJECTIVES)
        if not names or names[0] != "quality":
            raise UsageError(f"objectives '{text}': the first objective must be quality, "
                                  f"optionally followed by costs to minimise ({known}), e.g. "
                                  "quality,latency.")
        costs = names[1:]
        unknown = [name for name in costs if name not in COST_OBJECTIVES]
        if unknown or len(set(costs)) != len(costs):
            raise UsageError(f"objectives '{text}': "
                                  + (f"unknown cost objective '{unknown[0]}'" if unknown
                                     else "an objective is named twice")
                                  + f"; the costs are {known}.")
        return Objectives(tuple(costs))

    @property
    def multi(self) -> bool:
        return bool(self.costs)

    def __str__(self) -> str:
        return ",".join(("quality", *self.costs))

    def cost_values(self, cost: CostMeasurement) -> list[float]:
        """The measured costs this search minimises, in order."""
        return [float(getattr(cost, COST_OBJECTIVES[name])) for name in self.costs]


QUALITY_ONLY = Objectives()


@dataclass(frozen=True)
class ModelIO:
    """What a model must accept and emit; derived from the data set, not searched."""

    n_features: int
    task: TaskKind
    n_outputs: int  # classes (classification), 1 (regression), horizon * channels (forecast)
    max_len: int
    causal: bool = False
    # Forecasting: per target channel (input channel i, a, b): a * x[:, t, i] + b is step t's
    # input in the target's units, so a window's last value can serve as its forecast's base
    # (ModelHParams.window_anchor). Empty: the model cannot anchor.
    anchors: tuple[tuple[int, float, float], ...] = ()


@dataclass(frozen=True)
class ArchConfig:
    """One architecture: a family name plus that family's hyperparameters."""

    family: str
    hparams: Mapping[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"family": self.family, **dict(self.hparams)}


@dataclass(frozen=True)
class TrainConfig:
    """How one configuration is trained: a budget of optimizer steps, not of epochs.

    On a few dozen series an epoch is one or two steps, so a fixed epoch count learns nothing;
    a step budget gives every data set enough updates to fit (published time-series recipes run
    hundreds to thousands of epochs on such sets), and compares families at equal updates.
    Validation runs every ``eval_every`` steps: one *round*, which is also the pruning rung and
    what ``EpochReport.epoch`` counts. The learning rate warms up linearly over
    ``warmup_fraction`` of the budget, then decays to zero on a cosine. Training stops early
    after ``patience`` rounds without a better validation score (0: never), and the
    best-validation weights are kept.
    """

    lr: float = 1e-3
    batch_size: int = 64
    max_steps: int = 400
    eval_every: int = 20
    warmup_fraction: float = 0.05
    patience: int = 0
    weight_decay: float = 0.0
    grad_clip: float = 1.0

    @property
    def max_rounds(self) -> int:
        """Validation rounds in the full budget (the last may be shorter than eval_every)."""
        return max(1, math.ceil(self.max_steps / max(1, self.eval_every)))

    def check(self) -> None:
        """Raise :class:`UsageError` on a budget that cannot train."""
        if self.max_steps < 1 or self.eval_every < 1 or self.batch_size < 1:
            raise UsageError(f"training needs max_steps, eval_every and batch_size >= 1 (got "
                             f"{self.max_steps}, {self.eval_every}, {self.batch_size}).")
        if not 0.0 <= self.warmup_fraction < 1.0 or self.patience < 0:
            raise UsageError("training warmup_fraction must be in [0, 1) and patience >= 0 "
                             f"(got {self.warmup_fraction}, {self.patience}).")


CONSTRAINT_KEYS: dict[str, type] = {
    "max_latency_ms": float,
    "max_params": int,
    "max_memory_mb": float,
    "max_trial_minutes": float,
    "streaming": bool,
    "device": str,
}


@dataclass(frozen=True)
class Constraints:
    """Deployment constraints; ``None`` means unconstrained."""

    max_latency_ms: float | None = None
    max_params: int | None = None
    max_memory_mb: float | None = None
    max_trial_minutes: float | None = None
    streaming: bool = False
    device: str = "auto"  # "auto" | "cpu" | "cuda"

    @staticmethod
    def parse(pairs: list[str]) -> Constraints:
        """Parse ``KEY=VALUE`` strings, raising :class:`ConstraintError` on anything unknown."""
        values: dict[str, Any] = {}
        for pair in pairs:
            key, sep, raw = pair.partition("=")
            key, raw = key.strip(), raw.strip()
            if not sep or not key or not raw:
                raise ConstraintError(f"constraint '{pair}' is not of the form KEY=VALUE.")
            if key not in CONSTRAINT_KEYS:
                known = ", ".join(CONSTRAINT_KEYS)
                raise ConstraintError(f"unknown constraint '{key}'; known constraints: {known}.")
            values[key] = _parse_constraint_value(key, raw)
        return Constraints(**values)

    def to_dict(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in CONSTRAINT_KEYS}

    def violations(self, params: int | None, latency_ms: float | None,
                   memory_mb: float | None) -> list[str]:
        """Reasons a measured configuration breaks these constraints (empty when feasible)."""
        return cost_violations({key: getattr(self, key) for key, _, _ in COST_LIMITS},
                               {"params": params, "latency_ms": latency_ms,
                                "peak_memory_mb": memory_mb})


# The constraints on a model's measured cost: (constraint, cost it limits, how to say it).
COST_LIMITS = (("max_params", "params", "{:.0f} parameters"),
               ("max_latency_ms", "latency_ms", "latency {:.3f} ms"),
               ("max_memory_mb", "peak_memory_mb", "memory {:.1f} MB"))


def cost_violations(limits: Mapping[str, float | None],
                    costs: Mapping[str, float | None]) -> list[str]:
    """Why ``costs`` (``params``, ``latency_ms``, ``peak_memory_mb``) break ``limits`` (keyed by
    constraint; None: no limit). A limited cost that was not measured breaks it: it cannot be
    shown to meet it."""
    reasons = []
    for key, cost, phrase in COST_LIMITS:
        limit, value = limits.get(key), costs.get(cost)
        if limit is None:
            continue
        if value is None:
            reasons.append(f"{cost} not measured (limit {key}={limit:g})")
        elif value > limit:
            reasons.append(f"{phrase.format(value)} > {key}={limit:g}")
    return reasons


def _parse_constraint_value(key: str, raw: str) -> Any:
    kind = CONSTRAINT_KEYS[key]
    if kind is bool:
        lowered = raw.lower()
        if lowered in ("true", "1", "yes"):
            return True
        if lowered in ("false", "0", "no"):
            return False
        raise ConstraintError(f"constraint {key} must be true or false, not '{raw}'.")
    if kind is str:
        if key == "device" and raw not in ("auto", "cpu", "cuda"):
            raise ConstraintError(f"constraint device must be auto, cpu or cuda, not '{raw}'.")
        return raw
    try:
        value = kind(raw)
    except ValueError:
        raise ConstraintError(
            f"constraint {key} must be a positive {kind.__name__}, not '{raw}'."
        ) from None
    if not math.isfinite(value) or value <= 0:
        raise ConstraintError(f"constraint {key} must be a positive {kind.__name__}, not '{raw}'.")
    return value


@dataclass(frozen=True)
class EpochReport:
    """What a trial reports after every validation round (``TrainConfig.eval_every`` steps)."""

    epoch: int  # the round, 1-based: epoch x eval_every optimizer steps done
    train_loss: float
    val_score: float
    elapsed_s: float  # training time so far


@dataclass(frozen=True)
class CostMeasurement:
    """Cost of one configuration, measured on the untrained model on the trial's device."""

    params: int
    flops: int | None
    latency_ms: float  # median inference latency, batch 1
    latency_p95_ms: float
    peak_memory_mb: float
    memory_method: str
    device: str
    threads: int
    batch_size: int | None = None  # batch of latency_batch_* and train_step_ms (None: not run)
    latency_batch_ms: float | None = None  # median inference latency at batch_size
    latency_batch_p95_ms: float | None = None
    step_ms: float | None = None  # median streaming latency per token, batch 1 (None: no step)
    step_p95_ms: float | None = None
    train_step_ms: float | None = None  # median forward+backward+optimizer step at batch_size
    model_size_mb: float | None = None  # serialized weights as deployed (int8 when quantized)
    quantized: str = "none"  # "none" | "int8": what latency, memory and size were measured on
    flops_method: str = ""


@dataclass(frozen=True)
class TrialOutcome:
    """Everything one trial produced (the model weights travel separately as a checkpoint)."""

    status: TrialStatus
    cost: CostMeasurement | None
    epochs_run: int
    best_epoch: int | None
    val_score: float | None
    test_score: float | None
    train_seconds: float
    error: str | None = None


@dataclass(frozen=True)
class FloorResult:
    """The measured floor of a task: a fast classical model fitted on the search's training
    split and scored with the task's metric, exactly as trials are (see ``archsearch.floor``)."""

    method: str  # e.g. "minirocket+ridge"
    val_score: float | None  # None: no validation series
    test_score: float | None
    fit_seconds: float
    latency_ms: float  # median predict time of one series (batch 1), CPU
    size_mb: float  # the pickled fitted model
    train_series: int  # training series it was fitted on (a subsample of very large sets)
    cv_mean: float | None = None  # k-fold cross-validation on the finalists' folds
    cv_std: float | None = None
    cv_folds: int | None = None
    bag_test_score: float | None = None  # the fold models' bag on test (beside a bagged pick)
