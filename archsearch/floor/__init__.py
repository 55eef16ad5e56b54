"""Floor room: a measured floor on every task, the bar any searched model must clear.

Before the deep search a fast, well-established classical model is fitted on the search's own
training split: MiniRocket features with a ridge model (aeon + scikit-learn) for classification
and regression, a ridge autoregression on the lookback window for forecasting. It is scored on
validation and test with the task's metric, exactly as trials are, and its fit time, latency and
size are measured. :func:`judge` decides, on selection scores only, whether the best searched
model beats it; when none does, the floor model is the answer (see docs/floor.md).

data -> floor: this room imports the data and measure rooms and the shared types only (no Ray,
no Optuna); only the workflow, the report and the API read it.
"""

from archsearch.floor.export import LOAD_FLOOR_SNIPPET, export_floor
from archsearch.floor.fit import fit_floor, fit_floor_model, floor_cv, score
from archsearch.floor.model import FloorModel, to_aeon
from archsearch.floor.verdict import (
    FLOOR,
    SEARCHED,
    FloorVerdict,
    describe,
    floor_summary,
    judge,
    label,
    sentence,
)
from archsearch.types import FloorResult

__all__ = ["FLOOR", "LOAD_FLOOR_SNIPPET", "SEARCHED", "FloorModel", "FloorResult",
           "FloorVerdict", "describe", "export_floor", "fit_floor", "fit_floor_model", "floor_cv",
           "floor_summary", "judge", "label", "score", "sentence", "to_aeon"]
