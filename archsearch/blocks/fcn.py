"""Fully convolutional network (Wang, Yan & Oates 2017, "Time series classification from scratch
with deep neural networks: a strong baseline"), after tsai's ``FCN.py``.

Three ConvBlocks (convolution -> BatchNorm -> ReLU, stride 1, no pooling between them) of 8, 5
and 3 taps, the paper's fixed kernel sizes; with the model's mean pooling (global average
pooling) and linear head this is the paper's network. Widths: the paper's 128-256-128 filters
become d, ``width_mult`` d, d here (d = d_model), so the block outputs d channels;
``width_mult: 2`` at d_model 128 is the paper's network. Dropout (0 in the paper) follows each
ConvBlock. Receptive field: 1 + 7 + 4 + 2 = 14 steps.

Padding, BatchNorm and the causal (left-padded) form that streams: see ``convolution.py``.
"""

from __future__ import annotations

import torch
from torch import nn

from archsearch.blocks.base import check_positive
from archsearch.blocks.convolution import ConvBlock, ConvStack
from archsearch.blocks.registry import register
from archsearch.hparams import FCNConfig

KERNEL_SIZES = (8, 5, 3)  # the paper's, fixed


@register("fcn")
class FCNBlock(ConvStack):
    Config = FCNConfig

    def __init__(self, d_model: int, config: FCNConfig, causal: bool, dropout: float) -> None:
        super().__init__(d_model, config, causal, dropout)
        widths = (d_model, d_model, config.width_mult * d_model, d_model)  # in, 3 ConvBlocks
        self.layers = nn.ModuleList(
            ConvBlock(c_in, c_out, k, causal)
            for c_in, c_out, k in zip(widths[:-1], widths[1:], KERNEL_SIZES, strict=True)
        )
        self.drop = nn.Dropout(dropout)

    @classmethod
    def check_config(cls, config: FCNConfig, causal: bool) -> None:
        check_positive(cls.family, width_mult=config.width_mult)

    def between(self, h: torch.Tensor) -> torch.Tensor:
        return self.drop(h)  # (B, C, T)
