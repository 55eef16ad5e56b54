"""LITE: a light Inception (Ismail Fawaz, Devanne, Berretti, Weber & Forestier 2023, "LITE:
Light Inception with boosTing tEchniques for time series classification"), after aeon's
``LITENetwork``; for tight parameter budgets.

Glossary (d = d_model; k = ``kernel_size``, paper 40):
    multiplexing  three parallel convolutions of k, k/2 and k/4 taps, here depthwise: one filter
                  per channel and branch, d channels each, concatenated to 3 d -> BatchNorm ->
                  ReLU (paper: 32 filters per branch on the raw series)
    DWSC          depthwise-separable convolution: one k'-tap filter per channel, then a 1x1
                  convolution mixing the channels; LITE's two layers are DWSC of k/2 taps at
                  dilation 2 and of k/4 taps at dilation 4, each -> BatchNorm -> ReLU, to d
                  channels (paper: 32)

Why its own family and not an ``inception`` option: LITE shares only the multiplexing idea with
InceptionTime; it has no bottleneck, no max-pool branch, no residual shortcuts, and it has
depthwise-separable layers and dilation, so its configuration has nothing in common with
InceptionModule's but the kernel size; as a family of its own the recommender can favour it by
name under a parameter budget.

Two choices for archsearch's setting, where a block sees d_model embedded channels (the model's
input Linear) rather than the raw series the paper convolves:
- the multiplexing convolutions are depthwise. For a univariate series, the input Linear (one
  weight and bias per channel) followed by a depthwise filter per channel is a standard
  convolution with d filters on the series (plus a constant), which is the paper's layer at
  d = 32 filters; for several input channels each filter sees one learned mix of them, as
  LITEMV's separable convolutions do (Ismail-Fawaz et al. 2024, "Look Into the LITE in Deep
  Learning for Time Series Classification", arXiv:2409.02869). Standard convolutions over the
  d embedded channels would instead cost (7/4) k d^2 weights, several times the rest;
- the hand-crafted (frozen) increasing / decreasing / peak filters of the paper's hybrid layer
  are left out: they were designed for the raw series, and on d embedded channels they would add
  17 d channels of fixed features. The other boosting techniques of the paper (ensembling,
  longer training) belong to the search and the trainer, not to the block.

At d_model 32 the block has about 8.9k parameters, near the paper's 9.8k for its whole network.

With the model's mean pooling (global average pooling) and linear head this is one LITE
network. Dropout (0 in the paper) follows each layer. Receptive field: 1 + (k - 1)
+ 2 (k/2 - 1) + 4 (k/4 - 1) steps (114 at k = 40).

Padding, BatchNorm and the causal (left-padded) form that streams: see ``convolution.py``.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from archsearch.blocks.convolution import (
    Conv,
    ConvFamily,
    MaskedBatchNorm1d,
    SeparableConv,
    channel_mask,
    check_can_step,
)
from archsearch.blocks.registry import register
from archsearch.errors import SpaceError
from archsearch.hparams import LITEConfig

DILATIONS = (2, 4)  # the paper's, of the two DWSC layers


@register("lite")
class LITEBlock(ConvFamily):
    Config = LITEConfig

    def __init__(self, d_model: int, config: LITEConfig, causal: bool, dropout: float) -> None:
        super().__init__(d_model, config, causal, dropout)
        k, d = config.kernel_size, d_model
        self.multiplexing = nn.ModuleList(Conv(d, d, k // 2 ** i, causal, groups=d)
                                          for i in range(3))  # depthwise: see the docstring
        self.bn = MaskedBatchNorm1d(3 * d)
        self.dwsc = nn.ModuleList([
            SeparableConv(3 * d, d, k // 2, causal, dilation=DILATIONS[0]),
            SeparableConv(d, d, k // 4, causal, dilation=DILATIONS[1]),
        ])
        self.dwsc_bn = nn.ModuleList(MaskedBatchNorm1d(d) for _ in self.dwsc)
        self.drop = nn.Dropout(dropout)

    @classmethod
    def check_config(cls, config: LITEConfig, causal: bool) -> None:
        if config.kernel_size < 4:
            raise SpaceError(f"lite: kernel_size must be >= 4 (convolutions of k, k/2 and k/4 "
                             f"taps), got {config.kernel_size}.")

    def forward(self, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        mask = channel_mask(lengths, x.shape[1])  # (B, 1, T)
        h = x.transpose(1, 2)  # (B, D, T)
        h = torch.cat([conv(h, mask) for conv in self.multiplexing], dim=1)  # (B, 3D, T)
        h = self.drop(F.relu(self.bn(h, mask)))  # (B, 3D, T)
        for conv, bn in zip(self.dwsc, self.dwsc_bn, strict=True):
            h = self.drop(F.relu(bn(conv(h, mask), mask)))  # (B, D, T)
        return h.transpose(1, 2)  # (B, T, D)

    def init_state(self, batch: int, device: torch.device) -> Any:
        check_can_step(self)
        return [conv.init_state(batch, device) for conv in (*self.multiplexing, *self.dwsc)]

    def step(self, x_t: torch.Tensor, state: Any) -> tuple[torch.Tensor, Any]:
        new_state = []
        branches = []
        for conv, past in zip(self.multiplexing, state[:3], strict=True):
            y, past = conv.step(x_t, past)  # (B, D)
            branches.append(y)
            new_state.append(past)
        h = F.relu(self.bn.step(torch.cat(branches, dim=-1)))  # (B, 3D)
        for conv, bn, past in zip(self.dwsc, self.dwsc_bn, state[3:], strict=True):
            h, past = conv.step(h, past)  # (B, D)
            h = F.relu(bn.step(h))  # (B, D)
            new_state.append(past)
        return h, new_state  # (B, D)
