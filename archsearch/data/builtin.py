"""The registry of built-in data sets: ``builtin:NAME?key=value&...``, all offline.

Synthetic tasks take ``length``, ``n``, ``seed`` and ``noise`` (a percentage, see
:func:`~archsearch.data.synthetic.with_target_noise`), the token tasks also ``vocab``; the real
ones take what fits them (digits ``steps``, the forecasting series ``lookback`` and
``horizon``) or nothing. Names are matched case-insensitively. :func:`list_builtin` feeds
``archsearch datasets``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from archsearch.data import real, synthetic
from archsearch.data.dataset import SequenceDataset
from archsearch.errors import DataError

# Kept importable from here for existing callers.
adding_problem = synthetic.adding_problem


@dataclass(frozen=True)
class BuiltinTask:
    name: str
    description: str  # one line, for `archsearch datasets`
    generate: Callable[..., SequenceDataset]
    defaults: dict[str, int] = field(default_factory=dict)
    requires: str | None = None  # the PyPI package that ships the data, if not a core dependency
    synthetic: bool = False  # drawn by a generator (any length, size, seed), not recorded data

    @property
    def available(self) -> bool:
        """Whether it loads here: the package that ships its data (if any) is installed."""
        return self.requires is None or real.package_installed(self.requires)


# The parameters whose range is not "a positive integer": (lowest, highest or None).
PARAMETER_RANGES = {"seed": (0, None), "noise": (0, 100), "vocab": (2, 64)}
MAX_LENGTH_X_N = 10_000_000
MAX_LENGTH_X_N_X_VOCAB = 16 * MAX_LENGTH_X_N  # the widest task's default vocabulary, at the most


def _with_noise(generate: Callable[..., SequenceDataset]) -> Callable[..., SequenceDataset]:
    """A synthetic generator that also takes ``noise`` (percent of noisy targets)."""
    def noisy(noise: int = 0, **parameters: int) -> SequenceDataset:
        return synthetic.with_target_noise(generate(**parameters), noise,
                                           parameters.get("seed", 0))
    return noisy


def _generated(name: str, description: str, generate: Callable[..., SequenceDataset],
               length: int, vocab: int | None = None) -> BuiltinTask:
    """A synthetic task: ``generate`` with ``noise``, at these default length and vocabulary."""
    defaults = {"length": length, "n": 2000, "seed": 0, "noise": 0,
                **({"vocab": vocab} if vocab else {})}
    return BuiltinTask(name, description, _with_noise(generate), defaults, synthetic=True)


BUILTIN_TASKS: dict[str, BuiltinTask] = {
    task.name: task
    for task in [
        _generated("adding",
                   "Adding problem: regress the sum of two marked values in a long sequence.",
                   synthetic.adding_problem, 100),
        _generated("copy_memory",
                   "Copy memory: recall one of 8 symbols seen at the start, after a long delay.",
                   synthetic.copy_memory, 64, synthetic.COPY_ALPHABET),
        _generated("selective_copying",
                   "Selective copying (Mamba): recall the j-th of 8 symbols scattered in noise.",
                   synthetic.selective_copying, 64, synthetic.COPY_ALPHABET),
        _generated("associative_recall",
                   "Associative recall: return the value bound to the queried key.",
                   synthetic.associative_recall, 64, synthetic.RECALL_VOCAB),
        _generated("induction_heads",
                   "Induction heads: after 'S t ... S' predict t.",
                   synthetic.induction_heads, 64, synthetic.INDUCTION_VOCAB),
        _generated("listops",
                   "ListOps-style nested MAX/MIN/MED/SM over digits; ragged, 10 classes.",
                   synthetic.listops, 64),
        _generated("parity",
                   "Parity of a random bit string (2 classes).",
                   synthetic.parity, 32),
        BuiltinTask("digits",
                    "scikit-learn digits, 8 steps of 8 pixels (steps=8) or 64 steps of 1.",
                    real.digits, {"steps": 8}),
        BuiltinTask("sunspots",
                    "Yearly sunspot numbers 1700-2008, forecasting (statsmodels).",
                    real.sunspots, {"lookback": 22, "horizon": 1}, requires="statsmodels"),
        BuiltinTask("co2",
                    "Weekly Mauna Loa CO2 1958-2001, forecasting (statsmodels).",
                    real.co2, {"lookback": 52, "horizon": 1}, requires="statsmodels"),
        BuiltinTask("gunpoint",
                    "UCR GunPoint: 2 classes, 150 steps, official 50/150 split (aeon).",
                    real.gunpoint, requires="aeon"),
        BuiltinTask("italypowerdemand",
                    "UCR ItalyPowerDemand: 2 classes, 24 steps, official 67/1029 split (aeon).",
                    real.italy_power_demand, requires="aeon"),
        BuiltinTask("japanesevowels",
                    "UEA JapaneseVowels: 9 speakers, 12 channels, ragged, 270/370 split (aeon).",
                    real.japanese_vowels, requires="aeon"),
        BuiltinTask("pickupgesturewiimotez",
                    "UCR PickupGestureWiimoteZ: 10 gestures, ragged <= 361 steps, 50/50 (aeon).",
                    real.pickup_gesture_wiimote_z, requires="aeon"),
        BuiltinTask("covid3month",
                    "Covid3Month: regression, 84 daily steps, official 140/61 split (aeon).",
                    real.covid3month, requires="aeon"),
        BuiltinTask("cardanosentiment",
                    "CardanoSentiment: regression, 24 steps x 2 channels, 74/33 split (aeon).",
                    real.cardano_sentiment, requires="aeon"),
        # Three more of the sets aeon ships; like CardanoSentiment they stay out of the
        # knowledge base's corpus and all tuning (its unseen sets, docs/knowledge-base.md).
        BuiltinTask("arrowhead",
                    "UCR ArrowHead: 3 classes, 251 steps, official 36/175 split (aeon).",
                    real.arrow_head, requires="aeon"),
        BuiltinTask("basicmotions",
                    "UEA BasicMotions: 4 activities, 100 steps x 6 channels, 40/40 split (aeon).",
                    real.basic_motions, requires="aeon"),
        BuiltinTask("osuleaf",
                    "UCR OSULeaf: 6 species, 427 steps, official 200/242 split (aeon).",
                    real.osu_leaf, requires="aeon"),
    ]
}


def list_builtin() -> list[tuple[str, str]]:
    """(name, one-line description) of every built-in data set, in a stable order."""
    return [(task.name, task.description) for task in BUILTIN_TASKS.values()]


def builtin_name(source: str) -> str:
    """The data set's name in a ``builtin:NAME?key=value&...`` source (lower case)."""
    return source.removeprefix("builtin:").partition("?")[0].strip().lower()


def is_synthetic(source: str) -> bool:
    """Whether a ``builtin:`` source is drawn by a generator, not recorded data."""
    task = BUILTIN_TASKS.get(builtin_name(source))
    return task is not None and task.synthetic


def builtin_parameters(spec: str) -> tuple[BuiltinTask, dict[str, int]]:
    """The task of ``NAME?key=value&...`` (``builtin:`` optional) and its parameters, the
    defaults updated by the query, every one checked (DataError names what is wrong)."""
    name, _, query = spec.removeprefix("builtin:").partition("?")
    task = BUILTIN_TASKS.get(builtin_name(name))
    if task is None:
        known = ", ".join(BUILTIN_TASKS)
        raise DataError(f"unknown built-in data set '{name}'; built-in data sets: {known} "
                        "(`archsearch datasets` lists them).")
    kwargs = dict(task.defaults)
    seen = set()
    for item in filter(None, query.split("&")):
        key, sep, raw = item.partition("=")
        if not sep or key not in task.defaults:
            known = ", ".join(task.defaults) or "none"
            raise DataError(f"builtin:{task.name} got '{item}'; it takes key=value parameters "
                            f"among: {known}.")
        if key in seen:
            raise DataError(f"builtin:{task.name} got the parameter {key} twice.")
        seen.add(key)
        try:
            kwargs[key] = int(raw)
        except ValueError:
            raise DataError(f"builtin:{task.name} parameter {key} must be an integer, not "
                            f"'{raw}'.") from None
        lowest, highest = PARAMETER_RANGES.get(key, (1, None))
        if kwargs[key] < lowest or (highest is not None and kwargs[key] > highest):
            allowed = (f"between {lowest} and {highest}" if highest is not None
                       else "non-negative" if lowest == 0 else "positive")
            raise DataError(f"builtin:{task.name} parameter {key} must be {allowed}, not {raw}.")
    return task, kwargs


def load_builtin(spec: str) -> SequenceDataset:
    """Build ``NAME?key=value&...`` (the part after ``builtin:``)."""
    task, kwargs = builtin_parameters(spec)
    size = kwargs.get("length", 1) * kwargs.get("n", 1)
    if size > MAX_LENGTH_X_N or size * kwargs.get("vocab", 1) > MAX_LENGTH_X_N_X_VOCAB:
        raise DataError(f"builtin:{task.name} with length={kwargs['length']} and n={kwargs['n']}"
                        + (f" and vocab={kwargs['vocab']}" if "vocab" in kwargs else "")
                        + f" is too large (length x n must stay below {MAX_LENGTH_X_N:,}, and "
                        f"length x n x vocab below {MAX_LENGTH_X_N_X_VOCAB:,}).")
    return task.generate(**kwargs)
