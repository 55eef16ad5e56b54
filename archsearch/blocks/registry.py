"""Family name -> block class. The names and each family's ``Config`` are those of
``archsearch.hparams.FAMILY_HPARAMS``; registering anything else is a programming error."""

from __future__ import annotations

from collections.abc import Callable

from archsearch.blocks.base import SequenceBlock
from archsearch.errors import SpaceError
from archsearch.hparams import FAMILY_HPARAMS

FAMILIES: dict[str, type[SequenceBlock]] = {}


def register(name: str) -> Callable[[type[SequenceBlock]], type[SequenceBlock]]:
    def decorate(cls: type[SequenceBlock]) -> type[SequenceBlock]:
        if FAMILY_HPARAMS.get(name) is not cls.Config:
            raise TypeError(f"{cls.__name__}: family '{name}' must have the Config of "
                            "archsearch.hparams.FAMILY_HPARAMS")
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
