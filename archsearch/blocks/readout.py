"""The ridge readout of fixed features: MiniRocket's head, shared by the ``rocket`` family (whose
head the trial fits in closed form) and the floor (aeon's MiniRocket classifier and regressor,
built from their parts), so the two fit one readout the same way."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from archsearch.types import TaskKind

if TYPE_CHECKING:
    from sklearn.linear_model import RidgeClassifierCV, RidgeCV

ALPHAS = np.logspace(-3, 3, 10)  # aeon's MiniRocket classifier/regressor default
# With MiniRocket's 10,000 features, ridge's leave-one-out search costs about
# min(n, 10,000)^2 * max(n, 10,000): at 3,000 training series a fit takes seconds on two cores,
# at 10,000 minutes. Larger training splits are subsampled (seeded) to this many series.
MAX_FIT_SERIES = 3000


def ridge_for(task: TaskKind) -> RidgeClassifierCV | RidgeCV:
    """The readout for ``task``: a ridge classifier (classification) or regression whose
    penalty is chosen by efficient leave-one-out cross-validation over ``ALPHAS``."""
    # Imported here: every trial worker imports this module, and scikit-learn (with SciPy) was
    # over a second of each worker's start, for the one family that fits a ridge.
    from sklearn.linear_model import RidgeClassifierCV, RidgeCV

    if task is TaskKind.CLASSIFICATION:
        return RidgeClassifierCV(alphas=ALPHAS)
    return RidgeCV(alphas=ALPHAS)
