"""Real data sets that PyPI packages ship inside their wheels, read offline.

- scikit-learn's digits (a core dependency).
- statsmodels' yearly sunspots and weekly Mauna Loa CO2 series (forecasting).
- The UCR/UEA archive's GunPoint, ItalyPowerDemand, JapaneseVowels, ArrowHead, BasicMotions
  and OSULeaf, with their official train/test splits, from the ``.ts`` files that aeon (a core
  dependency; or sktime) ships;
  PickupGestureWiimoteZ (classification) and CardanoSentiment (regression), which aeon alone
  ships; and the Monash/UEA regression set Covid3Month.

The statsmodels, aeon and sktime packages are not imported here: their data files are located
with :func:`importlib.util.find_spec` and parsed here, so a ``pip install --no-deps`` of them is
enough. A missing package raises :class:`DataError` naming what to install.
"""

from __future__ import annotations

import importlib.util
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd

from archsearch.data.dataset import SequenceDataset
from archsearch.data.options import LoadOptions
from archsearch.data.tabular import forecast_from_frame
from archsearch.data.validate import encode_labels, quote, reason_of
from archsearch.errors import DataError
from archsearch.types import TaskKind

INSTALL_HINT = "pip install 'archsearch[datasets]'"
UCR_PACKAGES = ("aeon", "sktime")


def _package_dir(package: str) -> Path | None:
    try:
        spec = importlib.util.find_spec(package)
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)))


def package_installed(package: str) -> bool:
    """Whether ``package`` is installed; for the UCR/UEA sets aeon or sktime will do."""
    alternatives = UCR_PACKAGES if package in UCR_PACKAGES else (package,)
    return any(_package_dir(name) is not None for name in alternatives)


def _package_file(packages: tuple[str, ...], relative: str, builtin: str) -> Path:
    """The first of ``packages`` that ships ``relative``; a DataError naming them if none does."""
    for package in packages:
        root = _package_dir(package)
        if root is not None and (root / relative).is_file():
            return root / relative
    names = " or ".join(packages)
    raise DataError(f"builtin:{builtin} reads its data from the {names} package, which is not "
                    f"installed (or does not ship {relative}); install it with {INSTALL_HINT} "
                    f"(or pip install --no-deps {packages[0]}).")


# --------------------------------------------------------------------------- scikit-learn


def digits(steps: int = 8) -> SequenceDataset:
    """scikit-learn's 8x8 handwritten digits (1797 images, 10 classes) as sequences: 8 steps of
    one image row (8 channels) or 64 steps of one pixel (1 channel)."""
    if steps not in (8, 64):
        raise DataError(f"builtin:digits takes steps=8 (one row per step) or steps=64 (one pixel "
                        f"per step), not {steps}.")
    from sklearn.datasets import load_digits

    bunch = load_digits()
    images = np.asarray(bunch.images, dtype=np.float32)  # (1797, 8, 8)
    X = images if steps == 8 else images.reshape(len(images), 64, 1)
    names = tuple(f"col{i}" for i in range(8)) if steps == 8 else ("pixel",)
    return SequenceDataset(
        name=f"digits(steps={steps})", task=TaskKind.CLASSIFICATION, X=X,
        y=np.asarray(bunch.target, dtype=np.int64), feature_names=names,
        class_names=tuple(str(d) for d in range(10)), target_name="digit")


# --------------------------------------------------------------------------- statsmodels


def sunspots(lookback: int = 22, horizon: int = 1) -> SequenceDataset:
    """Yearly mean sunspot numbers 1700-2008 (309 steps; the ~11-year cycle), from statsmodels."""
    path = _package_file(("statsmodels",), "datasets/sunspots/sunspots.csv", "sunspots")
    frame = _read_csv(path, "sunspots")
    options = LoadOptions(task=TaskKind.FORECAST, time_column="YEAR", target="SUNACTIVITY",
                          lookback=lookback, horizon=horizon)
    return _renamed(forecast_from_frame(frame, "sunspots", options),
                    f"sunspots(lookback={lookback}, horizon={horizon})")


def co2(lookback: int = 52, horizon: int = 1) -> SequenceDataset:
    """Weekly atmospheric CO2 at Mauna Loa 1958-2001 (2284 steps, yearly season), from
    statsmodels; its 59 missing weeks are forward-filled (counted in ``n_missing``)."""
    path = _package_file(("statsmodels",), "datasets/co2/co2.csv", "co2")
    frame = _read_csv(path, "co2")
    options = LoadOptions(task=TaskKind.FORECAST, time_column="date", target="co2",
                          lookback=lookback, horizon=horizon, impute="ffill")
    return _renamed(forecast_from_frame(frame, "co2", options),
                    f"co2(lookback={lookback}, horizon={horizon})")


def _read_csv(path: Path, builtin: str) -> pd.DataFrame:
    try:
        return pd.read_csv(path)
    except Exception as exc:  # noqa: BLE001 - a damaged installation
        raise DataError(f"builtin:{builtin}: cannot read {path} ({reason_of(exc)}); reinstall "
                        "the package that ships it.") from None


def _renamed(dataset: SequenceDataset, name: str) -> SequenceDataset:
    return replace(dataset, name=name)


# --------------------------------------------------------------------------- UCR / UEA (.ts)


def read_ts(path: Path) -> tuple[list[np.ndarray], np.ndarray]:
    """Parse a sktime/aeon ``.ts`` file: (list of (length_i, channels) arrays, string labels).

    Header lines start with ``@`` (``@data`` ends them), ``#`` lines are comments; each data
    line holds the channels separated by ``:`` (values by ``,``, ``?`` for missing) and ends with
    the class label.
    """
    where = quote(path.name)
    series, labels = [], []
    in_data, has_labels = False, True
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise DataError(f"cannot read {where} ({reason_of(exc)}).") from None
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if not in_data:
            lowered = line.lower()
            if lowered.startswith("@classlabel"):
                has_labels = lowered.split()[1:2] == ["true"]
            elif lowered.startswith("@data"):
                in_data = True
            continue
        parts = line.split(":")
        if has_labels:
            parts, label = parts[:-1], parts[-1].strip()
            labels.append(label)
        try:
            channels = [np.array([np.nan if v.strip() == "?" else float(v)
                                  for v in part.split(",")], dtype=np.float32) for part in parts]
        except ValueError as exc:
            raise DataError(f"{where} line {number}: {reason_of(exc)}.") from None
        if len({len(c) for c in channels}) != 1:
            raise DataError(f"{where} line {number}: the channels have different lengths.")
        series.append(np.stack(channels, axis=-1))  # (length, channels)
    if not series or not has_labels:
        raise DataError(f"{where} holds no labelled series.")
    if len({s.shape[1] for s in series}) != 1:
        raise DataError(f"{where}: the series have different numbers of channels.")
    return series, np.asarray(labels, dtype=str)


def _pad(series: list[np.ndarray], T: int) -> tuple[np.ndarray, np.ndarray]:
    X = np.zeros((len(series), T, series[0].shape[1]), dtype=np.float32)
    lengths = np.array([len(s) for s in series], dtype=np.int64)
    for i, s in enumerate(series):
        X[i, :len(s)] = s
    return X, lengths


def ucr(problem: str, packages: tuple[str, ...] = UCR_PACKAGES,
        task: TaskKind = TaskKind.CLASSIFICATION) -> SequenceDataset:
    """A UCR/UEA (or Monash regression) problem with its official train/test split (the test
    split is used as-is); ``task`` regression reads the label column as a number."""
    builtin = problem.lower()
    train_path = _package_file(packages, f"datasets/data/{problem}/{problem}_TRAIN.ts",
                               builtin)
    test_path = train_path.with_name(f"{problem}_TEST.ts")
    train, y = read_ts(train_path)
    test, y_test = read_ts(test_path)
    T = max(len(s) for s in train + test)
    X, lengths = _pad(train, T)
    X_test, lengths_test = _pad(test, T)
    if np.isnan(X).any() or np.isnan(X_test).any():
        raise DataError(f"builtin:{builtin}: the shipped data holds missing values.")
    ragged = bool((lengths < T).any() or (lengths_test < T).any())
    F = X.shape[2]
    if task is TaskKind.REGRESSION:
        targets = {"y": y.astype(np.float32), "y_test": y_test.astype(np.float32),
                   "class_names": None}
    else:
        y_idx, y_test_idx, class_names = encode_labels(y, f"builtin:{builtin}", y_test)
        targets = {"y": y_idx, "y_test": y_test_idx, "class_names": class_names}
    return SequenceDataset(
        name=problem, task=task, X=X, lengths=lengths if ragged else None, X_test=X_test,
        lengths_test=lengths_test if ragged else None,
        feature_names=("value",) if F == 1 else tuple(f"dim{i}" for i in range(F)),
        target_name="class" if task is TaskKind.CLASSIFICATION else "target", **targets)


def gunpoint() -> SequenceDataset:
    """GunPoint (UCR): 50 train / 150 test motion series of 150 steps, 2 classes."""
    return ucr("GunPoint")


def italy_power_demand() -> SequenceDataset:
    """ItalyPowerDemand (UCR): 67 train / 1029 test daily load curves of 24 steps, 2 classes."""
    return ucr("ItalyPowerDemand")


def pickup_gesture_wiimote_z() -> SequenceDataset:
    """PickupGestureWiimoteZ (UCR 2018): 50 train / 50 test Wiimote z-acceleration series,
    ragged 29-361 steps, 10 gestures (aeon)."""
    return ucr("PickupGestureWiimoteZ", ("aeon",))  # sktime does not ship it


def covid3month() -> SequenceDataset:
    """Covid3Month (Monash regression archive): 140 train / 61 test series of 84 daily case
    counts; the target is the death rate a month later."""
    return ucr("Covid3Month", task=TaskKind.REGRESSION)


def cardano_sentiment() -> SequenceDataset:
    """CardanoSentiment (aeon's regression sets): 74 train / 33 test days of 24 hourly
    (price, volume) steps; the target is the next day's sentiment score (aeon)."""
    return ucr("CardanoSentiment", ("aeon",), TaskKind.REGRESSION)


def arrow_head() -> SequenceDataset:
    """ArrowHead (UCR): 36 train / 175 test outlines of arrowheads as 251-step series, 3
    classes."""
    return ucr("ArrowHead")


def basic_motions() -> SequenceDataset:
    """BasicMotions (UEA): 40 train / 40 test, 100 steps of a watch's 3-axis accelerometer and
    gyroscope (6 channels), 4 activities."""
    return ucr("BasicMotions")


def osu_leaf() -> SequenceDataset:
    """OSULeaf (UCR): 200 train / 242 test leaf outlines as 427-step series, 6 species."""
    return ucr("OSULeaf")


def japanese_vowels() -> SequenceDataset:
    """JapaneseVowels (UEA): 270 train / 370 test, 12 LPC channels, ragged 7-29 steps, 9
    speakers."""
    return ucr("JapaneseVowels")
