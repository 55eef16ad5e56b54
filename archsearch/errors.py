"""User-facing errors.

Every subclass of :class:`ArchsearchError` is something the user can fix (bad input, bad option,
bad search space). The CLI prints its message as one paragraph and exits with its
``exit_code`` (2, but for a task stopped by its surroundings: 1); anything else is an internal
failure (exit code 1, with a traceback).
"""

from __future__ import annotations

from collections.abc import Iterator


def causes(exc: BaseException) -> Iterator[BaseException]:
    """``exc``, then the errors it was raised from or while handling, each once (Ray Tune
    re-raises the errors of its callbacks as a TuneError: the one that matters is inside)."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = current.__cause__ or current.__context__


class ArchsearchError(Exception):
    """A problem with the user's input; the message says what is wrong and how to fix it."""

    exit_code = 2


class UsageError(ArchsearchError):
    """A malformed or unknown command-line option or value."""


class DataError(ArchsearchError):
    """A data set that cannot be loaded or does not meet the data contract."""


class SpaceError(ArchsearchError):
    """A search-space file that does not meet the schema, or a configuration it cannot build."""


class ConstraintError(ArchsearchError):
    """An unknown or malformed deployment constraint."""


class NotFoundError(ArchsearchError):
    """A task or trial id that is not in the database."""


class TaskStopped(ArchsearchError):
    """A task stopped because its surroundings failed it (a full disk, a database gone); the
    message says what happened, in what state the task was left, and how to continue it."""

    exit_code = 1
