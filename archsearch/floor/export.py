"""Export the floor model next to the report (when it is the answer), loadable without
archsearch: a joblib file of a scikit-learn pipeline, a JSON of how to feed it, a snippet."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import joblib

from archsearch.floor.model import FloorModel
from archsearch.types import FloorResult

MODEL_FILE = "floor_model.joblib"
CONFIG_FILE = "floor_config.json"
SNIPPET_FILE = "load_floor.py"

LOAD_FLOOR_SNIPPET = '''import json
import joblib  # needs aeon and scikit-learn installed (archsearch is not needed)
import numpy as np

cfg = json.load(open("floor_config.json"))
pipeline = joblib.load("floor_model.joblib")  # features -> StandardScaler -> ridge


def predict(x):
    """x: (batch, time, channels), normalised per channel as in training; shorter series
    zero-padded at the end, longer ones cut, to cfg["input"]["length"] steps."""
    x = np.asarray(x, dtype=np.float64).transpose(0, 2, 1)
    length = cfg["input"]["length"]
    x = np.pad(x[:, :, :length], ((0, 0), (0, 0), (0, max(0, length - x.shape[2]))))
    return pipeline.predict(x)  # class index | target | horizon * channels (horizon-major)
'''


def export_floor(model: FloorModel, floor: FloorResult, out_dir: Path,
                 extra: dict[str, Any]) -> dict[str, str]:
    """Write the fitted floor into ``out_dir``; returns name -> path of what was written."""
    out_dir.mkdir(parents=True, exist_ok=True)
    model_path = out_dir / MODEL_FILE
    joblib.dump(model.pipeline_, model_path)
    config = {
        "method": floor.method, "task": model.task, "n_kernels": model.n_kernels,
        "seed": model.seed,
        "input": {"layout": "the pipeline takes (batch, channels, time) float64; "
                            "load_floor.predict takes (batch, time, channels)",
                  "length": model.length_,
                  "channels": model.n_channels_},
        "output": ("class index" if model.task == "classification"
                   else "target (horizon * channels, horizon-major, standardised per channel "
                        "when forecasting)"),
        "floor": dataclasses.asdict(floor), **extra,
    }
    config_path = out_dir / CONFIG_FILE
    config_path.write_text(json.dumps(config, indent=2, default=str), encoding="utf-8")
    snippet_path = out_dir / SNIPPET_FILE
    snippet_path.write_text(LOAD_FLOOR_SNIPPET, encoding="utf-8")
    return {"floor_model": str(model_path), "floor_config": str(config_path),
            "load_floor": str(snippet_path)}
