"""Blocks room: one sequence family per file, one contract, one builder.

Families: rnn, lstm, gru (``recurrent.py``), transformer, tf_enc_rnn_dec, attn_rnn, rnn_then_tf,
linear_attention, ssm (``kind: s4d | selective``), tcn, and the convolutional classifiers fcn,
resnet, inception and lite (their shared parts in ``convolution.py``), and rocket (MiniRocket's
random-kernel features and their ridge readout). Options: a mixture-of-experts feed-forward
(``moe.py``) in the transformer and the hybrids with a Transformer part, and ``quantize: int8``
for any model (``quantize.py``).
"""

from __future__ import annotations

from archsearch.blocks import (  # noqa: F401  (registers the families)
    attn_rnn,
    fcn,
    inception,
    linear_attention,
    lite,
    recurrent,
    resnet,
    rnn_then_tf,
    rocket,
    ssm,
    tcn,
    tf_enc_rnn_dec,
    transformer,
)
from archsearch.blocks.bag import Bag
from archsearch.blocks.base import SequenceBlock
from archsearch.blocks.build import build_bag, build_model, parse_arch
from archsearch.blocks.model import ModelHParams, SequenceModel
from archsearch.blocks.moe import moe_aux_loss
from archsearch.blocks.optim import param_groups, set_optim_hints
from archsearch.blocks.quantize import deploy, inference_model, is_quantized, quantize_int8
from archsearch.blocks.registry import FAMILIES

__all__ = [
    "Bag",
    "FAMILIES",
    "ModelHParams",
    "SequenceBlock",
    "SequenceModel",
    "build_bag",
    "build_model",
    "deploy",
    "inference_model",
    "is_quantized",
    "moe_aux_loss",
    "parse_arch",
    "param_groups",
    "quantize_int8",
    "set_optim_hints",
]
