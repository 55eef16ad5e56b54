"""Recommend room: rules (priors from the seed guide) combined with measured evidence."""

from archsearch.recommend.combine import Recommendation, facts_for, recommend
from archsearch.recommend.rules import Rule, apply_rules, load_rules

__all__ = ["Recommendation", "Rule", "apply_rules", "facts_for", "load_rules", "recommend"]
