"""Zero-shot portfolio: which families a search measures first, chosen from past tasks.

As auto-sklearn 2.0 and TabRepo do with their offline performance matrices, the portfolio is
built greedily: starting empty, it repeatedly adds the family that most lowers the
*weighted mean regret of the best family chosen so far* over the past tasks (the shipped
knowledge base's corpus tasks and the user's completed searches), and stops when no family
lowers it by at least :data:`MIN_GAIN`; the prior's ranking (rules and ranker) orders the rest.

- Regret of a family on a past task: ``1 - s``, ``s`` its normalised score there
  (:func:`~archsearch.recommend.ranker.normalised_scores` over the candidate families: 0 = the
  best family, 1 = the worst); a family the task did not measure counts as the worst.
- A task's weight is its similarity to the user's task, ``exp(-d / SIMILARITY_SCALE)`` by the
  recommender's one task distance ``d`` (:mod:`~archsearch.recommend.similarity`).
- The seed guide's rules: their hard validity rules (streaming, memory) exclude families from
  the portfolio; their prior weights break ties (then the fallback order does).
- The similarity gate: when no past task lies within
  :data:`~archsearch.recommend.similarity.MAX_NEIGHBOUR_DISTANCE` of the user's task, the
  portfolio is empty and the order is the fallback (the prior's ranking).

When it is used, the portfolio also leads the instant pick: its first family is what
``archsearch recommend`` names (:func:`archsearch.recommend.combine.instant_recommendation`).
The search room receives only :attr:`Portfolio.order`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from archsearch.recommend.ranker import TIED_WITH_BEST, PastTask, training_table
from archsearch.recommend.similarity import MAX_NEIGHBOUR_DISTANCE, meta_vector, pairwise_distances

if TYPE_CHECKING:  # evidence.py records the portfolio that chose a pick
    from archsearch.recommend.evidence import FamilyRank

# In decades of sequence length: a past task a tenfold length away (and alike otherwise)
# weighs exp(-2) ≈ 0.14 of an identical one, one at the similarity gate exp(-3) ≈ 0.05.
SIMILARITY_SCALE = 0.5
# Weighted mean regrets closer than this are a tie (the rules' prior decides).
TIE = 1e-9
# A family joins the portfolio only when it lowers the weighted mean regret by this much: a
# smaller gain comes from far tasks' tiny weights, and the prior's ranking (which predicts this
# task's scores from its nearest tasks) orders such families better than hedging for them.
MIN_GAIN = 0.01


@dataclass(frozen=True)
class Portfolio:
    """The initial design's order, and why."""

    families: tuple[str, ...]  # the greedy portfolio, in the order chosen (empty: fallback)
    order: tuple[str, ...]  # the portfolio, then the fallback order of the other families
    regret: tuple[float, ...]  # weighted mean regret after each family of the portfolio
    neighbours: tuple[tuple[str, float], ...]  # the nearest past tasks (name, distance)
    n_tasks: int  # past tasks that measured two or more candidate families
    fallback: tuple[str, ...] = ()  # the prior's order (rules and ranker) alone
    # The similarity-weighted share of past tasks on which the portfolio's first family was a
    # best family (regret 0; ties count for each tied family): the instant pick's raw confidence.
    win_share: float | None = None

    @property
    def used(self) -> bool:
        return bool(self.families)

    def to_dict(self) -> dict[str, Any]:
        return {"used": self.used, "families": list(self.families), "order": list(self.order),
                "regret": [round(r, 4) for r in self.regret], "n_tasks": self.n_tasks,
                "win_share": None if self.win_share is None else round(self.win_share, 4),
                "neighbours": [{"task": name, "distance": round(distance, 3)}
                               for name, distance in self.neighbours]}


def greedy_portfolio(regret: Any, weights: Any, families: Sequence[str],
                     prior: Mapping[str, float]) -> tuple[list[str], list[float]]:
    """The greedy portfolio over a regret matrix (see the module docstring).

    ``regret`` is (n_tasks, n_families), columns in the order of ``families``, NaN where a task
    did not measure a family (counted as regret 1); ``weights`` (n_tasks,) are non-negative.
    Ties go to the higher ``prior`` weight, then to the earlier family in ``families``; it
    stops when the best addition gains less than :data:`MIN_GAIN`. Returns the families chosen,
    in order, and the weighted mean regret after each.
    """
    R = np.nan_to_num(np.asarray(regret, dtype=np.float64), nan=1.0)
    w = np.asarray(weights, dtype=np.float64)
    if R.shape != (len(w), len(families)):
        raise ValueError(f"regret must be (n_tasks, n_families) = ({len(w)}, {len(families)}),"
                         f" got {R.shape}")
    if not len(w) or w.sum() <= 0:
        return [], []
    best_so_far = np.ones(len(w))  # an empty portfolio: every task at the worst regret
    current = 1.0
    chosen: list[str] = []
    trace: list[float] = []
    left = list(range(len(families)))
    while left:
        means = {j: float(w @ np.minimum(best_so_far, R[:, j]) / w.sum()) for j in left}
        lowest = min(means.values())
        tied = [j for j in left if means[j] - lowest <= TIE]
        pick = max(tied, key=lambda j: (prior.get(families[j], 1.0), -j))
        if current - means[pick] < MIN_GAIN:
            break  # no family lowers the regret enough any more
        chosen.append(families[pick])
        trace.append(means[pick])
        current = means[pick]
        best_so_far = np.minimum(best_so_far, R[:, pick])
        left.remove(pick)
    return chosen, trace


def zero_shot_portfolio(past: Sequence[PastTask], meta: Mapping[str, Any], task_kind: str,
                        ranking: Sequence[FamilyRank], n_neighbours: int = 3) -> Portfolio:
    """The portfolio for a task described by ``meta`` from the ``past`` tasks (see the module
    docstring). ``ranking`` is the prior's ranking of the task (rules and ranker, no trials):
    its families' rule priors and exclusions, and the fallback order."""
    fallback = tuple(r.family for r in ranking)
    prior = {r.family: r.prior for r in ranking}
    candidates = [r.family for r in ranking if r.excluded_by is None]
    table = training_table(past, candidates)
    if not table.tasks:
        return Portfolio((), fallback, (), (), 0, fallback)
    distances = pairwise_distances(meta_vector(meta, task_kind)[None, :], table.X)[0]
    nearest = np.argsort(distances, kind="stable")[:n_neighbours]
    neighbours = tuple((table.tasks[i].name, float(distances[i])) for i in nearest)
    if distances.min() > MAX_NEIGHBOUR_DISTANCE:
        return Portfolio((), fallback, (), neighbours, len(table.tasks), fallback)
    weights = np.exp(-distances / SIMILARITY_SCALE)
    # training_table sorts the families by name; the columns follow the fallback order, so
    # that it breaks the ties the rules' prior leaves.
    columns = [table.families.index(f) for f in candidates]
    chosen, trace = greedy_portfolio(1.0 - table.Y[:, columns], weights, candidates, prior)
    order = tuple(chosen) + tuple(f for f in fallback if f not in chosen)
    share = None
    if chosen:
        first = np.nan_to_num(table.Y[:, columns[candidates.index(chosen[0])]], nan=0.0)
        share = float(weights @ (first >= 1.0 - TIED_WITH_BEST) / weights.sum())
    return Portfolio(tuple(chosen), order, tuple(trace), neighbours, len(table.tasks), fallback,
                     share)
