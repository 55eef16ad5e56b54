"""What the routes share, as FastAPI dependencies: the server's settings, its store, its driver
pool, the Ray dashboard's address, a request's upload folder and its form. ``create_app`` puts
them on ``app.state`` once; a route names what it needs in its signature."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request, Security
from fastapi import Path as PathParam
from fastapi.security import HTTPBearer

from archsearch.api.config import ServeConfig
from archsearch.api.drivers import DriverPool
from archsearch.api.form_stream import Form, Uploads, read_form
from archsearch.api.forms import RECOMMEND_FORM, TASK_FORM
from archsearch.store import Store

TaskId = Annotated[int, PathParam(ge=1, le=2**31 - 1)]  # beyond: not a row id in any backend

# The BearerAuth middleware checks the token; this only declares the scheme in the OpenAPI
# spec (for /docs and API clients).
GUARDED = [Security(HTTPBearer(auto_error=False,
                               description="the token of `archsearch serve`"))]


@dataclass(frozen=True)
class Services:
    config: ServeConfig
    store: Store  # one engine for every request; migrations run once, when the app is made
    drivers: DriverPool
    dashboard: str  # the Ray dashboard the pages and the task views link to


def _services(request: Request) -> Services:
    return request.app.state.services


def _config(request: Request) -> ServeConfig:
    return _services(request).config


def _store(request: Request) -> Store:
    return _services(request).store


def _drivers(request: Request) -> DriverPool:
    return _services(request).drivers


def _dashboard(request: Request) -> str:
    return _services(request).dashboard


def _uploads(request: Request) -> Uploads:
    """A fresh record of this request's uploads, in the server's upload folder."""
    return Uploads(_config(request).data_dir / "uploads")


async def _task_form(request: Request, saved: Annotated[Uploads, Depends(_uploads)]) -> Form:
    return await read_form(request, TASK_FORM, saved)


async def _recommend_form(request: Request,
                          saved: Annotated[Uploads, Depends(_uploads)]) -> Form:
    return await read_form(request, RECOMMEND_FORM, saved)


Config = Annotated[ServeConfig, Depends(_config)]
StoreDep = Annotated[Store, Depends(_store)]
Drivers = Annotated[DriverPool, Depends(_drivers)]
Dashboard = Annotated[str, Depends(_dashboard)]
RequestUploads = Annotated[Uploads, Depends(_uploads)]
# The form of POST /tasks and of POST /recommend, read as it arrives (files written once, into
# the request's uploads); a route that takes it also takes RequestUploads, the same object.
TaskForm = Annotated[Form, Depends(_task_form)]
RecommendForm = Annotated[Form, Depends(_recommend_form)]
