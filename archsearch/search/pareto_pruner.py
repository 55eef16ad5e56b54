"""Pruning for multi-objective (quality vs cost) searches.

Optuna's pruners do not run on multi-objective studies (``Trial.report`` raises there), and a
plain median rule would stop exactly the cheap, mediocre trials that belong on a quality/cost
Pareto front. Costs are measured before training, so a trial can be judged against the trials
that cost no more than it does: it is stopped at a rung only when at least ``min_peers`` such
trials reached that rung and it scores worse than their median there. A trial below the median
of the cheaper trials at equal training is dominated (worse and dearer) by at least half of them;
the cheapest trial of a search is never pruned, whatever its quality.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field


@dataclass
class ParetoMedianPruner:
    """Median rule among the trials that cost no more; scores are to be maximised."""

    min_peers: int = 3
    warmup_rungs: int = 1  # never prune at rungs up to this one
    costs: dict[int, tuple[float, ...]] = field(default_factory=dict)
    curves: dict[int, dict[int, float]] = field(default_factory=dict)

    def note_cost(self, number: int, costs: tuple[float, ...]) -> None:
        self.costs[number] = costs

    def report(self, number: int, rung: int, score: float) -> bool:
        """Record ``score`` (higher is better) at ``rung``; True when the trial should stop."""
        self.curves.setdefault(number, {})[rung] = score
        own = self.costs.get(number)
        if rung <= self.warmup_rungs or own is None:
            return False
        peers = [curve[rung] for other, curve in self.curves.items()
                 if other != number and rung in curve and other in self.costs
                 and all(c <= o for c, o in zip(self.costs[other], own, strict=True))]
        return len(peers) >= self.min_peers and score < statistics.median(peers)
