"""What the API accepts and answers (pydantic models: they are also the OpenAPI spec)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator

from archsearch.types import PRUNERS, SAMPLERS, TaskKind

Scalar = bool | int | float | str


class TaskOptions(BaseModel):
    """The ``options`` form field of ``POST /tasks``: the settings of ``archsearch search``."""

    model_config = ConfigDict(extra="forbid")

    task: TaskKind | None = None
    target: str | None = Field(None, description="target column (tabular formats)")
    load: dict[str, Scalar | None] = Field(
        default_factory=dict, description="more on how to read a CSV/Parquet file: "
        "id_column, step_column, time_column, lookback, horizon, impute (as the CLI's options)")
    constraints: dict[str, Scalar] = Field(
        default_factory=dict, description="max_latency_ms, max_params, max_memory_mb, "
        "max_trial_minutes, streaming, device")
    budget_trials: int | None = Field(None, ge=1, le=10_000, description="default 12; with "
                                      "budget_minutes alone, trials run until time is up")
    budget_minutes: float | None = Field(None, gt=0, le=7 * 24 * 60)
    space: str | None = Field(None, pattern=r"^[A-Za-z0-9_-]{1,64}$",
                              description="a search space shipped with the server "
                              "(search_spaces/NAME.yaml); or upload one as the `space` file")
    seed: int = Field(0, ge=0, le=2**31 - 1)
    sampler: str = Field("tpe", description=f"one of {', '.join(SAMPLERS)}")
    pruner: str = Field("median", description=f"one of {', '.join(PRUNERS)}")
    cv_folds: int = Field(5, ge=0, le=20)

    @field_validator("sampler", "pruner")
    @classmethod
    def _known(cls, value: str, info: ValidationInfo) -> str:
        known = SAMPLERS if info.field_name == "sampler" else PRUNERS
        if value not in known:
            raise ValueError(f"must be one of {', '.join(known)}")
        return value


class RecommendOptions(BaseModel):
    """The ``options`` form field of ``POST /recommend``."""

    model_config = ConfigDict(extra="forbid")

    task: TaskKind | None = None
    constraints: dict[str, Scalar] = Field(default_factory=dict)
    space: str | None = Field(None, pattern=r"^[A-Za-z0-9_-]{1,64}$")


class Problem(BaseModel):
    """Every 4xx answer: one paragraph saying what is wrong and how to fix it."""

    detail: str


class TaskCreated(BaseModel):
    task_id: int
    status: str
    page: str = Field(description="the task's live page")


class Best(BaseModel):
    trial: int
    family: str
    val_score: float


class FloorView(BaseModel):
    """The task's measured floor: a classical model fitted before the search (docs/floor.md)."""

    method: str
    val_score: float | None
    test_score: float | None
    fit_seconds: float
    latency_ms: float
    size_mb: float
    train_series: int
    cv_mean: float | None
    cv_std: float | None
    cv_folds: int | None
    beats_best: bool = Field(description="no searched model (so far) beats it on selection "
                             "scores: the floor model is the answer")


class TaskView(BaseModel):
    task_id: int
    status: str = Field(description="queued, running, completed, failed or interrupted")
    created_at: str
    updated_at: str
    dataset: str
    task: str
    metric: str
    direction: str
    budget_trials: int | None
    trials: dict[str, int] = Field(description="trial counts by status")
    progress: float = Field(description="finished trials / budget, 0..1 (a time budget alone: "
                            "the time used / the budget)")
    best: Best | None
    floor: FloorView | None = Field(None, description="the measured floor, once fitted")
    error: str | None
    report_ready: bool
    active: bool = Field(description="a driver of this server still works on the task: after "
                         "the status turns final, it writes the report and the model, then exits")
    dashboard_url: str
    dashboard_hint: str


class TrialView(BaseModel):
    number: int
    family: str
    status: str
    val_score: float | None
    test_score: float | None
    cv_score: float | None
    params: int | None
    latency_ms: float | None
    peak_memory_mb: float | None
    epochs_run: int
    train_seconds: float
    retries: int  # attempts Ray ran again after a failure (a worker that died)
    error: str | None
    config: dict[str, Any]


class Point(BaseModel):
    x: float
    y: float
    label: str


class LiveView(BaseModel):
    """What the live page polls: the task, its trials, and both charts' points."""

    task: TaskView
    trials: list[TrialView]
    best_so_far: list[Point] = Field(description="x: trial number, y: best validation score")
    pareto: list[Point] = Field(description="x: latency (ms), y: validation score")
    completed: list[Point] = Field(description="every completed trial, x: latency, y: score")
