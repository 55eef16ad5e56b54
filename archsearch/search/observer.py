"""What a search tells the outside world as it goes (the caller stores and prints it)."""

from __future__ import annotations

from typing import Protocol

import torch

from archsearch.trial.crossval import FoldFit
from archsearch.types import ArchConfig, CostMeasurement, EpochReport, TrainConfig, TrialOutcome

MODEL_FILE = "model.pt"  # a completed trial's weights, in the checkpoint_dir of on_trial_end
SNAPSHOT_FILE = "snapshot.pt"  # a running trial's training state (trial.Snapshots), likewise
# The error of a trial that a stop of the search (a cancel, should its Ctrl-C be lost) ended
# before it finished: cut short, as Ctrl-C cuts trials short, so a resume runs it on.
SEARCH_STOPPED = "the search was stopped before this trial finished"


class SearchObserver(Protocol):
    def on_note(self, message: str) -> None: ...

    def on_ray_ready(self, dashboard_url: str | None, cluster_resources: dict) -> None: ...

    def on_trial_start(self, number: int, arch: ArchConfig, train: TrainConfig) -> None: ...

    def on_trial_cost(self, number: int, cost: CostMeasurement,
                      node_id: str | None) -> None: ...

    def on_epoch(self, number: int, report: EpochReport) -> None: ...

    def on_trial_pruned(self, number: int, epoch: int) -> None: ...

    def on_trial_retry(self, number: int, reason: str) -> None: ...

    def on_trial_end(self, number: int, outcome: TrialOutcome,
                     checkpoint_dir: str | None) -> None: ...

    def on_trial_snapshot(self, number: int, snapshot_file: str) -> None:
        """A running trial saved its training state (kept, so that a stop costs it only the
        training since)."""

    def adopt_snapshot(self, number: int, earlier: int) -> str | None:
        """Trial ``number`` runs again the configuration of ``earlier``, which a stop cut
        short: the file of the latest training state ``earlier`` saved, now ``number``'s
        (None: it saved none)."""

    def on_cross_validation(self, number: int, mean: float, std: float,
                            fold_states: list[dict[str, torch.Tensor]]) -> None: ...

    def on_fold(self, number: int, k: int, fold: int, fit: FoldFit) -> None:
        """One fold of a finalist's k-fold cross-validation ended (kept for a resume when it
        completed)."""

    def kept_folds(self, number: int, k: int) -> dict[int, FoldFit]:
        """The folds of a finalist's k-fold cross-validation that an earlier sitting completed
        (empty when none)."""
