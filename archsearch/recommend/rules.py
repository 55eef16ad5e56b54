"""Rules of thumb as data: each has an id, a condition on task facts, an effect and a sentence."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from archsearch.errors import ArchsearchError

RULES_FILE = Path(__file__).with_name("rules.yaml")
_COMPARATORS = {
    "lt": lambda a, b: a < b,
    "le": lambda a, b: a <= b,
    "gt": lambda a, b: a > b,
    "ge": lambda a, b: a >= b,
    "eq": lambda a, b: a == b,
}


@dataclass(frozen=True)
class Rule:
    id: str
    when: Mapping[str, Any]
    says: str
    prior: Mapping[str, float] = field(default_factory=dict)
    exclude: tuple[str, ...] = ()

    def fires(self, facts: Mapping[str, Any]) -> bool:
        return all(_holds(facts.get(key), condition) for key, condition in self.when.items())


def _holds(value: Any, condition: Any) -> bool:
    if not isinstance(condition, dict):
        return value == condition
    if value is None:
        return False
    return all(_COMPARATORS[op](value, bound) for op, bound in condition.items())


def load_rules(path: Path = RULES_FILE) -> list[Rule]:
    raw = yaml.safe_load(path.read_text(encoding="utf-8")) or []
    rules = []
    for index, item in enumerate(raw):
        where = f"{path}: rule {index}"
        if not isinstance(item, dict) or not {"id", "when", "says"} <= set(item):
            raise ArchsearchError(f"{where}: a rule needs id, when and says.")
        for condition in item["when"].values():
            if isinstance(condition, dict) and set(condition) - set(_COMPARATORS):
                raise ArchsearchError(f"{where} ({item['id']}): comparators are "
                                      f"{', '.join(_COMPARATORS)}.")
        rules.append(Rule(str(item["id"]), dict(item["when"]), str(item["says"]),
                          {k: float(v) for k, v in (item.get("prior") or {}).items()},
                          tuple(item.get("exclude") or ())))
    return rules


@dataclass(frozen=True)
class Priors:
    weights: dict[str, float]
    excluded: dict[str, str]  # family -> rule id that excluded it
    fired: list[Rule]


def apply_rules(rules: list[Rule], facts: Mapping[str, Any], families: list[str]) -> Priors:
    weights = {family: 1.0 for family in families}
    excluded: dict[str, str] = {}
    fired = [rule for rule in rules if rule.fires(facts)]
    for rule in fired:
        for family, factor in rule.prior.items():
            if family in weights:
                weights[family] *= factor
        for family in rule.exclude:
            if family in weights:
                excluded.setdefault(family, rule.id)
    return Priors(weights, excluded, fired)
