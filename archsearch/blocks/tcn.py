"""Temporal convolutional network (Bai, Kolter & Koltun 2018): the convolutional baseline.

``n_layers`` residual blocks; block i holds two dilated causal 1-D convolutions (dilation 2^i,
``kernel_size`` taps, left padding (k - 1) 2^i so no output sees the future), each followed by
ReLU and dropout, and a residual connection. Receptive field: 1 + 2 (k - 1) (2^n_layers - 1)
steps. Always causal. The step path keeps, for every convolution, its last (k - 1) 2^i inputs.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from archsearch.blocks.base import SequenceBlock, check_positive, step_layers
from archsearch.blocks.registry import register
from archsearch.errors import SpaceError
from archsearch.hparams import TCNConfig


class CausalConv(nn.Module):
    def __init__(self, channels: int, kernel_size: int, dilation: int) -> None:
        super().__init__()
        self.history = (kernel_size - 1) * dilation  # past inputs each output needs
        self.conv = nn.Conv1d(channels, channels, kernel_size, dilation=dilation)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x (B, C, T) -> (B, C, T)."""
        return self.conv(F.pad(x, (self.history, 0)))  # (B, C, T)

    def step(self, x_t: torch.Tensor, past: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """x_t (B, C), past (B, C, history) -> y_t (B, C), past."""
        window = torch.cat([past, x_t[..., None]], dim=-1)  # (B, C, history + 1)
        return self.conv(window)[..., 0], window[..., 1:]  # (B, C)


class TemporalBlock(nn.Module):
    def __init__(self, channels: int, kernel_size: int, dilation: int, dropout: float) -> None:
        super().__init__()
        self.conv1 = CausalConv(channels, kernel_size, dilation)
        self.conv2 = CausalConv(channels, kernel_size, dilation)
        self.drop = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x (B, C, T) -> (B, C, T)."""
        h = self.drop(F.relu(self.conv1(x)))  # (B, C, T)
        h = self.drop(F.relu(self.conv2(h)))  # (B, C, T)
        return F.relu(x + h)  # (B, C, T)

    def step(self, x_t: torch.Tensor, state: Any) -> tuple[torch.Tensor, Any]:
        past1, past2 = state
        h, past1 = self.conv1.step(x_t, past1)  # (B, C)
        h, past2 = self.conv2.step(F.relu(h), past2)  # (B, C)
        return F.relu(x_t + F.relu(h)), (past1, past2)  # (B, C)


@register("tcn")
class TCNBlock(SequenceBlock):
    Config = TCNConfig
    supports_step = True

    def __init__(self, d_model: int, config: TCNConfig, causal: bool, dropout: float) -> None:
        super().__init__(d_model, config, causal, dropout)
        self.layers = nn.ModuleList(
            TemporalBlock(d_model, config.kernel_size, 2 ** i, dropout)
            for i in range(config.n_layers)
        )

    @classmethod
    def check_config(cls, config: TCNConfig, causal: bool) -> None:
        check_positive(cls.family, n_layers=config.n_layers)
        if config.kernel_size < 2:
            raise SpaceError(f"tcn: kernel_size must be >= 2, got {config.kernel_size}.")

    def forward(self, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        # Causal convolutions: steps past a sequence's length cannot reach its valid outputs.
        h = x.transpose(1, 2)  # (B, D, T)
        for layer in self.layers:
            h = layer(h)  # (B, D, T)
        return h.transpose(1, 2)  # (B, T, D)

    def init_state(self, batch: int, device: torch.device) -> Any:
        return [tuple(torch.zeros(batch, self.d_model, conv.history, device=device)
                      for conv in (layer.conv1, layer.conv2)) for layer in self.layers]

    def step(self, x_t: torch.Tensor, state: Any) -> tuple[torch.Tensor, Any]:
        return step_layers(self.layers, x_t, state)
