"""A bag: several models of one configuration, each trained on another fold, predicting as one.

On small data the finalists are cross-validated anyway (``archsearch.trial.crossval``); the
fold models together have seen all of train+validation, and their average varies less than any
one of them. This is k-fold bagging as AutoGluon's; InceptionTime is an ensemble of five.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn

from archsearch.types import TaskKind


class Bag(nn.Module):
    """The members' mean prediction: for classification the log of the mean class probability
    (so ``argmax`` and ``cross_entropy`` read it as logits), else the mean output."""

    def __init__(self, members: Sequence[nn.Module]) -> None:
        super().__init__()
        if not members:
            raise ValueError("a bag needs at least one member")
        self.members = nn.ModuleList(members)
        self.io = members[0].io

    def forward(self, x: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        outputs = torch.stack([member(x, lengths).float() for member in self.members])
        if self.io.task is TaskKind.CLASSIFICATION:
            return outputs.log_softmax(-1).logsumexp(0) - math.log(len(self.members))
        return outputs.mean(0)

