"""Read-side records: plain frozen dataclasses, detached from any database session."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from archsearch.types import FloorResult, Metric


@dataclass(frozen=True)
class EpochRecord:
    epoch: int
    train_loss: float
    val_score: float
    elapsed_s: float


@dataclass(frozen=True)
class TrialRecord:
    id: int
    number: int
    family: str
    config: dict[str, Any]
    status: str
    error: str | None
    params: int | None
    flops: int | None
    latency_ms: float | None
    latency_p95_ms: float | None
    peak_memory_mb: float | None
    memory_method: str | None
    device: str | None
    val_score: float | None
    test_score: float | None
    best_epoch: int | None
    epochs_run: int
    train_seconds: float
    started_at: datetime
    finished_at: datetime | None
    epochs: tuple[EpochRecord, ...] = ()
    cv_score: float | None = None
    cv_std: float | None = None
    cv_folds: int | None = None
    node_id: str | None = None
    bag_test_score: float | None = None  # the pick's fold models as a bag, on test
    retries: int = 0  # times Ray ran it again after a failed attempt (its worker died)


@dataclass(frozen=True)
class TaskRecord:
    id: int
    created_at: datetime
    updated_at: datetime
    status: str
    source: str
    dataset_name: str
    task_kind: str
    metric: Metric
    seed: int
    constraints: dict[str, Any]
    options: dict[str, Any]
    space_name: str
    meta_features: dict[str, Any]
    fingerprint: str | None
    budget_trials: int | None
    budget_minutes: float | None
    optuna_study: str | None
    best_trial_id: int | None
    report_path: str | None
    error: str | None
    floor: FloorResult | None = None  # the measured floor (None: not fitted yet, or failed)
    lease_owner: str | None = None  # the driver running it (None: no driver holds it)
    lease_expires_at: datetime | None = None  # naive UTC; renewed while its driver lives
    cancel_requested: bool = False  # asked to stop; its driver notices when it renews


@dataclass(frozen=True)
class RecommendationRecord:
    family: str
    config: dict[str, Any]
    confidence: float
    rationale: list[str]
    ranking: list[dict[str, Any]] = field(default_factory=list)
