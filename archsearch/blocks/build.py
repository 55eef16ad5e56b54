"""Building a model from an :class:`~archsearch.types.ArchConfig`: its shared
hyperparameters, its family's block, one :class:`SequenceModel` (or a :class:`Bag` of them)."""

from __future__ import annotations

import dataclasses
from typing import Any

from archsearch.blocks.bag import Bag
from archsearch.blocks.model import ModelHParams, SequenceModel
from archsearch.blocks.registry import block_class
from archsearch.types import ArchConfig, ModelIO

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
