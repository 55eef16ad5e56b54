"""InceptionTime's network (Ismail Fawaz et al. 2020, "InceptionTime: finding AlexNet for time
series classification"), after tsai's ``InceptionTime.py`` and the authors' code.

Glossary (d = d_model; the paper's numbers at d = 128):
    InceptionModule  a 1x1 bottleneck to d/4 channels (paper: 32), then three parallel
                     convolutions of k, k/2 and k/4 taps (``kernel_size`` = k; paper: 40, 20,
                     10) on it, beside them a 3-tap max-pool of the module's input followed by a
                     1x1 convolution; the four branches (d/4 channels each, paper: 32) are
                     concatenated to d channels -> BatchNorm -> ReLU. No convolution has a bias.
    shortcut         every third module, the input of those three modules through a 1x1
                     convolution and BatchNorm is added to their output, then a ReLU
    n_modules        modules in the stack (paper: 6, so two residual groups); modules after the
                     last full group of three have no shortcut, as in the authors' code

With the model's mean pooling (global average pooling) and linear head this is one InceptionTime
network; the paper's ensemble of five is left to the search. Dropout (0 in the paper) follows
each module. Receptive field: 1 + n_modules (k - 1) steps.

Padding, BatchNorm, the max-pool's treatment of padding and the causal (left-padded) form that
streams: see ``convolution.py``.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from archsearch.blocks.base import check_positive
from archsearch.blocks.convolution import (
    Conv,
    ConvBlock,
    ConvFamily,
    MaskedBatchNorm1d,
    MaxPool,
    channel_mask,
    check_can_step,
)
from archsearch.blocks.registry import register
from archsearch.errors import SpaceError
from archsearch.hparams import InceptionConfig

RESIDUAL_EVERY = 3  # the paper's: a shortcut around every three modules


class InceptionModule(nn.Module):
    def __init__(self, channels: int, kernel_size: int, causal: bool) -> None:
        super().__init__()
        width = channels // 4  # each branch and the bottleneck (paper: 32 of 128)
        self.bottleneck = Conv(channels, width, 1, causal)
        self.convs = nn.ModuleList(Conv(width, width, kernel_size // 2 ** i, causal)
                                   for i in range(3))
        self.maxpool = MaxPool(causal, 3)
        self.pool_conv = Conv(channels, channels - 3 * width, 1, causal)  # concat = channels
        self.bn = MaskedBatchNorm1d(channels)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """x (B, C, T), mask (B, 1, T) -> (B, C, T)."""
        b = self.bottleneck(x, mask)  # (B, C/4, T)
        branches = [conv(b, mask) for conv in self.convs]  # 3 x (B, C/4, T)
        branches.append(self.pool_conv(self.maxpool(x, mask), mask))  # (B, C - 3 C/4, T)
        return F.relu(self.bn(torch.cat(branches, dim=1), mask))  # (B, C, T)

    def init_state(self, batch: int, device: torch.device) -> Any:
        pool = self.maxpool.init_state(batch, self.bottleneck.c_in, device)
        return tuple(conv.init_state(batch, device) for conv in self.convs), pool

    def step(self, x_t: torch.Tensor, state: Any) -> tuple[torch.Tensor, Any]:
        """x_t (B, C), state -> y_t (B, C), state."""
        pasts, pool_past = state
        b, _ = self.bottleneck.step(x_t, None)  # (B, C/4)
        branches, new_pasts = [], []
        for conv, past in zip(self.convs, pasts, strict=True):
            y, past = conv.step(b, past)  # (B, C/4)
            branches.append(y)
            new_pasts.append(past)
        pooled, pool_past = self.maxpool.step(x_t, pool_past)  # (B, C)
        branches.append(self.pool_conv.step(pooled, None)[0])  # (B, C - 3 C/4)
        y = F.relu(self.bn.step(torch.cat(branches, dim=-1)))  # (B, C)
        return y, (tuple(new_pasts), pool_past)


@register("inception")
class InceptionBlock(ConvFamily):
    Config = InceptionConfig

    def __init__(self, d_model: int, config: InceptionConfig, causal: bool,
                 dropout: float) -> None:
        super().__init__(d_model, config, causal, dropout)
        if d_model < 4:
            raise SpaceError(f"inception: d_model must be >= 4 (four branches of d_model/4 "
                             f"channels), got {d_model}.")
        self.layers = nn.ModuleList(InceptionModule(d_model, config.kernel_size, causal)
                                    for _ in range(config.n_modules))
        self.shortcuts = nn.ModuleList(ConvBlock(d_model, d_model, 1, causal, act=False)
                                       for _ in range(config.n_modules // RESIDUAL_EVERY))
        self.drop = nn.Dropout(dropout)

    @classmethod
    def check_config(cls, config: InceptionConfig, causal: bool) -> None:
        check_positive(cls.family, n_modules=config.n_modules)
        if config.kernel_size < 4:
            raise SpaceError(f"inception: kernel_size must be >= 4 (branches of k, k/2 and k/4 "
                             f"taps), got {config.kernel_size}.")

    def forward(self, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        mask = channel_mask(lengths, x.shape[1])  # (B, 1, T)
        h = res = x.transpose(1, 2)  # (B, D, T)
        for i, layer in enumerate(self.layers):
            h = self.drop(layer(h, mask))  # (B, D, T)
            if i % RESIDUAL_EVERY == RESIDUAL_EVERY - 1:
                h = res = F.relu(h + self.shortcuts[i // RESIDUAL_EVERY](res, mask))  # (B, D, T)
        return h.transpose(1, 2)  # (B, T, D)

    def init_state(self, batch: int, device: torch.device) -> Any:
        check_can_step(self)
        return [layer.init_state(batch, device) for layer in self.layers]

    def step(self, x_t: torch.Tensor, state: Any) -> tuple[torch.Tensor, Any]:
        h = res = x_t  # (B, D)
        new_state = []
        for i, (layer, s) in enumerate(zip(self.layers, state, strict=True)):
            h, s = layer.step(h, s)  # (B, D)
            new_state.append(s)
            if i % RESIDUAL_EVERY == RESIDUAL_EVERY - 1:
                short, _ = self.shortcuts[i // RESIDUAL_EVERY].step(res, None)  # (B, D)
                h = res = F.relu(h + short)  # (B, D)
        return h, new_state
