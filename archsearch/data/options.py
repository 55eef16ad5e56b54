"""The one options object every loader reads: :class:`LoadOptions`.

It mirrors the command-line options ``--task``, ``--target``, ``--id-column``, ``--step-column``,
``--time-column``, ``--lookback``, ``--horizon`` and ``--impute``; a value left at its default
means "auto-detect". It also carries the data limits (``--limit KEY=VALUE``).
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any

from archsearch.data.limits import DataLimits
from archsearch.errors import DataError
from archsearch.types import TaskKind

IMPUTE_METHODS = ("zero", "ffill", "mean")


@dataclass(frozen=True)
class LoadOptions:
    """How to read a data file; every field is optional.

    - ``task``: force classification, regression or forecast (default: detected from the data).
    - ``target``: the target column of a CSV/Parquet file (long format: the label of each
      sequence; forecasting: the one column to forecast, default all value columns).
    - ``id_column`` / ``step_column``: the sequence id and step columns of the long format.
    - ``time_column``: the time column of a forecasting series (default: a column named time,
      date, timestamp, datetime, ds or t).
    - ``lookback`` / ``horizon``: forecast windows of ``lookback`` input steps and ``horizon``
      future steps (default lookback: 32).
    - ``impute``: how to fill NaN feature values: ``zero``, ``ffill`` (carry the last observed
      value forward) or ``mean`` (see :func:`archsearch.data.validate.impute`); ``None``
      refuses NaN. Targets are never imputed and infinities are always refused.
    - ``limits``: the resource limits every loader checks before allocating
      (:class:`~archsearch.data.limits.DataLimits`, ``--limit KEY=VALUE``); they are not a
      reading option, so :meth:`non_default` never lists them.
    """

    task: TaskKind | None = None
    target: str | None = None
    id_column: str = "series_id"
    step_column: str = "step"
    time_column: str | None = None
    lookback: int | None = None
    horizon: int = 1
    impute: str | None = None
    limits: DataLimits = field(default_factory=DataLimits)

    def __post_init__(self) -> None:
        if isinstance(self.limits, dict):
            object.__setattr__(self, "limits", DataLimits.from_dict(self.limits))
        elif not isinstance(self.limits, DataLimits):
            raise DataError(f"limits must be a DataLimits, not {type(self.limits).__name__}.")
        if self.task is not None and not isinstance(self.task, TaskKind):
            try:
                object.__setattr__(self, "task", TaskKind(str(self.task)))
            except ValueError:
                known = ", ".join(kind.value for kind in TaskKind)
                raise DataError(f"unknown task '{self.task}'; choose one of: {known}.") from None
        if self.impute is not None and self.impute not in IMPUTE_METHODS:
            raise DataError(f"unknown impute method '{self.impute}'; choose one of: "
                            f"{', '.join(IMPUTE_METHODS)} (or leave it out to refuse NaN).")
        for name in ("lookback", "horizon"):
            value = getattr(self, name)
            if value is None:
                continue
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise DataError(f"{name} must be a positive integer number of steps, not "
                                f"{value!r}.")
        for name in ("target", "id_column", "step_column", "time_column"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, str) or not value):
                raise DataError(f"{name.replace('_', '-')} must be a non-empty column name, not "
                                f"{value!r}.")
        if self.id_column == self.step_column:
            raise DataError(f"the id column and the step column are both '{self.id_column}'; "
                            "they must be two different columns.")

    def non_default(self, *, ignore: tuple[str, ...] = ()) -> list[str]:
        """Names of the reading options set to something other than their default (the limits
        are not among them: they apply to every source)."""
        default = LoadOptions()
        return [f.name for f in fields(self) if f.name not in ignore and f.name != "limits"
                and getattr(self, f.name) != getattr(default, f.name)]

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly form (the task as its string value, the limits as a dict), for storing
        with a task: a resumed task reads its data with the same options and limits."""
        values = {f.name: getattr(self, f.name) for f in fields(self)}
        values["task"] = self.task.value if self.task else None
        values["limits"] = self.limits.to_dict()
        return values

    @staticmethod
    def from_dict(values: dict[str, Any]) -> LoadOptions:
        """The inverse of :meth:`to_dict` (options stored before the limits existed take the
        default limits); unknown keys raise DataError."""
        known = {f.name for f in fields(LoadOptions)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise DataError(f"unknown load option(s) {', '.join(unknown)}; known: "
                            f"{', '.join(sorted(known))}.")
        return LoadOptions(**values)
