"""Search room: the only code that imports Ray and Optuna.

Ray Tune runs the trials (embedded or on a cluster); an Optuna study samples the conditional
space and its pruner stops weak trials through a Tune scheduler.
"""

from archsearch.search.engine import SearchSettings, run_search
from archsearch.search.observer import SearchObserver
from archsearch.search.runtime import dashboard_hint
from archsearch.search.tune_parts import MODEL_FILE
from archsearch.types import PRUNERS, SAMPLERS

__all__ = ["MODEL_FILE", "PRUNERS", "SAMPLERS", "SearchObserver", "SearchSettings",
           "dashboard_hint", "run_search"]
