"""Export the chosen model next to the report: weights, config, TorchScript, a load snippet."""

from __future__ import annotations

import json
import shutil
import warnings
from pathlib import Path
from typing import Any

import torch

from archsearch.blocks import build_bag, build_model
from archsearch.types import ArchConfig, ModelIO

LOAD_SNIPPET = '''import json, torch
from archsearch.blocks import build_bag, build_model
from archsearch.types import ArchConfig, ModelIO, TaskKind

cfg = json.load(open("config.json"))
io = ModelIO(**{**cfg["io"], "task": TaskKind(cfg["io"]["task"])})
arch = ArchConfig(cfg["arch"]["family"], cfg["arch"]["hparams"])
# bag_members > 0: the fold models of a cross-validated pick, predicting as their mean
model = build_bag(arch, io, cfg["bag_members"]) if cfg["bag_members"] else build_model(arch, io)
model.load_state_dict(torch.load("state_dict.pt"))
model.eval()
# Or, without archsearch installed (when model.torchscript.pt exists):
# model = torch.jit.load("model.torchscript.pt")
# x: (batch, time, features), normalised per channel as in training (see config.json)
'''


def export_model(checkpoint_file: Path, arch: ArchConfig, io: ModelIO, out_dir: Path,
                 extra: dict[str, Any], bag_members: int = 0) -> dict[str, str]:
    """Write the model's files into ``out_dir``; returns name -> path of what was written.
    With ``bag_members`` the checkpoint holds a :class:`~archsearch.blocks.Bag` of that many
    models of ``arch``."""
    out_dir.mkdir(parents=True, exist_ok=True)
    written = {}
    state_path = out_dir / "state_dict.pt"
    shutil.copyfile(checkpoint_file, state_path)
    written["state_dict"] = str(state_path)
    config = {"arch": {"family": arch.family, "hparams": dict(arch.hparams)},
              "io": {**io.__dict__, "task": io.task.value}, "bag_members": bag_members, **extra}
    config_path = out_dir / "config.json"
    config_path.write_text(json.dumps(config, indent=2, default=str), encoding="utf-8")
    written["config"] = str(config_path)
    model = build_bag(arch, io, bag_members) if bag_members else build_model(arch, io)
    model.load_state_dict(torch.load(state_path, map_location="cpu"))
    model.eval()
    example = torch.zeros(1, io.max_len, io.n_features)
    try:
        # The traced graph takes full-length (1.., T, F) input, the common deployment shape;
        # ragged batches need the eager model (the warning says as much).
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore", torch.jit.TracerWarning)
            traced = torch.jit.trace(model, (example,), check_trace=False)
        script_path = out_dir / "model.torchscript.pt"
        traced.save(str(script_path))
        written["torchscript"] = str(script_path)
    except Exception as exc:  # noqa: BLE001  (tracing is a convenience; weights are the export)
        written["torchscript_error"] = f"{type(exc).__name__}: {exc}"[:300]
    snippet_path = out_dir / "load_model.py"
    snippet_path.write_text(LOAD_SNIPPET, encoding="utf-8")
    written["snippet"] = str(snippet_path)
    return written

