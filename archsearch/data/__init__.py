"""Data room: load, validate, split and describe sequence data sets.

The front of the room: :func:`load_dataset` reads ``builtin:NAME[?k=v&...]``, ``.npz``,
``.csv`` / ``.tsv`` (optionally ``.gz``) and ``.parquet`` / ``.pq`` sources and raises only
:class:`~archsearch.errors.DataError` for anything wrong with them; :func:`prepare` splits and
normalises; :func:`meta_features` and :func:`fingerprint` describe a data set.
"""

from archsearch.data.builtin import BUILTIN_TASKS, list_builtin
from archsearch.data.dataset import PreparedData, SequenceDataset, Split
from archsearch.data.limits import DataLimits
from archsearch.data.load import SUPPORTED_EXTENSIONS, load_dataset, reuse_loads
from archsearch.data.meta import fingerprint, meta_features
from archsearch.data.options import IMPUTE_METHODS, LoadOptions
from archsearch.data.real import INSTALL_HINT
from archsearch.data.splits import prepare

__all__ = [
    "BUILTIN_TASKS",
    "DataLimits",
    "IMPUTE_METHODS",
    "INSTALL_HINT",
    "LoadOptions",
    "PreparedData",
    "SequenceDataset",
    "Split",
    "SUPPORTED_EXTENSIONS",
    "fingerprint",
    "list_builtin",
    "load_dataset",
    "meta_features",
    "prepare",
    "reuse_loads",
]
