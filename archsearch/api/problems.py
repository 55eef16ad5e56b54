"""Every refusal the API answers: a 4xx status with one paragraph saying what is wrong and how to
fix it, whichever layer refused (a route, the data layer, request validation)."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from archsearch.api.schemas import Problem
from archsearch.errors import ArchsearchError, NotFoundError

# The answers every guarded route may give, for the OpenAPI spec.
ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": Problem} for code in (401, 404, 409, 413, 422)}


class HttpProblem(Exception):
    """A 4xx answer with a one-paragraph detail."""

    def __init__(self, status: int, detail: str) -> None:
        super().__init__(detail)
        self.status, self.detail = status, detail


def add_problem_handlers(app: FastAPI) -> None:
    """Answer each kind of refusal with its status and the one paragraph as ``detail``."""

    @app.exception_handler(HttpProblem)
    async def _problem(_: Request, exc: HttpProblem) -> JSONResponse:
        return JSONResponse({"detail": exc.detail}, exc.status)

    @app.exception_handler(NotFoundError)
    async def _not_found(_: Request, exc: NotFoundError) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, 404)

    @app.exception_handler(ArchsearchError)
    async def _bad_input(_: Request, exc: ArchsearchError) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, 422)

    @app.exception_handler(RequestValidationError)
    async def _invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        return JSONResponse({"detail": paragraph(exc.errors())}, 422)


def paragraph(errors: Any) -> str:
    """Pydantic's error list as one sentence per problem."""
    parts = []
    for error in errors:
        where = ".".join(str(p) for p in error.get("loc", ()) if p not in ("body", "__root__"))
        parts.append(f"{where or 'request'}: {error.get('msg', 'invalid')}")
    return "; ".join(parts) + "."
