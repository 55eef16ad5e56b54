"""Meta-features describing a data set, and a content fingerprint."""

from __future__ import annotations

import hashlib
from typing import Any

import numpy as np

from archsearch.data.dataset import SequenceDataset


def meta_features(dataset: SequenceDataset) -> dict[str, Any]:
    lengths = (dataset.lengths if dataset.lengths is not None
               else np.full(dataset.n_sequences, dataset.seq_len))
    return {
        "n_sequences": dataset.n_sequences,
        "seq_len": dataset.seq_len,
        "length_mean": float(lengths.mean()),
        "n_features": dataset.n_features,
        "task": dataset.task.value,
    }


def fingerprint(dataset: SequenceDataset) -> str:
    digest = hashlib.sha256(dataset.task.value.encode())
    for array in (dataset.X, dataset.y, dataset.lengths, dataset.X_test, dataset.y_test):
        if array is not None:
            digest.update(np.ascontiguousarray(array).tobytes())
    return digest.hexdigest()
