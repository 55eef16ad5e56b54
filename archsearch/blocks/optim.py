"""Per-parameter optimiser hints and the parameter groups built from them.

A parameter can carry hints, as in the S4 reference code (``param._optim``): ``weight_decay``
(absolute, replaces the trainer's) and ``lr_scale`` (multiplies the trainer's learning rate).
:func:`set_optim_hints` also records them on the owning module, because ``copy.deepcopy`` and
pickling of an ``nn.Parameter`` drop attributes set on it, while module attributes survive.
"""

from __future__ import annotations

from typing import Any

from torch import nn

HINT_KEYS = ("weight_decay", "lr_scale")


def set_optim_hints(module: nn.Module, name: str, **hints: float) -> None:
    """Attach ``hints`` to ``module``'s own parameter ``name``."""
    unknown = set(hints) - set(HINT_KEYS)
    if unknown:
        raise ValueError(f"unknown optimiser hint(s) {sorted(unknown)}; known: {HINT_KEYS}")
    param = module._parameters[name]
    param._optim = dict(hints)  # type: ignore[union-attr]
    table = module.__dict__.setdefault("_optim_hints", {})
    table[name] = dict(hints)


def optim_hints(module: nn.Module, name: str) -> dict[str, float]:
    """The hints of ``module``'s own parameter ``name`` (empty when it has none)."""
    param = module._parameters[name]
    hints = getattr(param, "_optim", None)
    if hints is None:
        hints = module.__dict__.get("_optim_hints", {}).get(name, {})
    return dict(hints)


def param_groups(model: nn.Module, lr: float, weight_decay: float) -> list[dict[str, Any]]:
    """Optimiser parameter groups: the trainer's ``lr`` and ``weight_decay`` for every parameter
    without hints, one group per distinct setting for those with hints.

    ``torch.optim.AdamW(param_groups(model, lr, wd))`` then trains the SSM parameters with no
    weight decay and a smaller learning rate. Groups are ordered by first appearance, so the
    result is deterministic.
    """
    groups: dict[tuple[float, float], dict[str, Any]] = {}
    seen: set[int] = set()
    for module in model.modules():
        for name, param in module.named_parameters(recurse=False):
            if not param.requires_grad or id(param) in seen:
                continue
            seen.add(id(param))
            hints = optim_hints(module, name)
            group_lr = lr * hints.get("lr_scale", 1.0)
            group_wd = hints.get("weight_decay", weight_decay)
            group = groups.setdefault((group_lr, group_wd),
                                      {"params": [], "lr": group_lr, "weight_decay": group_wd})
            group["params"].append(param)
    return list(groups.values())
