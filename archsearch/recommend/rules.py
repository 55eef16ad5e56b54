"""Rules of thumb as data: each has an id, a condition on task facts, an effect and a sentence.

A rule's effect is a prior weight per family (a soft rule of thumb, outweighed by measurement)
or an exclusion (a hard validity rule: the family can never be recommended when it fires).
"""

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

    @property
    def hard(self) -> bool:
        """A hard validity rule: it excludes families instead of weighting them."""
        return bool(self.exclude)

    def fires(self, facts: Mapping[str, Any]) -> bool:
        return all(_holds(facts.get(key), condition) for key, condition in self.when.items())


def _holds(value: Any, condition: Any) -> bool:
    if not isinstance(condition, dict):
        return value == condition
    if value is None:
        return False
    return all(_COMPARATORS[op](value, bound) for op, bound in condition.items())


_RULE_KEYS = {"id", "when", "says", "prior", "exclude"}


def load_rules(path: Path = RULES_FILE) -> list[Rule]:
    """Read and check a rules file; every problem names the file, the rule and the key."""
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8")) or []
    except (OSError, yaml.YAMLError) as exc:
        raise ArchsearchError(f"{path}: cannot read the rules ({str(exc).splitlines()[0]}).") \
            from None
    if not isinstance(raw, list):
        raise ArchsearchError(f"{path}: the rules file must be a list of rules.")
    rules: list[Rule] = []
    for index, item in enumerate(raw):
        where = f"{path}: rule {index}"
        if not isinstance(item, dict) or not {"id", "when", "says"} <= set(item):
            raise ArchsearchError(f"{where}: a rule needs id, when and says.")
        where = f"{where} ({item['id']})"
        unknown = sorted(set(item) - _RULE_KEYS)
        if unknown:
            raise ArchsearchError(f"{where}: unknown key(s) {', '.join(unknown)}; a rule takes "
                                  f"{', '.join(sorted(_RULE_KEYS))}.")
        if not isinstance(item["when"], dict) or not item["when"]:
            raise ArchsearchError(f"{where}: when must be a non-empty mapping of fact: condition.")
        for condition in item["when"].values():
            if isinstance(condition, dict) and set(condition) - set(_COMPARATORS):
                raise ArchsearchError(f"{where}: comparators are {', '.join(_COMPARATORS)}.")
        prior = item.get("prior") or {}
        if not isinstance(prior, dict) or not all(
                isinstance(v, (int, float)) and not isinstance(v, bool) and v > 0
                for v in prior.values()):
            raise ArchsearchError(f"{where}: prior must map families to positive weights.")
        exclude = item.get("exclude") or []
        if not isinstance(exclude, list) or not all(isinstance(f, str) for f in exclude):
            raise ArchsearchError(f"{where}: exclude must be a list of family names.")
        if not prior and not exclude:
            raise ArchsearchError(f"{where}: a rule needs an effect: prior or exclude.")
        if any(rule.id == str(item["id"]) for rule in rules):
            raise ArchsearchError(f"{where}: the id is used by an earlier rule.")
        rules.append(Rule(str(item["id"]), dict(item["when"]), str(item["says"]),
                          {k: float(v) for k, v in prior.items()}, tuple(exclude)))
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
