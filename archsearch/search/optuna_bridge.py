"""The Optuna side of a search: one study, asked and told by Ray Tune's callbacks.

Ray's own ``OptunaSearch`` hard-codes ``NopPruner``, so Optuna's pruners never run under Tune.
Here the study is driven with ask/tell: every validation round's score (``TrainConfig.
eval_every`` optimizer steps; every trial of a search shares the step budget) is reported to the
Optuna trial, the study's pruner decides, and :class:`~archsearch.search.ray_backend.tune_parts.
OptunaPrunerScheduler` makes Ray Tune stop the trial.

A pruning rung is a validation round, so trials are compared after equal numbers of
optimizer steps, or with ``rung_seconds`` a mark of training time (rung k: k x rung_seconds of
training), so that families whose steps cost more are compared at equal compute.
Multi-objective studies (quality plus measured costs) are pruned by
:class:`~archsearch.search.pareto_pruner.ParetoMedianPruner`: Optuna's pruners do not run there.
"""

from __future__ import annotations

import math
import time
import warnings
from dataclasses import dataclass

import optuna
import sqlalchemy.exc
from optuna.trial import TrialState

from archsearch.search.pareto_pruner import ParetoMedianPruner
from archsearch.search.sampling import FAMILY_KEY, default_params, params_for, sample_config
from archsearch.space import SearchSpace
from archsearch.types import (
    QUALITY_ONLY,
    ArchConfig,
    CostMeasurement,
    Metric,
    Objectives,
    TrainConfig,
    TrialStatus,
)


def make_pruner(name: str, max_rounds: int | None) -> optuna.pruners.BasePruner:
    if name == "median":
        # No verdict in the first fifth of the budget: warm-up and the highest learning rates
        # make early rounds noisy.
        return optuna.pruners.MedianPruner(n_startup_trials=3,
                                           n_warmup_steps=max(1, (max_rounds or 5) // 5))
    if name == "halving":
        return optuna.pruners.SuccessiveHalvingPruner(min_resource=1, reduction_factor=3)
    if name == "hyperband":
        return optuna.pruners.HyperbandPruner(min_resource=1, max_resource=max_rounds or "auto",
                                              reduction_factor=3)
    if name == "wilcoxon":
        return optuna.pruners.WilcoxonPruner()
    return optuna.pruners.NopPruner()


def make_sampler(name: str, seed: int) -> optuna.samplers.BaseSampler:
    if name == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    if name == "nsga2":
        return optuna.samplers.NSGAIISampler(seed=seed)
    # multivariate + group: models the joint distribution within each family's sub-space.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        return optuna.samplers.TPESampler(seed=seed, multivariate=True, group=True,
                                          n_startup_trials=5)


def open_storage(url: str | None, attempts: int = 3) -> optuna.storages.BaseStorage | None:
    """Optuna's RDB storage at ``url`` (None: in memory). Searches that start together on a new
    database race to create its tables ("table alembic_version already exists"); the loser
    finds them made when it tries again."""
    if url is None:
        return None
    for attempt in range(1, attempts):
        try:
            return optuna.storages.RDBStorage(url)
        except sqlalchemy.exc.DBAPIError:
            time.sleep(0.5 * attempt)
    return optuna.storages.RDBStorage(url)  # the last try raises what it meets


RERUN_OF = "archsearch_rerun_of"  # a requeued trial's user attribute: the number it runs again


@dataclass
class AskedTrial:
    trial: optuna.Trial
    arch: ArchConfig
    train: TrainConfig
    pruned_at: int | None = None
    last_rung: int = 0

    @property
    def rerun_of(self) -> int | None:
        """The unfinished trial whose configuration this one runs again (None: a new one)."""
        return self.trial.user_attrs.get(RERUN_OF)


class OptunaBridge:
    """Owns the study; maps Ray Tune trial ids to Optuna trials."""

    def __init__(self, study: optuna.Study, space: SearchSpace, metric: Metric,
                 objectives: Objectives = QUALITY_ONLY, rung_seconds: float | None = None,
                 pareto_pruner: ParetoMedianPruner | None = None) -> None:
        self.study = study
        self.space = space
        self.metric = metric
        self.objectives = objectives
        self.rung_seconds = rung_seconds
        self.pareto_pruner = pareto_pruner
        self.asked: dict[str, AskedTrial] = {}

    @staticmethod
    def create(space: SearchSpace, metric: Metric, seed: int, sampler: str, pruner: str,
               max_rounds: int, storage: str | None, study_name: str,
               objectives: Objectives = QUALITY_ONLY,
               rung_seconds: float | None = None) -> OptunaBridge:
        optuna.logging.set_verbosity(optuna.logging.WARNING)
        directions = [metric.direction] + ["minimize"] * len(objectives.costs)
        study = optuna.create_study(
            storage=open_storage(storage), study_name=study_name, directions=directions,
            sampler=make_sampler(sampler, seed),
            pruner=make_pruner("none" if objectives.multi else pruner,
                               None if rung_seconds else max_rounds),
            load_if_exists=True,
        )
        pareto = ParetoMedianPruner() if objectives.multi and pruner != "none" else None
        return OptunaBridge(study, space, metric, objectives, rung_seconds, pareto)

    def enqueue_initial_design(self, warm_start: list[dict],
                               family_order: tuple[str, ...] = ()) -> int:
        """On a new study: first the configurations that won on similar past tasks, then one
        trial per remaining family at its default configuration (``default_params``) so none is
        judged on zero draws, the families of
        ``family_order`` first (the instant recommendation's ranking: under a time budget the
        likeliest families are measured before time runs out), the rest by name. Returns how
        many warm-start configurations fit this space."""
        if self.study.trials:
            return 0
        covered, used = set(), 0
        for config in warm_start:
            params = params_for(self.space, config)
            if params is not None:
                self.study.enqueue_trial(params)
                covered.add(params[FAMILY_KEY])
                used += 1
        remaining = set(self.space.families) - covered
        ordered = [f for f in dict.fromkeys(family_order) if f in remaining]
        for family in ordered + sorted(remaining - set(ordered)):
            self.study.enqueue_trial(default_params(self.space, family))
        return used

    def requeue(self, numbers: list[int]) -> None:
        """Run again the configurations of trials a killed driver left unfinished."""
        by_number = {t.number: t for t in self.study.get_trials(deepcopy=False)}
        for number in numbers:
            trial = by_number.get(number)
            if trial is None:
                continue
            if trial.state is TrialState.RUNNING:
                self.study.tell(number, state=TrialState.FAIL)
            self.study.enqueue_trial(trial.params, user_attrs={RERUN_OF: number})

    def ask(self, tune_trial_id: str) -> AskedTrial:
        trial = self.study.ask()
        arch, train = sample_config(trial, self.space)
        asked = AskedTrial(trial, arch, train)
        self.asked[tune_trial_id] = asked
        return asked

    def note_cost(self, tune_trial_id: str, cost: CostMeasurement) -> None:
        """The cost measured on the untrained model, before its first epoch (what the Pareto
        pruner compares trials by)."""
        if self.pareto_pruner is not None:
            self.pareto_pruner.note_cost(self.asked[tune_trial_id].trial.number,
                                         tuple(self.objectives.cost_values(cost)))

    def report(self, tune_trial_id: str, epoch: int, val_score: float,
               elapsed_s: float = 0.0) -> bool:
        """Report validation round ``epoch`` (training time ``elapsed_s`` so far); True when the
        pruner says stop."""
        asked = self.asked[tune_trial_id]
        if not math.isfinite(val_score):
            return False  # a NaN epoch ends the trial as failed, not as pruned
        reached = math.floor(elapsed_s / self.rung_seconds) if self.rung_seconds else epoch
        final = epoch >= asked.train.max_rounds  # nothing left to save: the trial completes
        for rung in range(asked.last_rung + 1, reached + 1):
            asked.last_rung = rung
            if self._prunes(asked, rung, val_score) and not final:
                asked.pruned_at = epoch
                return True
        return False

    def _prunes(self, asked: AskedTrial, rung: int, val_score: float) -> bool:
        if self.objectives.multi:
            return self.pareto_pruner is not None and self.pareto_pruner.report(
                asked.trial.number, rung, self.metric.sign * val_score)
        asked.trial.report(val_score, step=rung)
        return asked.trial.should_prune()

    def tell(self, tune_trial_id: str, status: TrialStatus, val_score: float | None,
             cost: CostMeasurement | None = None) -> None:
        asked = self.asked.pop(tune_trial_id, None)
        if asked is None:
            return
        if asked.pruned_at is not None or status is TrialStatus.PRUNED:
            self.study.tell(asked.trial, state=TrialState.PRUNED)
        elif status is TrialStatus.INFEASIBLE:
            # Zero epochs, no value: TPE ranks such pruned trials below every completed one,
            # so it learns to avoid the region without our inventing a score.
            asked.trial.set_user_attr("infeasible", True)
            self.study.tell(asked.trial, state=TrialState.PRUNED)
        elif status is TrialStatus.COMPLETED and val_score is not None:
            if not self.objectives.multi:
                self.study.tell(asked.trial, val_score)
            elif cost is not None:
                self.study.tell(asked.trial, [val_score, *self.objectives.cost_values(cost)])
            else:  # no measured cost: nothing to place on the front
                self.study.tell(asked.trial, state=TrialState.FAIL)
        else:
            self.study.tell(asked.trial, state=TrialState.FAIL)
