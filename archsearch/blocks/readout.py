"""The ridge readout of fixed features: MiniRocket's head, shared by the ``rocket`` family (whose
head the trial fits in closed form) and the floor (aeon's MiniRocket classifier and regressor,
built from their parts), so the two fit one readout the same way."""

from __future__ import annotations

import numpy as np
from sklearn.linear_model import RidgeClassifierCV, RidgeCV

from archsearch.types import TaskKind

ALPHAS = np.logspace(-3, 3, 10)  # aeon's MiniRocket classifier/regressor default
# With MiniRocket's 10,000 features, ridge's leave-one-out search costs about
# min(n, 10,000)^2 * max(n, 10,000): at 3,000 training series a fit takes seconds on two cores,
# at 10,000 minutes. Larger training splits are subsampled (seeded) to this many series.
MAX_FIT_SERIES = 3000


def ridge_for(task: TaskKind) -> RidgeClassifierCV | RidgeCV:
    """The readout for ``task``: a ridge classifier (classification) or regression whose
    penalty is chosen by efficient leave-one-out cross-validation over ``ALPHAS``."""
    if task is TaskKind.CLASSIFICATION:
        return RidgeClassifierCV(alphas=ALPHAS)
    return RidgeCV(alphas=ALPHAS)
