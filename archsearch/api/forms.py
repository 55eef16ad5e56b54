"""A request's form fields and files -> what the workflow takes: the fields each route reads,
options parsed, constraints checked, the data source and the search space chosen."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from archsearch.api.form_stream import FormField
from archsearch.api.problems import HttpProblem, paragraph
from archsearch.data import SUPPORTED_EXTENSIONS
from archsearch.space import default_space_path
from archsearch.types import Constraints


def parse_options(model: type[BaseModel], text: str) -> Any:
    try:
        return model.model_validate_json(text or "{}")
    except ValidationError as exc:
        raise HttpProblem(422, "options: " + paragraph(exc.errors())) from None


def parse_constraints(values: dict[str, Any]) -> Constraints:
    text = {key: str(value).lower() if isinstance(value, bool) else str(value)
            for key, value in values.items()}
    return Constraints.parse([f"{key}={value}" for key, value in text.items()])


def data_source(upload: Path | None, builtin: str | None) -> str:
    """What the data layer loads: a built-in data set, or the uploaded file (saved under a
    server-chosen name)."""
    if (upload is None) == (builtin is None):
        raise HttpProblem(422, "give either a dataset file or a builtin data set "
                               "(builtin:NAME[?key=value&...]), not both and not neither.")
    if builtin is not None:
        if not builtin.startswith("builtin:"):
            raise HttpProblem(422, f"builtin: '{builtin[:80]}' does not start with 'builtin:'; "
                                   "upload files as the dataset field.")
        return builtin
    return str(upload)


def search_space(name: str | None, upload: Path | None) -> str | None:
    """The search-space file: an uploaded YAML, a space shipped with the server, or None (the
    default)."""
    if upload is not None and name is not None:
        raise HttpProblem(422, "give either options.space (a shipped space) or a space file, "
                               "not both.")
    if upload is not None:
        return str(upload)
    if name is None:
        return None
    shipped = default_space_path().parent
    path = shipped / f"{name}.yaml"
    if not path.is_file():
        known = ", ".join(sorted(p.stem for p in shipped.glob("*.yaml")))
        raise HttpProblem(422, f"options.space: no search space '{name}' on this server; "
                               f"shipped: {known}. Or upload your own as the space file.")
    return str(path)


def _data_suffix(filename: str | None) -> str:
    """The upload's format, from the end of its name alone: the name is never used as a path."""
    name = (filename or "").lower()
    for suffix in sorted(SUPPORTED_EXTENSIONS, key=len, reverse=True):
        if name.endswith(suffix):
            return suffix
    raise HttpProblem(422, f"dataset: the file name must end in one of "
                           f"{', '.join(SUPPORTED_EXTENSIONS)} (it says which format it is).")


BUILTIN = FormField("instead of a file: a built-in data set, builtin:NAME[?key=value&...]",
                    max_length=500)
TASK_FORM = {
    "dataset": FormField("the data set: .npz, .csv, .tsv (optionally .gz), .parquet",
                         suffix=_data_suffix),
    "builtin": BUILTIN,
    "options": FormField("TaskOptions as JSON", default="{}"),
    "space": FormField("a search-space YAML (instead of options.space)",
                       suffix=lambda _: ".yaml"),
}
RECOMMEND_FORM = {
    "dataset": FormField("the data set (as for POST /tasks)", suffix=_data_suffix),
    "builtin": BUILTIN,
    "options": FormField("RecommendOptions as JSON", default="{}"),
}
