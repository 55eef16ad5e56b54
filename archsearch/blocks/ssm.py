"""The ``ssm`` family: a stack of pre-norm residual state-space layers.

``kind`` picks the layer: ``s4d`` (diagonal, time-invariant, FFT convolution; ``ssm_s4d.py``) or
``selective`` (Mamba, input-dependent, chunked parallel scan; ``ssm_selective.py``). Both are
causal by construction, whatever the ``causal`` flag says, and both stream: each layer has a
recurrent step path with a fixed-size state.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from archsearch.blocks.base import SequenceBlock, check_choice, check_positive
from archsearch.blocks.registry import register
from archsearch.blocks.ssm_s4d import S4DLayer
from archsearch.blocks.ssm_selective import SelectiveLayer
from archsearch.errors import SpaceError
from archsearch.hparams import SSMConfig

KINDS = ("s4d", "selective")


@register("ssm")
class SSMBlock(SequenceBlock):
    Config = SSMConfig
    supports_step = True

    def __init__(self, d_model: int, config: SSMConfig, causal: bool, dropout: float) -> None:
        super().__init__(d_model, config, causal, dropout)
        if config.kind == "s4d":
            layers = [S4DLayer(d_model, config.d_state, dropout) for _ in range(config.n_layers)]
        else:
            layers = [SelectiveLayer(d_model, config.d_state, config.expand, config.d_conv)
                      for _ in range(config.n_layers)]
        self.layers = nn.ModuleList(layers)
        self.norms = nn.ModuleList(nn.LayerNorm(d_model) for _ in range(config.n_layers))
        self.drop = nn.Dropout(dropout)
        self.final_norm = nn.LayerNorm(d_model)

    @classmethod
    def check_config(cls, config: SSMConfig, causal: bool) -> None:
        check_choice(cls.family, "kind", config.kind, KINDS)
        check_positive(cls.family, n_layers=config.n_layers, d_state=config.d_state,
                       expand=config.expand, d_conv=config.d_conv)
        defaults = SSMConfig()
        if config.kind == "s4d":
            if config.d_state % 2:
                raise SpaceError(f"ssm: kind=s4d needs an even d_state (conjugate pairs), got "
                                 f"{config.d_state}.")
            if (config.expand, config.d_conv) != (defaults.expand, defaults.d_conv):
                raise SpaceError("ssm: expand and d_conv apply to kind=selective only; leave "
                                 "them out for kind=s4d.")

    def forward(self, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        # Causal layers: steps past a sequence's length cannot reach its valid outputs.
        for norm, layer in zip(self.norms, self.layers, strict=True):
            x = x + self.drop(layer(norm(x)))  # (B, T, D)
        return self.final_norm(x)  # (B, T, D)

    def init_state(self, batch: int, device: torch.device) -> Any:
        return [layer.init_state(batch, device) for layer in self.layers]

    def step(self, x_t: torch.Tensor, state: Any) -> tuple[torch.Tensor, Any]:
        new_state = []
        for norm, layer, s in zip(self.norms, self.layers, state, strict=True):
            y, s = layer.step(norm(x_t), s)  # (B, D)
            x_t = x_t + y  # (B, D)
            new_state.append(s)
        return self.final_norm(x_t), new_state  # (B, D)
