"""The Pareto front of quality against one cost: defined once for the recommendation, the
report's charts and the live page."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from typing import TypeVar

Item = TypeVar("Item")


def pareto_front(items: Iterable[Item], cost: Callable[[Item], float],
                 quality: Callable[[Item], float]) -> list[Item]:
    """The items that no other item dominates in (lower ``cost``, higher ``quality``), by
    increasing cost; of items of equal cost only the best counts."""
    front: list[Item] = []
    best = -math.inf
    for item in sorted(items, key=lambda i: (cost(i), -quality(i))):
        if quality(item) > best:
            front.append(item)
            best = quality(item)
    return front
