"""Trial room: build, measure, train and evaluate one configuration.

Knows nothing of Ray or Optuna: the search room hands it a callback that receives each epoch's
report (and may stop the trial by not returning, as Ray Tune does).
"""

from archsearch.trial.runner import (
    Snapshots,
    TrialResult,
    TrialSpec,
    evaluate,
    run_trial,
    snapshot_seconds,
)

__all__ = ["Snapshots", "TrialResult", "TrialSpec", "evaluate", "run_trial", "snapshot_seconds"]
