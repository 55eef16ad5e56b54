"""Search room: the only code that calls Ray (in ``ray_backend``) and Optuna.

Ray Tune runs the trials (embedded or on a cluster); an Optuna study samples the conditional
space and its pruner stops weak trials, through a coordinator that knows nothing of Ray. This
front imports neither Ray nor Optuna, so the API and the CLI can name samplers and show the
dashboard hint without them; :func:`run_search` is in :mod:`archsearch.search.engine`.
"""

from archsearch.search.dashboard import dashboard_hint
from archsearch.search.observer import MODEL_FILE, SEARCH_STOPPED, SearchObserver
from archsearch.search.settings import FinishedTrial, SearchSettings
from archsearch.types import PRUNERS, SAMPLERS

__all__ = ["MODEL_FILE", "PRUNERS", "SAMPLERS", "SEARCH_STOPPED", "FinishedTrial",
           "SearchObserver", "SearchSettings", "dashboard_hint"]
