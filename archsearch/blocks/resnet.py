"""Residual network for time series (Wang, Yan & Oates 2017; the strongest network of the
Ismail Fawaz et al. 2019 benchmark, "Deep learning for time series classification: a review"),
after tsai's ``ResNet.py``.

``n_blocks`` (paper: 3) ResBlocks. A ResBlock is three ConvBlocks of 8, 5 and 3 taps (the
paper's; convolution -> BatchNorm -> ReLU, the last without its ReLU), plus a shortcut: a 1x1
convolution and BatchNorm where the block changes the width, BatchNorm alone where it keeps it
(the authors' code); the sum goes through a ReLU. Widths: the paper's 64, 128, 128 filters are
d/2, d, d here (d = d_model), so ``n_blocks: 3`` at d_model 128 is the paper's network; a
single block is d wide. Dropout (0 in the paper) follows each ResBlock. Receptive field:
1 + 13 n_blocks steps.

Padding, BatchNorm and the causal (left-padded) form that streams: see ``convolution.py``.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from archsearch.blocks.base import check_positive
from archsearch.blocks.convolution import ConvBlock, ConvStack, MaskedBatchNorm1d
from archsearch.blocks.registry import register
from archsearch.hparams import ResNetConfig

KERNEL_SIZES = (8, 5, 3)  # the paper's, fixed


class ResBlock(nn.Module):
    def __init__(self, c_in: int, c_out: int, causal: bool, kss: tuple[int, ...] = KERNEL_SIZES,
                 dropout: float = 0.0) -> None:
        super().__init__()
        self.convblock1 = ConvBlock(c_in, c_out, kss[0], causal)
        self.convblock2 = ConvBlock(c_out, c_out, kss[1], causal)
        self.convblock3 = ConvBlock(c_out, c_out, kss[2], causal, act=False)
        # The shortcut expands the channels where the width changes.
        self.shortcut = (MaskedBatchNorm1d(c_in) if c_in == c_out
                         else ConvBlock(c_in, c_out, 1, causal, act=False))
        self.drop = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """x (B, C_in, T), mask (B, 1, T) -> (B, C_out, T)."""
        h = self.convblock1(x, mask)  # (B, C_out, T)
        h = self.convblock2(h, mask)  # (B, C_out, T)
        h = self.convblock3(h, mask)  # (B, C_out, T)
        return self.drop(F.relu(h + self.shortcut(x, mask)))  # (B, C_out, T)

    def init_state(self, batch: int, device: torch.device) -> Any:
        return tuple(block.init_state(batch, device)
                     for block in (self.convblock1, self.convblock2, self.convblock3))

    def step(self, x_t: torch.Tensor, state: Any) -> tuple[torch.Tensor, Any]:
        """x_t (B, C_in), state -> y_t (B, C_out), state."""
        past1, past2, past3 = state
        h, past1 = self.convblock1.step(x_t, past1)  # (B, C_out)
        h, past2 = self.convblock2.step(h, past2)  # (B, C_out)
        h, past3 = self.convblock3.step(h, past3)  # (B, C_out)
        if isinstance(self.shortcut, MaskedBatchNorm1d):
            short = self.shortcut.step(x_t)  # (B, C_out)
        else:
            short, _ = self.shortcut.step(x_t, None)  # (B, C_out) 1x1: keeps no past
        return F.relu(h + short), (past1, past2, past3)  # (B, C_out)


@register("resnet")
class ResNetBlock(ConvStack):
    Config = ResNetConfig

    def __init__(self, d_model: int, config: ResNetConfig, causal: bool, dropout: float) -> None:
        super().__init__(d_model, config, causal, dropout)
        first = max(1, d_model // 2) if config.n_blocks > 1 else d_model  # paper: 64 of 128
        widths = (d_model, first, *[d_model] * (config.n_blocks - 1))  # in, each ResBlock
        self.layers = nn.ModuleList(
            ResBlock(c_in, c_out, causal, dropout=dropout)
            for c_in, c_out in zip(widths[:-1], widths[1:], strict=True)
        )

    @classmethod
    def check_config(cls, config: ResNetConfig, causal: bool) -> None:
        check_positive(cls.family, n_blocks=config.n_blocks)
