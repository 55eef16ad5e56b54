"""Blocks room: one sequence family per file, one contract, one builder.

Families: rnn, lstm, gru (``recurrent.py``), transformer, tf_enc_rnn_dec, attn_rnn, rnn_then_tf,
linear_attention, ssm (``kind: s4d | selective``), tcn, and the convolutional classifiers fcn,
resnet, inception and lite (their shared parts in ``convolution.py``). Options: a
mixture-of-experts feed-forward (``moe.py``) in the transformer and the hybrids with a
Transformer part, and ``quantize: int8`` for any model (``quantize.py``).
"""

from __future__ import annotations

import dataclasses
from typing import Any

from archsearch.blocks import (  # noqa: F401  (registers the families)
    attn_rnn,
    fcn,
    inception,
    linear_attention,
    lite,
    recurrent,
    resnet,
    rnn_then_tf,
    ssm,
    tcn,
    tf_enc_rnn_dec,
    transformer,
)
from archsearch.blocks.bag import Bag
from archsearch.blocks.base import SequenceBlock
from archsearch.blocks.model import ModelHParams, SequenceModel
from archsearch.blocks.moe import moe_aux_loss
from archsearch.blocks.optim import param_groups, set_optim_hints
from archsearch.blocks.quantize import deploy, inference_model, is_quantized, quantize_int8
from archsearch.blocks.registry import FAMILIES, block_class
from archsearch.types import ArchConfig, ModelIO

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

_SHARED_KEYS = {f.name for f in dataclasses.fields(ModelHParams)}


def parse_arch(arch: ArchConfig, io: ModelIO) -> tuple[ModelHParams, Any]:
    """``arch``'s shared hyperparameters and its family's own Config, checked as
    :func:`build_model` checks them (raises :class:`SpaceError`), without building anything."""
    cls = block_class(arch.family)
    shared = ModelHParams(**{k: v for k, v in arch.hparams.items() if k in _SHARED_KEYS})
    own = {k: v for k, v in arch.hparams.items() if k not in _SHARED_KEYS}
    return shared, cls.parse_config(own, io.causal)


def build_model(arch: ArchConfig, io: ModelIO) -> SequenceModel:
    """Build ``arch`` for ``io``; raises :class:`SpaceError` on unknown or invalid hparams.

    The model is the trainable float model, also when ``quantize: int8`` is set: pass it
    through :func:`inference_model` for what is measured and deployed.
    """
    shared, config = parse_arch(arch, io)
    block = block_class(arch.family)(shared.d_model, config, io.causal, shared.dropout)
    return SequenceModel(io, shared, block)


def build_bag(arch: ArchConfig, io: ModelIO, members: int) -> Bag:
    """A :class:`Bag` of ``members`` fresh models of ``arch`` (load the fold weights into it)."""
    return Bag([build_model(arch, io) for _ in range(members)])
