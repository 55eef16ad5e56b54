"""The search-space schema.

A file has three parameter sections and optional rules::

    training:  {lr: {type: float, low: 1e-4, high: 1e-2, log: true}, ...}   # TrainConfig fields
    shared:    {d_model: {type: ordinal, choices: [32, 64]}, ...}            # every family takes
    families:  {lstm: {n_layers: {type: int, low: 1, high: 2}}, ...}        # per family
               # a family may also set a shared parameter its own way: fcn: {pooling: mean}
    rules:     [{id: ..., when: {streaming: true}, fix: {bidirectional: false}, why: ...}]

Parameter types: ``int`` and ``float`` (``low`` and ``high`` both inclusive, optional ``log``;
``step`` for int), ``categorical`` (unordered ``choices``), ``ordinal`` (ordered ``choices``,
sampled by index so the sampler sees the order), ``fixed`` (one ``value``).
"""

from __future__ import annotations

import dataclasses
import itertools
import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from archsearch.errors import SpaceError
from archsearch.hparams import FAMILY_HPARAMS, ModelHParams
from archsearch.types import ArchConfig, Constraints, TaskKind, TrainConfig

PARAM_TYPES = ("int", "float", "categorical", "ordinal", "fixed")
_ALLOWED_KEYS = {
    "int": {"type", "low", "high", "log", "step"},
    "float": {"type", "low", "high", "log"},
    "categorical": {"type", "choices"},
    "ordinal": {"type", "choices"},
    "fixed": {"type", "value"},
}


@dataclass(frozen=True)
class Param:
    name: str
    type: str
    low: float | None = None
    high: float | None = None
    log: bool = False
    step: int = 1
    choices: tuple[Any, ...] = ()
    value: Any = None

    def fixed_to(self, value: Any) -> Param:
        return Param(self.name, "fixed", value=value)


@dataclass(frozen=True)
class SpaceRule:
    """When every ``when`` condition matches (a constraint, or ``task``: the task kind),
    parameters in ``fix`` are pinned to a value."""

    id: str
    when: Mapping[str, Any]
    fix: Mapping[str, Any]
    why: str

    def applies(self, constraints: Constraints, task: TaskKind | None = None) -> bool:
        facts = {**constraints.to_dict(), "task": task.value if task is not None else None}
        return all(facts[key] == value for key, value in self.when.items())


@dataclass(frozen=True)
class SearchSpace:
    name: str
    training: tuple[Param, ...]
    shared: tuple[Param, ...]
    families: Mapping[str, tuple[Param, ...]]
    rules: tuple[SpaceRule, ...] = ()

    def shared_for(self, family: str) -> tuple[Param, ...]:
        """The shared parameters ``family`` takes as they are (those it sets its own way, e.g.
        the convolutional families' ``pooling: mean``, are among its own parameters)."""
        own = {p.name for p in self.families[family]}
        return tuple(p for p in self.shared if p.name not in own)

    def max_rounds(self) -> int:
        """Validation rounds of the largest fixed step budget here (Hyperband's maximum
        resource and the median pruner's warm-up are counted in rounds)."""
        fixed = {p.name: p.value for p in self.training if p.type == "fixed"}
        defaults = TrainConfig()
        return TrainConfig(max_steps=int(fixed.get("max_steps", defaults.max_steps)),
                           eval_every=int(fixed.get("eval_every", defaults.eval_every))
                           ).max_rounds

    def smallest(self, family: str) -> Iterator[tuple[ArchConfig, TrainConfig]]:
        """``family``'s smallest configurations: every int and float at its low end, every
        ordinal at its smallest choice, and one configuration per combination of categorical
        choices (which of those is cheapest depends on the family: an attention window, a
        bidirectional layer). The cost estimates before a search look at these."""
        params = (*self.training, *self.shared_for(family), *self.families[family])
        lowest = {p.name: _lowest(p) for p in params if p.type != "categorical"}
        categorical = [p for p in params if p.type == "categorical"]
        train_keys = {p.name for p in self.training}
        for combination in itertools.product(*(p.choices for p in categorical)):
            values = {**lowest, **{p.name: v for p, v in zip(categorical, combination,
                                                               strict=True)}}
            yield (ArchConfig(family, {k: v for k, v in values.items() if k not in train_keys}),
                   TrainConfig(**{k: v for k, v in values.items() if k in train_keys}))

    def under(self, constraints: Constraints, task: TaskKind | None = None) -> SearchSpace:
        """This space with every rule that applies to ``constraints`` and ``task`` pinned."""
        pins: dict[str, Any] = {}
        for rule in self.rules:
            if rule.applies(constraints, task):
                pins.update(rule.fix)

        def pin(params: tuple[Param, ...]) -> tuple[Param, ...]:
            return tuple(p.fixed_to(pins[p.name]) if p.name in pins else p for p in params)

        return dataclasses.replace(
            self,
            training=pin(self.training),
            shared=pin(self.shared),
            families={f: pin(ps) for f, ps in self.families.items()},
        )


def _lowest(param: Param) -> Any:
    """A non-categorical parameter's smallest value (an ordinal's choices are ordered, but
    their order need not be ascending)."""
    if param.type == "fixed":
        return param.value
    if param.type == "ordinal":
        return min(param.choices)
    return int(param.low) if param.type == "int" else float(param.low)


def default_space_path() -> Path:
    """``search_spaces/default.yaml`` at the project root (beside the package)."""
    return Path(__file__).resolve().parents[2] / "search_spaces" / "default.yaml"


def load_space(path: Path | str | None = None) -> SearchSpace:
    """Load and validate a space file; every error names the file and the key."""
    path = Path(path) if path is not None else default_space_path()
    if not path.is_file():
        raise SpaceError(f"search space file '{path}' does not exist.")
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise SpaceError(f"{path}: not valid YAML ({str(exc).splitlines()[0]}).") from None
    return _parse(raw, path)


def _fail(path: Path, key: str, problem: str) -> SpaceError:
    return SpaceError(f"{path}: {key}: {problem}")


def _parse(raw: Any, path: Path) -> SearchSpace:
    if not isinstance(raw, dict):
        raise _fail(path, "(top level)", "a mapping with 'families' (and optionally 'training', "
                    "'shared', 'rules') is required.")
    unknown = set(raw) - {"version", "training", "shared", "families", "rules"}
    if unknown:
        raise _fail(path, ", ".join(sorted(map(str, unknown))), "unknown top-level key(s); "
                    "allowed: version, training, shared, families, rules.")
    training_fields = {f.name for f in dataclasses.fields(TrainConfig)}
    shared_fields = {f.name for f in dataclasses.fields(ModelHParams)}
    training = _section(raw.get("training") or {}, "training", training_fields, path)
    shared = _section(raw.get("shared") or {}, "shared", shared_fields, path)
    families_raw = raw.get("families")
    if not isinstance(families_raw, dict) or not families_raw:
        raise _fail(path, "families", "a non-empty mapping of family name -> parameters is "
                    "required.")
    families = {}
    for family, params in families_raw.items():
        if family not in FAMILY_HPARAMS:
            raise _fail(path, f"families.{family}", "unknown family; known families: "
                        f"{', '.join(sorted(FAMILY_HPARAMS))}.")
        own = {f.name for f in dataclasses.fields(FAMILY_HPARAMS[family])} | shared_fields
        families[family] = _section(params or {}, f"families.{family}", own, path)
    all_names = set().union(training_fields, shared_fields,
                            *({p.name for p in ps} for ps in families.values()))
    rules = tuple(_rule(i, r, all_names, path) for i, r in enumerate(raw.get("rules") or []))
    return SearchSpace(path.stem, training, shared, families, rules)


def _section(raw: Any, where: str, allowed: set[str], path: Path) -> tuple[Param, ...]:
    if not isinstance(raw, dict):
        raise _fail(path, where, "must be a mapping of parameter name -> definition.")
    params = []
    for name, definition in raw.items():
        if name not in allowed:
            raise _fail(path, f"{where}.{name}", "unknown parameter; allowed here: "
                        f"{', '.join(sorted(allowed))}.")
        params.append(_param(str(name), definition, f"{where}.{name}", path))
    return tuple(params)


def _param(name: str, raw: Any, key: str, path: Path) -> Param:
    if not isinstance(raw, dict):
        # A bare value is shorthand for a fixed parameter.
        return Param(name, "fixed", value=raw)
    kind = raw.get("type")
    if kind not in PARAM_TYPES:
        raise _fail(path, f"{key}.type", f"must be one of {', '.join(PARAM_TYPES)}, not "
                    f"{kind!r}.")
    extra = set(raw) - _ALLOWED_KEYS[kind]
    if extra:
        raise _fail(path, key, f"{', '.join(sorted(extra))} not allowed for type {kind}; "
                    f"allowed: {', '.join(sorted(_ALLOWED_KEYS[kind]))}.")
    if kind == "fixed":
        if "value" not in raw:
            raise _fail(path, key, "a fixed parameter needs 'value'.")
        return Param(name, kind, value=raw["value"])
    if kind in ("categorical", "ordinal"):
        choices = raw.get("choices")
        if not isinstance(choices, list) or not choices:
            raise _fail(path, f"{key}.choices", "must be a non-empty list.")
        if len(set(map(repr, choices))) != len(choices):
            raise _fail(path, f"{key}.choices", "has duplicates.")
        return Param(name, kind, choices=tuple(choices))
    low, high = raw.get("low"), raw.get("high")
    number = int if kind == "int" else (int, float)
    for bound, value in (("low", low), ("high", high)):
        if isinstance(value, bool) or not isinstance(value, number) or not math.isfinite(value):
            raise _fail(path, f"{key}.{bound}", f"must be a finite {kind}, not {value!r}.")
    if low > high:
        raise _fail(path, key, f"low ({low}) must not exceed high ({high}); both are inclusive.")
    log = raw.get("log", False)
    if not isinstance(log, bool):
        raise _fail(path, f"{key}.log", "must be true or false.")
    if log and low <= 0:
        raise _fail(path, f"{key}.low", "must be > 0 on a log scale.")
    step = raw.get("step", 1)
    if kind == "int" and (not isinstance(step, int) or step < 1 or (log and step != 1)):
        raise _fail(path, f"{key}.step", "must be a positive integer (and 1 with log).")
    return Param(name, kind, low=low, high=high, log=log, step=step)


def _rule(index: int, raw: Any, names: set[str], path: Path) -> SpaceRule:
    key = f"rules[{index}]"
    if not isinstance(raw, dict) or set(raw) - {"id", "when", "fix", "why"}:
        raise _fail(path, key, "a rule is a mapping with id, when, fix and why.")
    when, fix = raw.get("when"), raw.get("fix")
    condition_names = {f.name for f in dataclasses.fields(Constraints)} | {"task"}
    if not isinstance(when, dict) or not when or set(when) - condition_names:
        raise _fail(path, f"{key}.when", "must map constraint names or task "
                    f"({', '.join(sorted(condition_names))}) to values.")
    if "task" in when and when["task"] not in {kind.value for kind in TaskKind}:
        raise _fail(path, f"{key}.when.task", "must be one of "
                    f"{', '.join(kind.value for kind in TaskKind)}.")
    if not isinstance(fix, dict) or not fix or set(fix) - names:
        raise _fail(path, f"{key}.fix", "must map parameter names of this space to values.")
    return SpaceRule(str(raw.get("id", key)), when, fix, str(raw.get("why", "")))
