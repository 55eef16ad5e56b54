"""SQLAlchemy 2.0 models. Tables carry an ``archsearch_`` prefix: Optuna's own study tables
(``studies``, ``trials``, ...) live in the same database."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Float,
    ForeignKey,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship


def utcnow() -> datetime:
    return datetime.now(timezone.utc).replace(tzinfo=None)


class Base(DeclarativeBase):
    type_annotation_map = {dict[str, Any]: JSON, list[Any]: JSON}


class TaskRow(Base):
    __tablename__ = "archsearch_tasks"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
    status: Mapped[str] = mapped_column(String(16))
    source: Mapped[str] = mapped_column(Text)
    dataset_name: Mapped[str] = mapped_column(Text)
    task_kind: Mapped[str] = mapped_column(String(16))
    metric_name: Mapped[str] = mapped_column(String(32))
    metric_direction: Mapped[str] = mapped_column(String(8))
    seed: Mapped[int] = mapped_column(Integer)
    constraints: Mapped[dict[str, Any]] = mapped_column(default=dict)
    options: Mapped[dict[str, Any]] = mapped_column(default=dict)
    space_name: Mapped[str] = mapped_column(String(128))
    meta_features: Mapped[dict[str, Any]] = mapped_column(default=dict)
    fingerprint: Mapped[str | None] = mapped_column(String(64), index=True)
    budget_trials: Mapped[int | None]
    budget_minutes: Mapped[float | None]
    optuna_study: Mapped[str | None] = mapped_column(String(128))
    best_trial_id: Mapped[int | None]
    report_path: Mapped[str | None] = mapped_column(Text)
    error: Mapped[str | None] = mapped_column(Text)
    # The driver running the task holds a lease it renews (archsearch.store.lease); a task
    # whose lease lapsed while running is read as interrupted.
    lease_owner: Mapped[str | None] = mapped_column(String(64))
    lease_expires_at: Mapped[datetime | None]
    cancel_requested: Mapped[bool] = mapped_column(Boolean, default=False)

    trials: Mapped[list[TrialRow]] = relationship(back_populates="task", order_by="TrialRow.number")
    floor: Mapped[FloorRow | None] = relationship(lazy="selectin")


class TrialRow(Base):
    __tablename__ = "archsearch_trials"
    __table_args__ = (UniqueConstraint("task_id", "number"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    task_id: Mapped[int] = mapped_column(ForeignKey("archsearch_tasks.id"), index=True)
    number: Mapped[int] = mapped_column(Integer)  # 0-based within the task (= Optuna's number)
    tune_trial_id: Mapped[str | None] = mapped_column(String(64))
    family: Mapped[str] = mapped_column(String(64))
    config: Mapped[dict[str, Any]] = mapped_column(default=dict)
    status: Mapped[str] = mapped_column(String(16))
    error: Mapped[str | None] = mapped_column(Text)
    params: Mapped[int | None] = mapped_column(BigInteger)
    flops: Mapped[int | None] = mapped_column(BigInteger)
    latency_ms: Mapped[float | None] = mapped_column(Float)
    latency_p95_ms: Mapped[float | None] = mapped_column(Float)
    peak_memory_mb: Mapped[float | None] = mapped_column(Float)
    memory_method: Mapped[str | None] = mapped_column(Text)
    device: Mapped[str | None] = mapped_column(String(16))
    node_id: Mapped[str | None] = mapped_column(String(64))  # the Ray node it ran on
    val_score: Mapped[float | None] = mapped_column(Float)
    test_score: Mapped[float | None] = mapped_column(Float)
    best_epoch: Mapped[int | None]
    cv_score: Mapped[float | None] = mapped_column(Float)  # mean over folds (small data)
    cv_std: Mapped[float | None] = mapped_column(Float)
    cv_folds: Mapped[int | None]
    bag_test_score: Mapped[float | None] = mapped_column(Float)
    epochs_run: Mapped[int] = mapped_column(Integer, default=0)
    retries: Mapped[int] = mapped_column(Integer, default=0)  # attempts Ray ran again
    train_seconds: Mapped[float] = mapped_column(Float, default=0.0)
    started_at: Mapped[datetime] = mapped_column(default=utcnow)
    finished_at: Mapped[datetime | None]

    task: Mapped[TaskRow] = relationship(back_populates="trials")
    epochs: Mapped[list[EpochRow]] = relationship(order_by="EpochRow.epoch")


class EpochRow(Base):
    __tablename__ = "archsearch_epochs"
    __table_args__ = (UniqueConstraint("trial_id", "epoch"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    trial_id: Mapped[int] = mapped_column(ForeignKey("archsearch_trials.id"), index=True)
    epoch: Mapped[int] = mapped_column(Integer)
    train_loss: Mapped[float] = mapped_column(Float)
    val_score: Mapped[float] = mapped_column(Float)
    elapsed_s: Mapped[float] = mapped_column(Float)


class RecommendationRow(Base):
    __tablename__ = "archsearch_recommendations"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    task_id: Mapped[int] = mapped_column(ForeignKey("archsearch_tasks.id"), index=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    family: Mapped[str] = mapped_column(String(64))
    config: Mapped[dict[str, Any]] = mapped_column(default=dict)
    confidence: Mapped[float] = mapped_column(Float)
    rationale: Mapped[list[Any]] = mapped_column(default=list)
    ranking: Mapped[list[Any]] = mapped_column(default=list)


class FloorRow(Base):
    """A task's measured floor: the classical model fitted before the search (one per task)."""

    __tablename__ = "archsearch_floors"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    task_id: Mapped[int] = mapped_column(ForeignKey("archsearch_tasks.id"), unique=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    method: Mapped[str] = mapped_column(String(64))
    val_score: Mapped[float | None] = mapped_column(Float)
    test_score: Mapped[float | None] = mapped_column(Float)
    fit_seconds: Mapped[float] = mapped_column(Float)
    latency_ms: Mapped[float] = mapped_column(Float)
    size_mb: Mapped[float] = mapped_column(Float)
    train_series: Mapped[int] = mapped_column(Integer)
    cv_mean: Mapped[float | None] = mapped_column(Float)
    cv_std: Mapped[float | None] = mapped_column(Float)
    cv_folds: Mapped[int | None]
    bag_test_score: Mapped[float | None] = mapped_column(Float)
