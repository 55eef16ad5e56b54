"""Turn a :class:`SearchSpace` into Optuna suggestions (define-by-run, conditional per family).

Family-specific parameters are named ``family.param`` so that TPE's ``group=True`` sees each
family's sub-space as its own group.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import optuna

from archsearch.hparams import FAMILY_HPARAMS, ModelHParams
from archsearch.space import Param, SearchSpace
from archsearch.types import ArchConfig, TrainConfig

FAMILY_KEY = "family"


def _defaults(cls: type) -> dict[str, Any]:
    """A dataclass's field defaults (fields without one left out)."""
    return {f.name: f.default for f in dataclasses.fields(cls)
            if f.default is not dataclasses.MISSING}


# A stored config from before a shared parameter joined the space (e.g. ``quantize``) was built
# with that parameter's default, so it still warm-starts a search over the newer space.
SHARED_DEFAULTS = _defaults(ModelHParams)


def _sections(space: SearchSpace, family: str, train: dict[str, Any], shared: dict[str, Any],
              own: dict[str, Any]) -> list[tuple[tuple[Param, ...], dict[str, Any], str]]:
    """A family's parameters in three sections, each with values and its Optuna name prefix."""
    return [(space.training, train, ""), (space.shared_for(family), shared, ""),
            (space.families[family], own, f"{family}.")]


def suggest(trial: optuna.Trial, param: Param, name: str) -> Any:
    if param.type == "fixed":
        return param.value
    if param.type == "int":
        return trial.suggest_int(name, int(param.low), int(param.high), step=param.step,
                                 log=param.log)
    if param.type == "float":
        return trial.suggest_float(name, float(param.low), float(param.high), log=param.log)
    if param.type == "ordinal":
        # Sampled by index so the sampler sees the order (16 < 32 < 64), not unrelated labels.
        return param.choices[trial.suggest_int(f"{name}#index", 0, len(param.choices) - 1)]
    return trial.suggest_categorical(name, list(param.choices))


def sample_config(trial: optuna.Trial, space: SearchSpace) -> tuple[ArchConfig, TrainConfig]:
    family = trial.suggest_categorical(FAMILY_KEY, sorted(space.families))
    train = {p.name: suggest(trial, p, p.name) for p in space.training}
    shared = {p.name: suggest(trial, p, p.name) for p in space.shared_for(family)}
    own = {p.name: suggest(trial, p, f"{family}.{p.name}") for p in space.families[family]}
    return ArchConfig(family, {**shared, **own}), TrainConfig(**train)


_NO_DEFAULT = object()  # a parameter its dataclass leaves without a default


def default_params(space: SearchSpace, family: str) -> dict[str, Any]:
    """Optuna params of ``family``'s default configuration in ``space``: each parameter at its
    dataclass default (TrainConfig, ModelHParams, the family's hyperparameters) where the
    space allows it, else at the middle of its range (the geometric middle on a log scale; the
    middle choice of an ordinal, the first of a categorical). The initial design measures every
    family at this configuration: a family is compared at its standard size, not at one random
    draw (a 3-layer mixture of experts, or a learning rate at the edge of its range)."""
    params: dict[str, Any] = {FAMILY_KEY: family}
    for section, defaults, prefix in _sections(space, family, _defaults(TrainConfig),
                                               SHARED_DEFAULTS,
                                               _defaults(FAMILY_HPARAMS[family])):
        for param in section:
            if param.type == "fixed":
                continue
            name = prefix + param.name
            found = _param_value(param, name, defaults.get(param.name, _NO_DEFAULT))
            params.update(found if found is not None else _param_value(param, name,
                                                                       _middle(param)))
    return params


def _middle(param: Param) -> Any:
    if param.type in ("int", "float"):
        low, high = float(param.low), float(param.high)
        middle = math.sqrt(low * high) if param.log else (low + high) / 2
        return round(middle) if param.type == "int" else middle
    if param.type == "ordinal":
        return param.choices[len(param.choices) // 2]
    return param.choices[0]


def _param_value(param: Param, name: str, value: Any) -> dict[str, Any] | None:
    """The Optuna params that make ``suggest`` return ``value``; None when outside the space."""
    if param.type == "fixed":
        return {} if value == param.value else None
    if param.type in ("int", "float"):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return None
        return {name: value} if param.low <= value <= param.high else None
    if value not in param.choices:
        return None
    if param.type == "ordinal":
        return {f"{name}#index": param.choices.index(value)}
    return {name: value}


def params_for(space: SearchSpace, config: dict[str, Any]) -> dict[str, Any] | None:
    """Optuna params reproducing a stored trial config (``family``, ``model``, ``train``), or
    None when the config does not fit this space (another space, other ranges)."""
    family = config.get("family")
    if family not in space.families:
        return None
    params: dict[str, Any] = {FAMILY_KEY: family}
    model = config.get("model", {})
    for section, values, prefix in _sections(space, family, config.get("train", {}),
                                             {**SHARED_DEFAULTS, **model}, model):
        for param in section:
            if param.name not in values:
                return None
            found = _param_value(param, prefix + param.name, values[param.name])
            if found is None:
                return None
            params.update(found)
    return params
