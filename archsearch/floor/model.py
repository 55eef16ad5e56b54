"""The floor's estimator: MiniRocket + ridge (classification, regression), ridge on the lookback
window (forecasting), one sklearn-style class for the three task kinds.

MiniRocket + ridge is the construction of aeon's ``MiniRocketClassifier`` and
``MiniRocketRegressor`` (the MiniRocket transform, features scaled without centring, a ridge
model whose penalty is chosen by efficient leave-one-out cross-validation over
``logspace(-3, 3, 10)``), built here from its parts. The fitted model is a plain scikit-learn
:class:`~sklearn.pipeline.Pipeline` (``pipeline_``) over ``(n, channels, time)`` float64 input:
exported, it loads with joblib, aeon and scikit-learn, without archsearch.
"""

from __future__ import annotations

import numpy as np
from sklearn.base import BaseEstimator
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import StandardScaler

from archsearch.blocks.readout import ridge_for
from archsearch.types import TaskKind

MIN_LENGTH = 9  # MiniRocket's kernels have length 9: shorter series are zero-padded to it
PREDICT_CHUNK = 512  # series transformed at once when predicting (10,000 features per series)


def to_aeon(X: np.ndarray, length: int | None = None) -> np.ndarray:
    """``(n, T, F)`` float32 (archsearch's layout) -> ``(n, F, T')`` float64 (aeon's), with
    trailing zeros up to ``length`` (default: ``max(T, 9)``), as the padding already in X."""
    X = np.asarray(X, dtype=np.float64).transpose(0, 2, 1)
    target = max(X.shape[2], MIN_LENGTH) if length is None else length
    if X.shape[2] < target:
        X = np.pad(X, ((0, 0), (0, 0), (0, target - X.shape[2])))
    elif X.shape[2] > target:
        X = X[:, :, :target]
    return np.ascontiguousarray(X)


class FloorModel(BaseEstimator):
    """The floor's estimator: ``method`` says which model it is for ``task``.

    - classification, regression: MiniRocket (aeon) -> StandardScaler(with_mean=False) ->
      RidgeClassifierCV / RidgeCV, as aeon's MiniRocket classifier and regressor;
    - forecasting: the lookback window itself (aeon's Tabularizer) -> StandardScaler -> RidgeCV,
      a linear autoregression. MiniRocket's kernels sum to zero, so its features cannot see a
      window's level, which is what a forecast most depends on: on Mauna Loa CO2 (a trend) a
      MiniRocket ridge scored a test MSE of 4.1 training variances, the linear one 0.003.

    ``fit(X, y)`` and ``predict(X)`` take archsearch's ``(n, T, F)`` layout: class indices
    (classification), ``(n,)`` targets (regression) or ``(n, H*C)`` targets (forecasting).
    """

    def __init__(self, task: str = TaskKind.CLASSIFICATION.value, n_kernels: int = 10_000,
                 seed: int = 0) -> None:
        self.task = task
        self.n_kernels = n_kernels
        self.seed = seed

    @property
    def method(self) -> str:
        return "lags+ridge" if TaskKind(self.task) is TaskKind.FORECAST else "minirocket+ridge"

    def fit(self, X: np.ndarray, y: np.ndarray) -> FloorModel:
        from aeon.transformations.collection import Tabularizer
        from aeon.transformations.collection.convolution_based import MiniRocket

        task = TaskKind(self.task)
        classification = task is TaskKind.CLASSIFICATION
        ridge = ridge_for(task)
        self.n_channels_ = int(X.shape[2])
        if task is TaskKind.FORECAST:
            self.length_ = int(X.shape[1])
            features: BaseEstimator = Tabularizer()
        else:
            self.length_ = max(int(X.shape[1]), MIN_LENGTH)
            features = MiniRocket(n_kernels=self.n_kernels, n_jobs=1, random_state=self.seed)
        self.pipeline_: Pipeline = make_pipeline(features, StandardScaler(with_mean=False),
                                                 ridge)
        target = np.asarray(y, dtype=np.int64 if classification else np.float64)
        # Step by step, not Pipeline.fit: aeon's transformers refuse the 2-d targets of
        # forecasting (and need no target: MiniRocket is unsupervised).
        values = to_aeon(X, self.length_)
        for step in self.pipeline_[:-1]:
            values = step.fit_transform(values)
        self.pipeline_[-1].fit(values, target)
        return self

    def predict(self, X: np.ndarray) -> np.ndarray:
        """Predictions in the order of ``X`` (transformed in chunks: MiniRocket's features take
        80 kB a series)."""
        parts = [self.pipeline_.predict(to_aeon(X[i:i + PREDICT_CHUNK], self.length_))
                 for i in range(0, len(X), PREDICT_CHUNK)]
        return np.concatenate(parts) if parts else np.empty((0,))
