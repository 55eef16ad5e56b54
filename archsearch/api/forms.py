"""A request's form fields and files -> what the workflow takes: options parsed, constraints
checked, uploads saved under names the server chooses."""

from __future__ import annotations

import shutil
import uuid
from pathlib import Path
from typing import Any

from fastapi import UploadFile
from pydantic import BaseModel, ValidationError

from archsearch.api.problems import HttpProblem, paragraph
from archsearch.data import SUPPORTED_EXTENSIONS
from archsearch.space import default_space_path
from archsearch.types import Constraints


class Uploads:
    """The files of one request, stored under names the server chooses (the client's file name
    is never used as a path); error messages name them as the client did."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder.resolve()  # stored with the task: the driver must find it anywhere
        self.client_names: dict[Path, str] = {}

    def save(self, upload: UploadFile, suffix: str) -> Path:
        self.folder.mkdir(parents=True, exist_ok=True)
        path = self.folder / f"{uuid.uuid4().hex}{suffix}"
        with open(path, "xb") as out:
            shutil.copyfileobj(upload.file, out, 1 << 20)
        self.client_names[path] = Path(upload.filename or "upload").name[:200]
        return path

    def in_client_names(self, message: str) -> str:
        for path, name in self.client_names.items():
            message = message.replace(str(path), name).replace(path.name, name)
        return message

    def discard(self) -> None:
        for path in self.client_names:
            path.unlink(missing_ok=True)


def parse_options(model: type[BaseModel], text: str) -> Any:
    try:
        return model.model_validate_json(text or "{}")
    except ValidationError as exc:
        raise HttpProblem(422, "options: " + paragraph(exc.errors())) from None


def parse_constraints(values: dict[str, Any]) -> Constraints:
    text = {key: str(value).lower() if isinstance(value, bool) else str(value)
            for key, value in values.items()}
    return Constraints.parse([f"{key}={value}" for key, value in text.items()])


def data_source(upload: UploadFile | None, builtin: str | None, saved: Uploads) -> str:
    """What the data layer loads: a built-in data set, or the upload saved under a server-chosen
    name."""
    if (upload is None) == (builtin is None):
        raise HttpProblem(422, "give either a dataset file or a builtin data set "
                               "(builtin:NAME[?key=value&...]), not both and not neither.")
    if builtin is not None:
        if not builtin.startswith("builtin:"):
            raise HttpProblem(422, f"builtin: '{builtin[:80]}' does not start with 'builtin:'; "
                                   "upload files as the dataset field.")
        return builtin
    return str(saved.save(upload, _data_suffix(upload.filename)))


def search_space(name: str | None, upload: UploadFile | None, saved: Uploads) -> str | None:
    """The search-space file: an uploaded YAML, a space shipped with the server, or None (the
    default)."""
    if upload is not None and name is not None:
        raise HttpProblem(422, "give either options.space (a shipped space) or a space file, "
                               "not both.")
    if upload is not None:
        return str(saved.save(upload, ".yaml"))
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
