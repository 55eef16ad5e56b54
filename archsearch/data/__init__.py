"""Data room: load, validate, split and describe sequence data sets."""

from __future__ import annotations

from pathlib import Path

from archsearch.data.builtin import BUILTIN_TASKS, load_builtin
from archsearch.data.meta import fingerprint, meta_features
from archsearch.data.dataset import PreparedData, SequenceDataset, Split
from archsearch.data.npz import load_npz
from archsearch.data.splits import prepare
from archsearch.errors import DataError
from archsearch.types import TaskKind

__all__ = ["BUILTIN_TASKS", "PreparedData", "SequenceDataset", "Split", "fingerprint", "load_dataset",
           "meta_features", "prepare"]


def load_dataset(source: str, task: TaskKind | None = None) -> SequenceDataset:
    """Load ``builtin:NAME[?k=v&...]`` or a data file; raise :class:`DataError` on bad input."""
    if source.startswith("builtin:"):
        dataset = load_builtin(source[len("builtin:"):])
        if task is not None and task is not dataset.task:
            raise DataError(f"{source} is a {dataset.task.value} task, not {task.value}.")
        return dataset
    path = Path(source)
    if not path.is_file():
        raise DataError(f"data file '{source}' does not exist (or is not a file); give a path to "
                        "an .npz file or builtin:NAME.")
    if path.suffix.lower() == ".npz":
        return load_npz(path, task)
    raise DataError(f"'{source}' has an unsupported extension '{path.suffix}'; supported: .npz, "
                    "or builtin:NAME.")
