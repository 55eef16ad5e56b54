"""Family name -> block class."""

from __future__ import annotations

from collections.abc import Callable

from archsearch.blocks.base import SequenceBlock
from archsearch.errors import SpaceError

FAMILIES: dict[str, type[SequenceBlock]] = {}


def register(name: str) -> Callable[[type[SequenceBlock]], type[SequenceBlock]]:
    def decorate(cls: type[SequenceBlock]) -> type[SequenceBlock]:
        cls.family = name
        FAMILIES[name] = cls
        return cls

    return decorate


def block_class(family: str) -> type[SequenceBlock]:
    try:
        return FAMILIES[family]
    except KeyError:
        known = ", ".join(sorted(FAMILIES))
        raise SpaceError(f"unknown family '{family}'; known families: {known}.") from None
