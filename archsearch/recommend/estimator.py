"""scikit-learn's estimator conventions without scikit-learn's import.

``archsearch recommend`` answers in under 5 s (issue 12), and importing scikit-learn (it
imports SciPy's statistics and pandas) took 1.5 to 3 s of that, more than everything else the
answer needs. The recommender's estimators therefore follow scikit-learn's conventions from this
base rather than inherit :class:`sklearn.base.BaseEstimator`: the constructor's arguments are the
parameters, stored unchanged; ``get_params`` reads them and ``set_params`` writes them, so that
``sklearn.base.clone`` and ``cross_val_score`` work on them (``tests/test_ranker.py``). Fitting
may still use scikit-learn, imported where it is needed (offline, not on the recommend path).
"""

from __future__ import annotations

import inspect
from typing import Any


class Estimator:
    """Parameters from ``__init__``'s signature, read and written as scikit-learn does."""

    @classmethod
    def _param_names(cls) -> list[str]:
        signature = inspect.signature(cls.__init__)
        return sorted(p.name for p in signature.parameters.values()
                      if p.name != "self" and p.kind is p.POSITIONAL_OR_KEYWORD)

    def get_params(self, deep: bool = True) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self._param_names()}

    def set_params(self, **params: Any) -> Estimator:
        unknown = sorted(set(params) - set(self._param_names()))
        if unknown:
            raise ValueError(f"{type(self).__name__} has no parameter(s) {', '.join(unknown)}; "
                             f"its parameters: {', '.join(self._param_names())}")
        for name, value in params.items():
            setattr(self, name, value)
        return self

    def __sklearn_tags__(self) -> Any:
        # Asked by scikit-learn's own functions (clone, cross_val_score) only, which have
        # imported it already: BaseEstimator's tags (no estimator type; y used if given).
        from sklearn.utils import Tags, TargetTags

        return Tags(estimator_type=None, target_tags=TargetTags(required=False),
                    transformer_tags=None, regressor_tags=None, classifier_tags=None)

    def __repr__(self) -> str:
        params = ", ".join(f"{k}={v!r}" for k, v in self.get_params().items())
        return f"{type(self).__name__}({params})"
