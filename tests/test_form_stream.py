"""The API's form reader: a file is written once, piece by piece as it arrives, straight into
the upload folder under a server-chosen name; refusals and failures keep nothing."""

import asyncio

import pytest
from starlette.requests import Request

from archsearch.api.form_stream import Uploads, read_form
from archsearch.api.forms import TASK_FORM
from archsearch.api.problems import HttpProblem

BOUNDARY = b"b0undary"
PIECE = b"\1" * 65536


def part(name: str, body: bytes, filename: str | None = None) -> bytes:
    named = f'name="{name}"' + (f'; filename="{filename}"' if filename else "")
    return (b"--" + BOUNDARY + b"\r\nContent-Disposition: form-data; " + named.encode()
            + b"\r\n\r\n" + body + b"\r\n")


def read(pieces: list[bytes], folder, on_receive=lambda: None,
         content_type: bytes = b"multipart/form-data; boundary=" + BOUNDARY):
    """read_form over a body that arrives in ``pieces``; ``on_receive`` runs before each."""
    messages = [{"type": "http.request", "body": piece, "more_body": i < len(pieces) - 1}
                for i, piece in enumerate(pieces)]

    async def receive() -> dict:
        on_receive()
        return messages.pop(0)

    scope = {"type": "http", "method": "POST", "path": "/tasks", "query_string": b"",
             "headers": [(b"content-type", content_type)]}
    return asyncio.run(read_form(Request(scope, receive), TASK_FORM, Uploads(folder)))


def test_a_file_is_written_into_the_upload_folder_as_it_arrives(tmp_path):
    head = part("options", b'{"seed": 3}') + part("dataset", b"", "../../My Data.NPZ")[:-2]
    seen: list[int] = []  # bytes on disk in the upload folder, each time a piece is read
    form = read([head, PIECE, PIECE, PIECE, b"\r\n--" + BOUNDARY + b"--\r\n"], tmp_path,
                lambda: seen.append(sum(f.stat().st_size for f in tmp_path.glob("*"))))
    path = form.files["dataset"]
    assert path.parent == tmp_path and path.suffix == ".npz" and "Data" not in path.name
    assert path.read_bytes() == PIECE * 3
    assert seen == [0, 0, len(PIECE), 2 * len(PIECE), 3 * len(PIECE)]  # on disk, piece by piece
    assert form.text == {"options": '{"seed": 3}'}
    assert list(tmp_path.iterdir()) == [path]  # written once, in its place


def test_a_file_of_a_format_not_read_is_refused_before_a_byte_is_written(tmp_path):
    body = part("dataset", PIECE, "data.exe") + b"--" + BOUNDARY + b"--\r\n"
    with pytest.raises(HttpProblem) as refused:
        read([body], tmp_path)
    assert refused.value.status == 422 and "must end in one of" in refused.value.detail
    assert not any(tmp_path.iterdir())


def test_a_body_that_stops_halfway_keeps_nothing(tmp_path):
    class Gone(Exception):
        pass

    count = iter(range(10))

    def stop_at_the_third() -> None:
        if next(count) == 2:
            raise Gone  # the body limit, or a client gone, mid-file

    with pytest.raises(Gone):
        read([part("dataset", b"", "a.csv")[:-2], PIECE, PIECE, PIECE], tmp_path,
             stop_at_the_third)
    assert not any(tmp_path.iterdir())


def test_text_fields_url_encoded_and_unknown_fields_refused(tmp_path):
    form = read([b"builtin=builtin%3Aadding&options=%7B%7D"], tmp_path,
                content_type=b"application/x-www-form-urlencoded")
    assert form.text == {"builtin": "builtin:adding", "options": "{}"} and not form.files
    for body, words in ((part("shots", b"3"), "no text field 'shots'"),
                        (part("builtin", b"x" * 501), "at most 500"),
                        (part("options", b"{}") * 2, "given twice")):
        with pytest.raises(HttpProblem, match=words):
            read([body + b"--" + BOUNDARY + b"--\r\n"], tmp_path)
    assert not any(tmp_path.iterdir())
