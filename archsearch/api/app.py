"""The HTTP API (FastAPI): ``create_app`` assembles the routers, the middleware and the shared
services; the routes call down into the workflow and the store, nothing more."""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from archsearch import __version__
from archsearch.api import pages, recommend, tasks
from archsearch.api.config import ServeConfig
from archsearch.api.deps import Services
from archsearch.api.drivers import DriverPool
from archsearch.api.middleware import BearerAuth, BodyLimit, SecurityHeaders
from archsearch.api.problems import add_problem_handlers
from archsearch.store import Store


def create_app(config: ServeConfig, token: str) -> FastAPI:
    services = Services(config=config, store=Store(config.db_url),
                        drivers=DriverPool(config), dashboard=config.ray_dashboard())

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        yield
        services.drivers.shutdown()
        services.store.close()

    app = FastAPI(title="archsearch", version=__version__, lifespan=lifespan,
                  description="Submit a data set and constraints; archsearch searches sequence "
                  "architectures on Ray and recommends one. Every /tasks and /recommend route "
                  "takes `Authorization: Bearer TOKEN`.")
    app.state.services = services
    for router in (pages.router, tasks.router, recommend.router):
        app.include_router(router)
    add_problem_handlers(app)
    app.add_middleware(BodyLimit, max_bytes=config.max_upload_bytes)
    # Added after the body limit, so it runs first: no token, no look at the body (not even
    # its length). The headers go on every answer, refusals included.
    app.add_middleware(BearerAuth, token=token, public_prefix=pages.PAGES, public=pages.PUBLIC
                       | {app.openapi_url, app.docs_url, app.redoc_url,
                          app.swagger_ui_oauth2_redirect_url})
    app.add_middleware(SecurityHeaders, unpoliced=frozenset({app.docs_url, app.redoc_url}))
    return app
