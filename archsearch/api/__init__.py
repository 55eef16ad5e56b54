"""API room: ``archsearch serve``, the HTTP API and its live pages. It sits on top, beside the
CLI: it calls down into the workflow and the store, and nothing imports it."""

from archsearch.api.config import ServeConfig
from archsearch.api.server import serve

__all__ = ["ServeConfig", "serve"]
