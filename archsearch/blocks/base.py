"""The contract every sequence family keeps.

A block maps ``(B, T, D)`` to ``(B, T, D)`` given per-sequence ``lengths`` ``(B,)``; steps at or
beyond a sequence's length are padding and must not influence that sequence's valid outputs.
With ``causal=True`` the output at step t depends on inputs up to t only.
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

    def __init__(self, d_model: int, config: Any, causal: bool, dropout: float) -> None:
        super().__init__()
        self.d_model = d_model
        self.config = config
        self.causal = causal
        self.dropout = dropout

    @abstractmethod
    def forward(self, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """x: (B, T, D), lengths: (B,) int64 -> (B, T, D)."""

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


def lengths_to_mask(lengths: torch.Tensor, seq_len: int) -> torch.Tensor:
    """(B,) -> (B, T) bool, True on valid steps."""
    steps = torch.arange(seq_len, device=lengths.device)
    return steps[None, :] < lengths[:, None]
