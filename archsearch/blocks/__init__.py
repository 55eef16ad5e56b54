"""Blocks room: one sequence family per file, one contract, one builder."""

from __future__ import annotations

import dataclasses

from archsearch.blocks import recurrent, transformer  # noqa: F401  (registers the families)
from archsearch.blocks.base import SequenceBlock
from archsearch.blocks.model import ModelHParams, SequenceModel
from archsearch.blocks.registry import FAMILIES, block_class
from archsearch.types import ArchConfig, ModelIO

__all__ = ["FAMILIES", "ModelHParams", "SequenceBlock", "SequenceModel", "build_model"]

_SHARED_KEYS = {f.name for f in dataclasses.fields(ModelHParams)}


def build_model(arch: ArchConfig, io: ModelIO) -> SequenceModel:
    """Build ``arch`` for ``io``; raises :class:`SpaceError` on unknown or invalid hparams."""
    cls = block_class(arch.family)
    shared = ModelHParams(**{k: v for k, v in arch.hparams.items() if k in _SHARED_KEYS})
    own = {k: v for k, v in arch.hparams.items() if k not in _SHARED_KEYS}
    config = cls.parse_config(own, io.causal)
    block = cls(shared.d_model, config, io.causal, shared.dropout)
    return SequenceModel(io, shared, block)
