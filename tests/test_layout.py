"""The house's rooms: Ray behind one adapter, the faces (CLI, API) loading neither Ray nor
Optuna until a search runs, the instant recommendation loading no torch, and a trial worker
loading no scikit-learn."""

import re
import subprocess
import sys
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "archsearch"
IMPORTS_RAY = re.compile(r"^\s*(import ray\b|from ray\b)", re.MULTILINE)


def test_only_the_ray_adapter_imports_ray():
    importers = {path.relative_to(PACKAGE).as_posix() for path in PACKAGE.rglob("*.py")
                 if IMPORTS_RAY.search(path.read_text(encoding="utf-8"))}
    assert importers and all(p.startswith("search/ray_backend/") for p in importers), importers


def _printed_by(probe: str) -> str:
    """What ``probe`` prints, run in a fresh interpreter (nothing imported yet)."""
    return subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                          check=True).stdout.strip()


def test_the_api_and_the_cli_load_neither_ray_nor_optuna():
    loaded = _printed_by("import sys, archsearch.api.app, archsearch.cli, archsearch.workflow; "
                         "print(sorted(m for m in ('ray', 'optuna') if m in sys.modules))")
    assert loaded == "[]"


def test_the_instant_recommendation_loads_neither_torch_nor_scikit_learn():
    # Each import would cost `archsearch recommend` seconds of its 5 (issue 12): torch's a
    # third, scikit-learn's (with SciPy's statistics) more than the answer itself.
    loaded = _printed_by("import sys; from archsearch.recommend import advise; "
                         "advise('builtin:italypowerdemand'); "
                         "print(sorted(m for m in ('torch', 'sklearn', 'scipy') "
                         "if m in sys.modules))")
    assert loaded == "[]"


def test_a_trial_worker_loads_no_scikit_learn():
    # Every Ray worker that runs a trial imports the trainable's module: scikit-learn (with
    # SciPy) was over a second of each worker's start, for the ridge readout and the folds
    # that import it where they run.
    loaded = _printed_by("import sys, archsearch.search.ray_backend.tune_parts; "
                         "print(sorted(m for m in ('sklearn', 'scipy') if m in sys.modules))")
    assert loaded == "[]"
