"""The settings of a search, each defined once: :class:`SearchOptions`.

A field's metadata (:func:`option`) holds its help text, its bounds and its parser; the CLI's
``archsearch search`` flags and the API's ``TaskOptions`` schema are generated from it, and a
stored task keeps :meth:`SearchOptions.to_dict`. Adding an option means adding a field here
(plus its use). Where a search runs (the database, the Ray cluster) is not an option: it is not
stored with the task. Free of torch, Ray and Optuna imports, so the command line parses fast.
"""

from __future__ import annotations

import dataclasses
import math
import os
from collections.abc import Callable
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from archsearch.errors import UsageError
from archsearch.types import PRUNERS, QUALITY_ONLY, SAMPLERS, Objectives


def seconds_from_env(name: str, default: float, low: float, high: float, what: str) -> float:
    """Seconds set by the environment variable ``name`` (``default`` when unset or empty),
    refused (UsageError) outside ``low`` to ``high``; ``what`` the seconds measure."""
    text = os.environ.get(name, "").strip()
    if not text:
        return default
    try:
        seconds = float(text)
    except ValueError:
        seconds = float("nan")
    if not low <= seconds <= high:  # NaN fails too
        raise UsageError(f"{name}={text!r}: give {what} in seconds, {low:g} to {high:g} "
                         f"(default {default:g}).")
    return seconds

DEFAULT_DB_URL = "sqlite:///archsearch.db"
DEFAULT_REPORT_DIR = Path("reports")
DEFAULT_BUDGET_TRIALS = 12  # without budget_minutes; with it, trials run until time is up
# `archsearch serve`'s defaults, read by its CLI flags and by ServeConfig alike.
DEFAULT_SERVE_HOST = "127.0.0.1"
DEFAULT_SERVE_PORT = 8000
DEFAULT_DATA_DIR = Path("archsearch-data")  # uploads, driver logs, a generated token
DEFAULT_MAX_UPLOAD_MB = 512.0


@dataclass(frozen=True)
class Option:
    """How a search option is shown and checked on both faces (the CLI and the API).

    ``minimum``/``maximum`` bound a number (``strict``: the minimum itself is refused);
    ``parse`` reads the option's text form (its stored and API form is ``str(value)``)."""

    help: str
    metavar: str | None = None
    minimum: float | None = None
    strict: bool = False
    maximum: float | None = None
    choices: tuple[str, ...] | None = None
    parse: Callable[[str], Any] | None = None

    def problem(self, value: Any) -> str | None:
        """What is wrong with ``value``: a number outside the bounds, or not one of the choices
        (None: nothing)."""
        if value is None:
            return None
        if self.choices is not None:
            return None if value in self.choices else f"must be one of {', '.join(self.choices)}"
        if self.minimum is None:
            return None
        if value != value or math.isinf(value) or value < self.minimum \
                or (self.strict and value == self.minimum):
            return (f"must be greater than {self.minimum:g}" if self.strict
                    else f"must be at least {self.minimum:g}")
        if self.maximum is not None and value > self.maximum:
            return f"must be at most {self.maximum:g}"
        return None


def option(default: Any, help: str, **shown: Any) -> Any:
    """A field of :class:`SearchOptions` with its :class:`Option` metadata."""
    return dataclasses.field(default=default, metadata={"option": Option(help, **shown)})


def option_of(field: dataclasses.Field) -> Option:
    return field.metadata["option"]


@dataclass(frozen=True)
class SearchOptions:
    """What a search is asked to do, beside its data, constraints and search space."""

    budget_trials: int | None = option(
        None, f"trials to run (default {DEFAULT_BUDGET_TRIALS}; given only a time budget, "
        "trials run until the time is spent)", metavar="N", minimum=1, maximum=10_000)
    budget_minutes: float | None = option(
        None, "the whole run (floor, trials, finalists, report) ends within M minutes",
        metavar="M", minimum=0.0, strict=True, maximum=7 * 24 * 60)
    sampler: str = option("tpe", "how Optuna proposes configurations", choices=SAMPLERS)
    pruner: str = option("median", "how Optuna stops unpromising trials", choices=PRUNERS)
    objectives: Objectives = option(
        QUALITY_ONLY, "quality (default), or quality plus measured costs to minimise as a "
        "Pareto search: quality,latency / quality,params / quality,memory (combinable)",
        metavar="LIST", parse=Objectives.parse)
    rung_seconds: float | None = option(
        None, "count pruning rungs in training time (rung k: k*S seconds of training) instead "
        "of validation rounds (equal optimizer steps), so families whose steps cost more are "
        "compared at equal compute", metavar="S", minimum=0.0, strict=True)
    cpus_per_trial: float = option(1.0, "CPUs Ray reserves per trial (default 1)", metavar="N",
                                   minimum=0.0, strict=True)
    gpus_per_trial: float | None = option(
        None, "GPUs (or a fraction) per trial; default 1 when the cluster has GPUs, else 0",
        metavar="F", minimum=0.0)
    cv_folds: int = option(
        5, "on small data (< 500 train+validation sequences) re-score the best trial of each "
        "of the 5 best families by K-fold cross-validation, as many as the time budget allows "
        "(0 or 1: off; default 5)", metavar="K", minimum=0, maximum=20)
    seed: int = option(0, "seeds the split, the sampler and every trial", metavar="N",
                       minimum=0, maximum=2**31 - 1)

    def __post_init__(self) -> None:
        for field in fields(self):
            problem = option_of(field).problem(getattr(self, field.name))
            if problem:
                raise UsageError(f"{field.name} {problem}, not {getattr(self, field.name)}.")
        if self.budget_trials is None and self.budget_minutes is None:
            object.__setattr__(self, "budget_trials", DEFAULT_BUDGET_TRIALS)

    def to_dict(self) -> dict[str, Any]:
        """The stored (JSON) form: an option with a parser as its text."""
        return {f.name: str(getattr(self, f.name)) if option_of(f).parse
                else getattr(self, f.name) for f in fields(self)}

    @staticmethod
    def from_dict(values: dict[str, Any]) -> SearchOptions:
        """The options of ``values`` (as :meth:`to_dict` writes them; keys of other settings
        are ignored, options stored before they existed take their default)."""
        given = {}
        for field in fields(SearchOptions):
            if field.name in values:
                value, parse = values[field.name], option_of(field).parse
                given[field.name] = parse(value) if parse and isinstance(value, str) else value
        return SearchOptions(**given)

