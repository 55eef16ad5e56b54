"""The contract every sequence family keeps.

A block maps ``(B, T, D)`` to ``(B, T, D)`` given per-sequence ``lengths`` ``(B,)``; steps at or
beyond a sequence's length are padding and must not influence that sequence's valid outputs.
With ``causal=True`` the output at step t depends on inputs up to t only.

Streaming is an optional capability. A family whose outputs can be produced one step at a time
sets ``supports_step = True`` and implements ``init_state`` and ``step``; an instance reports
through :attr:`SequenceBlock.can_step` whether its step path reproduces its ``forward`` (a
bidirectional LSTM or a non-causal linear attention cannot stream, though their family can).
Feeding ``x[:, 0], x[:, 1], ...`` through ``step`` must give ``forward(x, lengths)[:, t]`` at
every t (up to float rounding), which the contract suite checks.

A family may initialise itself from data (``init_from_data``: the trial calls it on a sample of
the training split before the first step). A family of fixed features sets ``readout =
"ridge"``: nothing in its model trains by gradient; the model's head is fitted in closed form on
the block's outputs (ridge regression, as MiniRocket's), which are then ``out_dim`` wide (its
features) instead of D, without the model's final LayerNorm.
"""

from __future__ import annotations

import dataclasses
from abc import ABC, abstractmethod
from typing import Any, ClassVar

import torch
from torch import nn

from archsearch.errors import SpaceError


class SequenceBlock(nn.Module, ABC):
    """Base of every family. Subclasses set ``Config`` (a dataclass of their hyperparameters)."""

    Config: ClassVar[type]
    family: ClassVar[str]
    supports_step: ClassVar[bool] = False  # the family has a recurrent step (streaming) form
    readout: ClassVar[str] = "trained"  # the head: "trained" with the block, or "ridge"
    # Whether more intra-op threads speed its training up: not for a fused step loop over time,
    # whose small per-step kernels trained 0.82-1.19 times as fast on two threads as on one
    # (rnn, lstm, gru over two runs of benchmarks/blocks.py, two_threads_train_step_T1024: no
    # reliable gain), where whole-sequence kernels were 1.3-1.8 times as fast.
    threads_speed_training: ClassVar[bool] = True

    def __init__(self, d_model: int, config: Any, causal: bool, dropout: float) -> None:
        super().__init__()
        self.d_model = d_model
        self.config = config
        self.causal = causal
        self.dropout = dropout

    @abstractmethod
    def forward(self, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """x: (B, T, D), lengths: (B,) int64 -> (B, T, D) (``out_dim`` wide, see ``readout``)."""

    def init_from_data(self, x: torch.Tensor, lengths: torch.Tensor) -> None:
        """Data-dependent initialisation on a sample of training inputs x (N, T, D), lengths
        (N,), before training; most families have none."""

    @property
    def out_dim(self) -> int:
        """The width of the block's outputs: D, or a ``ridge`` readout's feature count."""
        return self.d_model

    @property
    def can_step(self) -> bool:
        """True when ``step`` reproduces ``forward`` for this instance (streaming inference)."""
        return self.supports_step

    def init_state(self, batch: int, device: torch.device) -> Any:
        """The state before the first step (only when :attr:`can_step`)."""
        raise NotImplementedError(f"family '{self.family}' has no step (streaming) form.")

    def step(self, x_t: torch.Tensor, state: Any) -> tuple[torch.Tensor, Any]:
        """One step: x_t (B, D), state -> (y_t (B, D), new state); the state is not mutated."""
        raise NotImplementedError(f"family '{self.family}' has no step (streaming) form.")

    @classmethod
    def parse_config(cls, hparams: dict[str, Any], causal: bool) -> Any:
        """Build ``cls.Config`` strictly: unknown or missing hyperparameters are errors."""
        fields = {f.name for f in dataclasses.fields(cls.Config)}
        unknown = sorted(set(hparams) - fields)
        if unknown:
            raise SpaceError(f"family '{cls.family}' does not take {', '.join(unknown)}; it takes "
                             f"{', '.join(sorted(fields)) or 'no parameters'}.")
        try:
            config = cls.Config(**hparams)
        except TypeError as exc:
            raise SpaceError(f"family '{cls.family}': {exc}.") from None
        cls.check_config(config, causal)
        return config

    @classmethod
    def check_config(cls, config: Any, causal: bool) -> None:
        """Reject combinations that are invalid (override per family)."""


def check_positive(family: str, **values: int) -> None:
    """Raise :class:`SpaceError` naming the first of ``values`` that is below 1."""
    for name, value in values.items():
        if value < 1:
            raise SpaceError(f"{family}: {name} must be >= 1, got {value}.")


def check_choice(family: str, name: str, value: Any, choices: tuple[Any, ...]) -> None:
    """Raise :class:`SpaceError` unless ``value`` is one of ``choices``."""
    if value not in choices:
        allowed = ", ".join(repr(c) for c in choices)
        raise SpaceError(f"{family}: {name} must be one of {allowed}, not {value!r}.")


def step_layers(layers: nn.ModuleList, x_t: torch.Tensor, state: list[Any]
                ) -> tuple[torch.Tensor, list[Any]]:
    """One token through a stack of layers that each step as ``(x_t, s) -> (x_t, s)``."""
    new_state = []
    for layer, s in zip(layers, state, strict=True):
        x_t, s = layer.step(x_t, s)  # (B, D)
        new_state.append(s)
    return x_t, new_state


def lengths_to_mask(lengths: torch.Tensor, seq_len: int) -> torch.Tensor:
    """(B,) -> (B, T) bool, True on valid steps."""
    steps = torch.arange(seq_len, device=lengths.device)
    return steps[None, :] < lengths[:, None]
