"""Reading a data source: :func:`load_dataset` for ``builtin:NAME`` and data files, and
:func:`reuse_loads`, which lets the command line load DATA once."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from archsearch.data.builtin import load_builtin
from archsearch.data.dataset import SequenceDataset
from archsearch.data.npz import load_npz
from archsearch.data.options import LoadOptions
from archsearch.data.splits import split_indices
from archsearch.data.tabular import load_table
from archsearch.data.validate import check_dataset, quote, reason_of
from archsearch.errors import DataError

SUPPORTED_EXTENSIONS = {
    ".npz": "npz",
    ".csv": "csv",
    ".csv.gz": "csv",
    ".tsv": "csv",
    ".tsv.gz": "csv",
    ".parquet": "parquet",
    ".pq": "parquet",
}


# While reuse_loads() is active: the last data set loaded, under its source, options and file.
_kept: dict[tuple[Any, ...], SequenceDataset] | None = None


@contextmanager
def reuse_loads() -> Iterator[None]:
    """Within this block, loading the same source again with the same options (the file
    unchanged) returns the data set already loaded. The command line loads DATA before it
    imports the search machinery (torch, Ray: seconds), so that data the limits or the contract
    refuse is refused at once; the task then reuses what was loaded, instead of reading it
    again. Only the last data set is kept, and only until the block ends."""
    global _kept
    previous, _kept = _kept, {}
    try:
        yield
    finally:
        _kept = previous


def _reuse_key(source: str, options: LoadOptions) -> tuple[Any, ...] | None:
    if _kept is None:
        return None
    if source.startswith("builtin:"):
        return (source, options)
    try:
        stat = Path(source).stat()
    except (OSError, ValueError):
        return None
    return (source, options, stat.st_ino, stat.st_size, stat.st_mtime_ns)


def load_dataset(source: str, options: LoadOptions | None = None) -> SequenceDataset:
    """Load ``builtin:NAME[?k=v&...]`` or a data file.

    The format follows the file's extension (see ``SUPPORTED_EXTENSIONS``); ``options``
    overrides what is otherwise detected (task, target, columns, windows, imputation) and
    carries the data limits (:class:`DataLimits`), checked before the data is allocated. Raises
    :class:`DataError` (one paragraph: what, where, how many, how to fix) and nothing else,
    whatever the file holds, including when the data set is too small to split, breaks a limit,
    or has targets that leave nothing to learn (see docs/data-limits.md). Within
    :func:`reuse_loads`, the data set loaded last is returned again for the same source,
    options and (unchanged) file.
    """
    options = options if options is not None else LoadOptions()
    key = (_reuse_key(source, options)
           if isinstance(source, str) and isinstance(options, LoadOptions) else None)
    if key is not None and key in _kept:
        return _kept[key]
    dataset = _read_dataset(source, options)
    if key is not None:
        _kept.clear()
        _kept[key] = dataset
    return dataset


def _read_dataset(source: str, options: LoadOptions) -> SequenceDataset:
    if not isinstance(options, LoadOptions):
        raise TypeError(f"options must be a LoadOptions, not {type(options).__name__}")
    if not isinstance(source, str) or not source.strip():
        raise DataError("no data source given; give a path to an .npz, .csv or .parquet file, "
                        "or builtin:NAME (`archsearch datasets` lists them).")
    if source.startswith("builtin:"):
        return _load_builtin(source, options)
    path = Path(source)
    try:
        is_file = path.is_file()
    except (OSError, ValueError):
        is_file = False
    if not is_file:
        raise DataError(f"data file {quote(source)} does not exist (or is not a file); give a "
                        "path to an .npz, .csv or .parquet file, or builtin:NAME.")
    fmt = _format_of(path)
    try:
        if fmt == "npz":
            dataset = load_npz(path, options)
        else:
            dataset = load_table(path, fmt, options)
    except DataError:
        raise
    except MemoryError:
        raise DataError(f"{quote(path.name)} is too large to load into memory on this machine; "
                        "use a smaller sample of it.") from None
    except PermissionError:
        raise DataError(f"{quote(source)} cannot be read: permission denied.") from None
    except Exception as exc:  # noqa: BLE001 - the promise is: only DataError escapes
        raise DataError(f"{quote(path.name)} could not be loaded ({type(exc).__name__}: "
                        f"{reason_of(exc)}); check that it follows the {fmt} layout. If it "
                        "does, this is a bug in archsearch: please report it.") from exc
    _check_task(dataset, options, source)
    check_dataset(dataset, options.limits, quote(path.name))
    split_indices(dataset, seed=0)  # refuse now what prepare() could not split
    return dataset


def _format_of(path: Path) -> str:
    name = path.name.lower()
    for suffix in sorted(SUPPORTED_EXTENSIONS, key=len, reverse=True):
        if name.endswith(suffix):
            return SUPPORTED_EXTENSIONS[suffix]
    supported = ", ".join(SUPPORTED_EXTENSIONS)
    raise DataError(f"{quote(path.name)} has an unsupported extension "
                    f"{quote(''.join(path.suffixes) or '(none)')}; supported: {supported}, or "
                    "builtin:NAME.")


def _load_builtin(source: str, options: LoadOptions) -> SequenceDataset:
    stray = options.non_default(ignore=("task",))
    if stray:
        raise DataError(f"{source} is a built-in data set, so the option(s) {', '.join(stray)} "
                        "do not apply; built-in data sets take their parameters in the source "
                        "(builtin:NAME?key=value&...).")
    try:
        dataset = load_builtin(source[len("builtin:"):])
    except DataError:
        raise
    except MemoryError:
        raise DataError(f"{source} is too large to generate in memory; use smaller length or n."
                        ) from None
    except Exception as exc:  # noqa: BLE001 - e.g. a damaged package that ships the data
        raise DataError(f"{source} could not be built ({type(exc).__name__}: {reason_of(exc)}); "
                        "reinstall the package that ships it, or report this as a bug.") from exc
    _check_task(dataset, options, source)
    check_dataset(dataset, options.limits, source)
    split_indices(dataset, seed=0)
    return dataset


def _check_task(dataset: SequenceDataset, options: LoadOptions, source: str) -> None:
    if options.task is not None and options.task is not dataset.task:
        raise DataError(f"{quote(source)} is a {dataset.task.value} data set, not "
                        f"{options.task.value}; leave out --task or choose "
                        f"{dataset.task.value}.")
