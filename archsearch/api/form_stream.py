"""A form body read as it arrives: each file written once, straight to its place in the upload
folder, and the body limit (the BodyLimit middleware) counted on the same reads.

FastAPI's own form parsing spools every file part to a temporary file first (in memory up to
1 MiB, then in the system's temporary folder), and a route would copy it from there: every
upload written twice, once outside the server's folders. Here a file part is written, in the
pieces the client sends, to ``DATA_DIR/uploads/<random name><suffix>``; the suffix is decided
from the client's file name before the first byte is written (a file of a format archsearch
does not read is refused then), and the client's name is never a path. Text fields are short
(options as JSON, a built-in data set's name), few and kept in memory.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO
from urllib.parse import parse_qsl

from fastapi import Request
from python_multipart.exceptions import FormParserError
from python_multipart.multipart import MultipartParser, parse_options_header
from starlette.concurrency import run_in_threadpool

from archsearch.api.problems import HttpProblem

MAX_TEXT_BYTES = 64 * 1024  # a text field (options as JSON) at most


@dataclass(frozen=True)
class FormField:
    """A field a route accepts: a file when ``suffix`` is given (the file's suffix on disk, from
    the client's file name, or HttpProblem), else text of at most ``max_length`` characters."""

    description: str
    suffix: Callable[[str | None], str] | None = None
    max_length: int = MAX_TEXT_BYTES
    default: str | None = None


@dataclass
class Form:
    """The fields of one request: text values, and the paths the files were written to."""

    text: dict[str, str] = field(default_factory=dict)
    files: dict[str, Path] = field(default_factory=dict)


class Uploads:
    """The files of one request, stored under names the server chooses (the client's file name
    is never used as a path); error messages name them as the client did."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder.resolve()  # stored with the task: the driver must find it anywhere
        self.client_names: dict[Path, str] = {}

    def create(self, client_name: str | None, suffix: str) -> tuple[Path, BinaryIO]:
        """A new upload file, open for writing (recorded first, so :meth:`discard` removes it
        however its writing ends)."""
        self.folder.mkdir(parents=True, exist_ok=True)
        path = self.folder / f"{uuid.uuid4().hex}{suffix}"
        self.client_names[path] = Path(client_name or "upload").name[:200]
        return path, open(path, "xb")  # noqa: SIM115  (closed by the reader, on every end)

    def in_client_names(self, message: str) -> str:
        for path, name in self.client_names.items():
            message = message.replace(str(path), name).replace(path.name, name)
        return message

    def discard(self) -> None:
        for path in self.client_names:
            path.unlink(missing_ok=True)


def openapi_form(fields: dict[str, FormField]) -> dict[str, Any]:
    """The request body of a route that reads ``fields`` (for ``openapi_extra``): what FastAPI
    would document for the same fields as File and Form parameters."""
    properties = {}
    for name, spec in fields.items():
        kind = ({"type": "string", "contentMediaType": "application/octet-stream"}
                if spec.suffix else {"type": "string", "maxLength": spec.max_length})
        properties[name] = {**kind, "description": spec.description,
                            **({"default": spec.default} if spec.default is not None else {})}
    schema = {"type": "object", "properties": properties}
    return {"requestBody": {"content": {"multipart/form-data": {"schema": schema}}}}


async def read_form(request: Request, fields: dict[str, FormField], saved: Uploads) -> Form:
    """Read the request's body as a form of ``fields`` (multipart/form-data; url-encoded text
    fields too), files written to ``saved`` as they arrive. On any failure (a refused field, a
    body over the limit, a client gone) nothing is kept."""
    kind, params = parse_options_header(request.headers.get("content-type", ""))
    form = Form()
    try:
        if kind == b"multipart/form-data":
            await _read_multipart(request, params.get(b"boundary"), fields, saved, form)
        elif kind == b"application/x-www-form-urlencoded":
            await _read_urlencoded(request, fields, form)
        elif kind or await _any_body(request):
            raise HttpProblem(422, "send the fields as multipart/form-data (files and text) "
                                   "or application/x-www-form-urlencoded (text only).")
    except BaseException:
        saved.discard()
        raise
    for name, spec in fields.items():
        if spec.default is not None:
            form.text.setdefault(name, spec.default)
    return form


async def _any_body(request: Request) -> bool:
    async for chunk in request.stream():
        if chunk:
            return True
    return False


def _text(name: str, value: bytes, fields: dict[str, FormField], form: Form) -> None:
    spec = fields.get(name)
    if spec is None or spec.suffix is not None:
        raise HttpProblem(422, _unknown(name, fields, "text"))
    if name in form.text:
        raise HttpProblem(422, f"the field '{name}' is given twice.")
    try:
        text = value.decode("utf-8")
    except UnicodeDecodeError:
        raise HttpProblem(422, f"the field '{name}' is not UTF-8 text.") from None
    if len(text) > spec.max_length:
        raise HttpProblem(422, f"the field '{name}' has {len(text)} characters; at most "
                               f"{spec.max_length}.")
    form.text[name] = text


def _unknown(name: str, fields: dict[str, FormField], kind: str) -> str:
    expected = ", ".join(f"{n} ({'file' if s.suffix else 'text'})" for n, s in fields.items())
    return f"no {kind} field '{name[:80]}' here; the fields are: {expected}."


async def _read_urlencoded(request: Request, fields: dict[str, FormField], form: Form) -> None:
    body, limit = bytearray(), MAX_TEXT_BYTES * len(fields)
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise HttpProblem(422, f"url-encoded fields of more than {limit} bytes; send "
                                   "files as multipart/form-data.")
    try:
        pairs = parse_qsl(body.decode("ascii"), keep_blank_values=True, strict_parsing=False,
                          encoding="utf-8", errors="strict")
    except UnicodeError:
        raise HttpProblem(422, "the url-encoded fields are not UTF-8 text.") from None
    for name, value in pairs:
        _text(name, value.encode("utf-8"), fields, form)


class _PartReader:
    """python-multipart's callbacks for one body: a text part is gathered in memory, a file
    part's pieces are queued for the writer (file writes run in a thread, not in these
    callbacks on the event loop)."""

    def __init__(self, fields: dict[str, FormField], saved: Uploads, form: Form) -> None:
        self.fields, self.saved, self.form = fields, saved, form
        self.header_name, self.header_value = bytearray(), bytearray()
        self.disposition = b""
        self.text: bytearray | None = None
        self.file: BinaryIO | None = None
        self.name = ""
        self.pending: list[tuple[BinaryIO, bytes]] = []  # pieces to write, in order
        self.finished: list[BinaryIO] = []  # files whose last piece is queued
        self.open_files: list[BinaryIO] = []

    def callbacks(self) -> dict[str, Callable[..., None]]:
        return {"on_part_begin": self.on_part_begin, "on_part_data": self.on_part_data,
                "on_part_end": self.on_part_end, "on_header_field": self.on_header_field,
                "on_header_value": self.on_header_value, "on_header_end": self.on_header_end,
                "on_headers_finished": self.on_headers_finished}

    def on_part_begin(self) -> None:
        self.disposition, self.text, self.file = b"", None, None

    def on_header_field(self, data: bytes, start: int, end: int) -> None:
        self.header_name += data[start:end]

    def on_header_value(self, data: bytes, start: int, end: int) -> None:
        self.header_value += data[start:end]

    def on_header_end(self) -> None:
        if bytes(self.header_name).lower() == b"content-disposition":
            self.disposition = bytes(self.header_value)
        self.header_name, self.header_value = bytearray(), bytearray()

    def on_headers_finished(self) -> None:
        _, options = parse_options_header(self.disposition)
        if b"name" not in options:
            raise HttpProblem(422, "a form part has no name (its Content-Disposition header "
                                   "must give one).")
        self.name = options[b"name"].decode("utf-8", "replace")
        spec, is_file = self.fields.get(self.name), b"filename" in options
        if spec is None or (spec.suffix is not None) != is_file:
            raise HttpProblem(422, _unknown(self.name, self.fields, "file" if is_file
                                            else "text"))
        if not is_file:
            self.text = bytearray()
            return
        if self.name in self.form.files:
            raise HttpProblem(422, f"the file '{self.name}' is given twice.")
        client_name = options[b"filename"].decode("utf-8", "replace")
        path, self.file = self.saved.create(client_name, spec.suffix(client_name))
        self.open_files.append(self.file)
        self.form.files[self.name] = path

    def on_part_data(self, data: bytes, start: int, end: int) -> None:
        if self.file is not None:
            self.pending.append((self.file, data[start:end]))
            return
        assert self.text is not None
        self.text += data[start:end]
        if len(self.text) > MAX_TEXT_BYTES:
            raise HttpProblem(422, f"the field '{self.name[:80]}' is longer than "
                                   f"{MAX_TEXT_BYTES} bytes.")

    def on_part_end(self) -> None:
        if self.file is not None:
            self.finished.append(self.file)
        elif self.text is not None:
            _text(self.name, bytes(self.text), self.fields, self.form)

    def write_pending(self) -> None:
        """Write the queued pieces and close the files that ended (in a worker thread)."""
        for out, piece in self.pending:
            out.write(piece)
        for out in self.finished:
            out.close()
        self.pending.clear()
        self.finished.clear()

    def close_all(self) -> None:
        for out in self.open_files:
            out.close()


async def _read_multipart(request: Request, boundary: bytes | None,
                          fields: dict[str, FormField], saved: Uploads, form: Form) -> None:
    if not boundary:
        raise HttpProblem(422, "a multipart/form-data body needs a boundary in its "
                               "Content-Type.")
    reader = _PartReader(fields, saved, form)
    parser = MultipartParser(boundary, reader.callbacks())
    try:
        async for chunk in request.stream():
            parser.write(chunk)
            if reader.pending or reader.finished:
                await run_in_threadpool(reader.write_pending)
        parser.finalize()
    except FormParserError:
        raise HttpProblem(422, "the multipart/form-data body is malformed.") from None
    finally:
        reader.close_all()
