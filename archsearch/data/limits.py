"""Resource limits of the data room: one definition of each, checked before allocation.

A data file is refused, with one paragraph naming the limit, the file's value and how to change
it, as soon as one of these bounds is known to be broken, and before memory grows with the
file's size: compressed inputs are measured while they inflate (reading stops at the limit),
the arrays of an NPZ file are measured from their ``.npy`` headers, a Parquet file from its
footer, and the columns of a CSV file from its header line, before pandas parses anything.

The defaults suit a 24 GiB machine and let every built-in data set and the UCR/UEA archives
load; ``archsearch search|recommend|serve --limit KEY=VALUE`` (repeatable) changes them, and a
stored task keeps the limits it was submitted with (see docs/data-limits.md).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field, fields
from typing import Any

from archsearch.errors import DataError, UsageError

MIB = 1 << 20
# The header line of a CSV file may hold up to this many bytes per allowed column.
HEADER_BYTES_PER_COLUMN = 1024


def _limit(default: int, unit: str, text: str) -> Any:
    return field(default=default, metadata={"unit": unit, "help": text})


@dataclass(frozen=True)
class DataLimits:
    """The largest data set the data room reads; every field is a positive integer."""

    max_inflated_mb: int = _limit(
        1024, "MiB", "data once decompressed: the text of a CSV/TSV file (gunzipped), the arrays "
        "of an NPZ file, the column data of a Parquet file; counted while inflating, from the "
        "array headers or from the Parquet footer, before anything is allocated")
    max_rows: int = _limit(
        20_000_000, "rows", "data rows of a CSV/TSV/Parquet file (counted while reading it)")
    max_columns: int = _limit(
        10_000, "columns", "columns of a CSV/TSV/Parquet file (read from the header line or the "
        "footer before parsing; the header line may hold 1 KiB per column)")
    max_series: int = _limit(
        1_000_000, "sequences", "sequences of the data set, a fixed test split included "
        "(forecasting: windows)")
    max_steps: int = _limit(
        20_000, "steps", "steps of the longest sequence (forecasting: the lookback); the "
        "longest UCR/UEA series (EigenWorms) has 17,984")
    max_channels: int = _limit(
        4_096, "channels", "channels (feature or value columns) per step")
    max_classes: int = _limit(
        1_000, "classes", "distinct class labels of a classification data set")
    max_values: int = _limit(
        1 << 28, "values", "sequences x steps x channels after padding (1 GiB as float32)")

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise DataError(f"the data limit {f.name} must be a positive integer, not "
                                f"{value!r}.")

    @property
    def max_inflated_bytes(self) -> int:
        return self.max_inflated_mb * MIB

    @property
    def max_header_bytes(self) -> int:
        return self.max_columns * HEADER_BYTES_PER_COLUMN

    # ------------------------------------------------------------------ refusals

    def check(self, name: str, value: int, where: str, found: str) -> None:
        """Refuse when ``value`` (in the limit's unit) is over the limit ``name``; ``found``
        says what the file has, e.g. "has 200,000 columns". Sizes in bytes compare with
        :attr:`max_inflated_bytes` and refuse with :meth:`refusal`."""
        if value > getattr(self, name):
            raise self.refusal(name, where, found)

    def refusal(self, name: str, where: str, found: str) -> DataError:
        """The DataError of a broken limit: which limit, the file's value, how to change it."""
        limit = getattr(self, name)
        unit = _field(name).metadata["unit"]
        return DataError(
            f"{where} {found}, over the data limit {name} = {limit:,} {unit}. The limits keep "
            "one data set from exhausting this machine's memory, and are checked before its "
            "data is allocated; if it is what you meant to use, raise the limit with "
            f"`--limit {name}=N` (archsearch search or recommend; for uploads, archsearch serve "
            "--limit), or use a smaller data set (fewer rows, shorter sequences, fewer "
            "channels).")

    def check_shape(self, n: int, T: int, F: int, where: str, n_test: int = 0) -> None:
        """Refuse a data set of ``n`` (+ ``n_test``) sequences x ``T`` steps x ``F`` channels
        that breaks a limit; call it before allocating the (padded) array."""
        total = n + n_test
        split = f" ({n:,} + {n_test:,} in the fixed test split)" if n_test else ""
        self.check("max_series", total, where, f"has {total:,} sequences{split}")
        self.check("max_steps", T, where, f"has sequences of {T:,} steps")
        self.check("max_channels", F, where, f"has {F:,} channels per step")
        values = total * T * F
        self.check("max_values", values, where,
                   f"has {total:,} sequences x {T:,} steps x {F:,} channels = {values:,} values "
                   f"({values * 4 / 2**30:.1f} GiB as float32)")

    # ------------------------------------------------------------------ settings

    @staticmethod
    def from_items(items: Iterable[str] | None) -> DataLimits:
        """Parse ``KEY=VALUE`` settings (the ``--limit`` flag); unknown keys and bad values
        raise UsageError."""
        values: dict[str, int] = {}
        for item in items or ():
            key, sep, raw = item.partition("=")
            key = key.strip().replace("-", "_")
            if not sep or key not in _names():
                raise UsageError(f"--limit takes KEY=VALUE with KEY among {', '.join(_names())}, "
                                 f"not {item!r} (see docs/data-limits.md).")
            try:
                value = int(raw.strip().replace("_", "").replace(",", ""))
            except ValueError:
                raise UsageError(f"--limit {key} must be a positive integer, not "
                                 f"{raw.strip()!r}.") from None
            if value < 1:
                raise UsageError(f"--limit {key} must be a positive integer, not {value}.")
            values[key] = value
        return DataLimits(**values)

    def to_dict(self) -> dict[str, int]:
        return {f.name: getattr(self, f.name) for f in fields(self)}

    @staticmethod
    def from_dict(values: dict[str, Any]) -> DataLimits:
        """The inverse of :meth:`to_dict` (missing keys take their defaults); unknown keys
        raise DataError."""
        if not isinstance(values, dict):
            raise DataError(f"the data limits must be a mapping of {', '.join(_names())}, not "
                            f"{type(values).__name__}.")
        unknown = sorted(set(values) - set(_names()))
        if unknown:
            raise DataError(f"unknown data limit(s) {', '.join(map(str, unknown))}; known: "
                            f"{', '.join(_names())}.")
        return DataLimits(**values)

    @staticmethod
    def describe() -> str:
        """One line per limit (name, default, unit, what it bounds), for --help."""
        return "; ".join(f"{f.name} (default {f.default:,} {f.metadata['unit']})"
                         for f in fields(DataLimits))


def _names() -> tuple[str, ...]:
    return tuple(f.name for f in fields(DataLimits))


def _field(name: str) -> Any:
    return next(f for f in fields(DataLimits) if f.name == name)
