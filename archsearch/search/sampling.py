"""Turn a :class:`SearchSpace` into Optuna suggestions (define-by-run, conditional per family).

Family-specific parameters are named ``family.param`` so that TPE's ``group=True`` sees each
family's sub-space as its own group.
"""

from __future__ import annotations

from typing import Any

import optuna

from archsearch.space import Param, SearchSpace
from archsearch.types import ArchConfig, TrainConfig

FAMILY_KEY = "family"


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
    shared = {p.name: suggest(trial, p, p.name) for p in space.shared}
    own = {p.name: suggest(trial, p, f"{family}.{p.name}") for p in space.families[family]}
    return ArchConfig(family, {**shared, **own}), TrainConfig(**train)
