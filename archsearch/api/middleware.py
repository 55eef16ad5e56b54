"""What every request passes through before (and after) its route: the bearer token, the body
size limit, and the security headers of every answer."""

from __future__ import annotations

import secrets
from typing import Any

from fastapi import Request
from fastapi.responses import JSONResponse, Response
from starlette.types import ASGIApp, Receive, Scope, Send


class BodyLimit:
    """Refuse a request body over the limit before reading it. A body must declare its length
    (every browser and HTTP client does for uploads; no header means no body), and the server
    reads no more than that, so the declared length is the bound."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app, self.max_bytes = app, max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] in ("POST", "PUT", "PATCH"):
            headers = dict(scope["headers"])
            declared = headers.get(b"content-length", b"0").decode("latin-1")
            problem = None
            if b"transfer-encoding" in headers or not declared.isdigit():
                problem = (411, "a request body must declare its Content-Length (no chunked "
                                "uploads).")
            elif int(declared) > self.max_bytes:
                problem = (413, f"the request body is {int(declared)} bytes; this server "
                                f"accepts at most {self.max_bytes} (serve --max-upload-mb).")
            if problem:
                await JSONResponse({"detail": problem[1]}, problem[0])(scope, receive, send)
                return
        await self.app(scope, receive, send)


class BearerAuth:
    """Check the bearer token on the request's headers before anything reads its body: a request
    without the right token is answered 401 without a single call to ``receive``, so an upload
    from a stranger is never spooled to disk. Every path but the public ones is guarded, so a
    route added later is guarded too. (A FastAPI dependency would run only after the body of a
    form route was read, hence a middleware.)"""

    def __init__(self, app: ASGIApp, token: str, public: frozenset[str],
                 public_prefix: str) -> None:
        self.app, self.token = app, token.encode()
        self.public, self.public_prefix = public, public_prefix

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and not self._public(scope["path"]):
            scheme, _, given = dict(scope["headers"]).get(b"authorization", b"").partition(b" ")
            if scheme.lower() != b"bearer" or not secrets.compare_digest(given.strip(),
                                                                         self.token):
                await JSONResponse(
                    {"detail": "missing or wrong bearer token: send `Authorization: Bearer "
                               "TOKEN` with the token `archsearch serve` printed."},
                    401, headers={"WWW-Authenticate": "Bearer"})(scope, receive, send)
                return
        await self.app(scope, receive, send)

    def _public(self, path: str) -> bool:
        return path in self.public or path.startswith(self.public_prefix)


async def security_headers(request: Request, call_next: Any) -> Response:
    response = await call_next(request)
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Referrer-Policy"] = "no-referrer"
    if (response.headers.get("content-type", "").startswith("text/html")
            and request.url.path not in (request.app.docs_url, request.app.redoc_url)):
        # The pages and the report are self-contained: their own inline script and style,
        # data from this origin only, and never framed by another site. (FastAPI's /docs
        # loads Swagger UI from a CDN, so it is left out.)
        response.headers["Content-Security-Policy"] = (
            "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; "
            "connect-src 'self'; img-src 'self' data: blob:; frame-ancestors 'none'; "
            "base-uri 'none'; form-action 'self'")
    return response
