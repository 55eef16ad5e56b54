"""What the API accepts and answers (pydantic models: they are also the OpenAPI spec)."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Annotated, Any, Literal, get_args, get_type_hints

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, create_model

from archsearch.errors import ArchsearchError
from archsearch.options import SearchOptions, option_of
from archsearch.types import TaskKind

Scalar = bool | int | float | str


class _TaskRequest(BaseModel):
    """What a task reads and must meet; TaskOptions adds the fields of SearchOptions."""

    model_config = ConfigDict(extra="forbid")

    task: TaskKind | None = None
    target: str | None = Field(None, description="target column (tabular formats)")
    load: dict[str, Scalar | None] = Field(
        default_factory=dict, description="more on how to read a CSV/Parquet file: "
        "id_column, step_column, time_column, lookback, horizon, impute (as the CLI's options)")
    constraints: dict[str, Scalar] = Field(
        default_factory=dict, description="max_latency_ms, max_params, max_memory_mb, "
        "max_trial_minutes, streaming, device")
    space: str | None = Field(None, pattern=r"^[A-Za-z0-9_-]{1,64}$",
                              description="a search space shipped with the server "
                              "(search_spaces/NAME.yaml); or upload one as the `space` file")


def _valid_text(parse: Callable[[str], Any]) -> Callable[[str], str]:
    """A validator that keeps an option's text when ``parse`` reads it (a refusal becomes the
    ValueError pydantic reports)."""

    def check(text: str) -> str:
        try:
            parse(text)
        except ArchsearchError as exc:
            raise ValueError(str(exc)) from None
        return text

    return check


def _schema_field(option: dataclasses.Field, kind: Any) -> tuple[Any, Any]:
    """The pydantic field of one SearchOptions field: its help, bounds and default."""
    shown = option_of(option)
    if shown.parse:  # carried as its text, as it is stored
        return (Annotated[str, AfterValidator(_valid_text(shown.parse))],
                Field(str(option.default), description=shown.help))
    bounds: dict[str, Any] = {}
    if shown.minimum is not None:
        bounds["gt" if shown.strict else "ge"] = shown.minimum
    if shown.maximum is not None:
        bounds["le"] = shown.maximum
    if float in (kind, *get_args(kind)):
        bounds["allow_inf_nan"] = False
    if shown.choices:
        kind = Literal[shown.choices]
    return kind, Field(option.default, description=shown.help, **bounds)


TaskOptions = create_model(
    "TaskOptions", __base__=_TaskRequest,
    __doc__="The ``options`` form field of ``POST /tasks``: the settings of ``archsearch "
    "search`` (its search options are the fields of archsearch.options.SearchOptions).",
    **{option.name: _schema_field(option, get_type_hints(SearchOptions)[option.name])
       for option in dataclasses.fields(SearchOptions)})


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
