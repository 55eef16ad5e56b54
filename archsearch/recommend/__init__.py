"""Recommend room: rule priors (the seed guide), a past-task ranker (scikit-learn) and this
task's measured trials, combined into one ranked recommendation with its rationale."""

from archsearch.recommend.advise import Advice, advise, evidence_for_task, instant_for_task
from archsearch.recommend.combine import FamilyRank, Recommendation, facts_for, recommend
from archsearch.recommend.pareto import pareto_front
from archsearch.recommend.portfolio import Portfolio, greedy_portfolio, zero_shot_portfolio
from archsearch.recommend.ranker import (
    FamilyScoreRegressor,
    PastEvidence,
    PastTask,
    past_evidence,
    stored_tasks,
    training_table,
)
from archsearch.recommend.rules import Rule, apply_rules, load_rules
from archsearch.recommend.similarity import meta_vector, pairwise_distances, task_distance

__all__ = ["Advice", "FamilyRank", "FamilyScoreRegressor", "PastEvidence", "PastTask",
           "Portfolio", "Recommendation", "Rule", "advise", "apply_rules", "evidence_for_task",
           "facts_for", "greedy_portfolio", "load_rules", "meta_vector", "pairwise_distances",
           "pareto_front", "past_evidence", "instant_for_task", "recommend", "stored_tasks",
           "task_distance", "training_table", "zero_shot_portfolio"]
