"""How alike two tasks are: one meta-feature vector and one distance over it.

Every notion of "a similar task" in the recommender is this one: the warm start (the winners of
the nearest past tasks), the past-task ranker's neighbours and the knowledge base's weights.

- :func:`meta_vector`: the data room's meta-features (``archsearch.data.meta``) as a fixed row
  of :data:`FEATURE_NAMES`: sizes on a log10 scale (a task twice as long is as far as one half
  as long), signal statistics as they are, the task kind one-hot; a missing value is NaN.
- :func:`pairwise_distances`: a weighted L1 distance over those rows, in *decades of sequence
  length*: tasks tenfold apart in length and alike otherwise are 1 apart. Each feature's weight
  (:data:`FEATURE_WEIGHTS`) says how many such units one unit of it is worth. A feature
  missing on one side adds :data:`MISSING_GAP` times its weight; missing on both, nothing.
- Tasks of different kinds (classification, regression, forecast) are :data:`KIND_GAP` apart
  beyond their features: still comparable (what long sequences favour carries over), but every
  task of the same kind within a tenfold length comes first. The warm start's
  :data:`~archsearch.recommend.warm_start.MAX_DISTANCE` is below it: a configuration never
  warm-starts a task of another kind.

The weights are fixed rather than standardised over whichever tasks happen to be stored, so a
distance means the same with two past tasks or two hundred, and the same in every caller.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np

from archsearch.types import TaskKind

TASK_KINDS = tuple(kind.value for kind in TaskKind)
KIND_GAP = 1.0
MISSING_GAP = 0.5
# Past tasks farther than this say nothing about a task: when none is nearer, past data (the
# user's searches and the knowledge base) is not consulted and the rules set the prior (a
# knowledge base of parity, sunspots and ItalyPowerDemand, 3 units from the adding problem,
# was seen overriding the adding problem's own measurements).
MAX_NEIGHBOUR_DISTANCE = 1.5
# (meta-feature, weight): the length dominates, as it does in the seed guide's rules; the
# number of sequences and channels count half; derived sizes and signal statistics (values of
# order 1) a quarter to a half, so that the dependence structure separates tasks of one size.
_LOG_WEIGHTS = {"seq_len": 1.0, "n_sequences": 0.5, "n_features": 0.5, "n_outputs": 0.25,
                "length_mean": 0.25, "class_imbalance": 0.25, "dominant_period": 0.25}
_RAW_WEIGHTS = {"padding_ratio": 0.5, "acf_lag1": 0.5, "acf_long_lag": 0.5,
                "hurst_exponent": 0.5, "spectral_energy_long": 0.25,
                "spectral_energy_short": 0.25, "dominant_period_power": 0.25}
FEATURE_NAMES: tuple[str, ...] = (tuple(f"log10_{k}" for k in _LOG_WEIGHTS) + tuple(_RAW_WEIGHTS)
                                  + tuple(f"is_{kind}" for kind in TASK_KINDS))
# Two differing one-hot entries make up the kind gap.
FEATURE_WEIGHTS = np.asarray(list(_LOG_WEIGHTS.values()) + list(_RAW_WEIGHTS.values())
                             + [KIND_GAP / 2] * len(TASK_KINDS), dtype=np.float64)


def _number(value: Any) -> float:
    if isinstance(value, bool):
        return float(value)
    if isinstance(value, (int, float)) and math.isfinite(value):
        return float(value)
    return math.nan


def meta_vector(meta: Mapping[str, Any], task_kind: str | None = None) -> np.ndarray:
    """One row of :data:`FEATURE_NAMES` from a meta-feature dict (missing or odd values: NaN);
    the kind is ``task_kind``, else ``meta["task"]``."""
    row = []
    for key in _LOG_WEIGHTS:
        value = _number(meta.get(key))
        row.append(math.log10(value) if value > 0 else math.nan)
    row.extend(_number(meta.get(key)) for key in _RAW_WEIGHTS)
    kind = task_kind or meta.get("task")
    row.extend(float(kind == k) if kind is not None else math.nan for k in TASK_KINDS)
    return np.asarray(row, dtype=np.float64)


def pairwise_distances(A: Any, B: Any) -> np.ndarray:
    """Distances between the rows of ``A`` (n, F) and ``B`` (m, F): (n, m), see the module
    docstring; NaN entries are missing values."""
    A = np.asarray(A, dtype=np.float64).reshape(-1, len(FEATURE_NAMES))
    B = np.asarray(B, dtype=np.float64).reshape(-1, len(FEATURE_NAMES))
    a, b = A[:, None, :], B[None, :, :]  # (n, 1, F), (1, m, F)
    gap = np.abs(a - b)
    one_missing = np.isnan(a) ^ np.isnan(b)
    gap = np.where(one_missing, MISSING_GAP, np.nan_to_num(gap, nan=0.0))
    return gap @ FEATURE_WEIGHTS


def task_distance(a: Mapping[str, Any], b: Mapping[str, Any]) -> float:
    """The distance between two meta-feature dicts (each with its ``task`` kind)."""
    return float(pairwise_distances(meta_vector(a), meta_vector(b))[0, 0])
