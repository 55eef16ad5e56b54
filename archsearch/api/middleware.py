"""What every request passes through before (and after) its route: the bearer token, the body
size limit, and the security headers of every answer."""

from __future__ import annotations

import secrets

from fastapi.responses import JSONResponse
from starlette.datastructures import MutableHeaders
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send


class BodyTooLarge(HTTPException):
    """A request body over the server's limit (answered 413 with the one paragraph)."""

    def __init__(self, size: str, max_bytes: int) -> None:
        super().__init__(413, f"the request body is {size} bytes; this server accepts at most "
                              f"{max_bytes} (serve --max-upload-mb).")


class BodyLimit:
    """Enforce the body size limit as the bytes arrive, so no body over it is ever read whole:
    a declared Content-Length over the limit is answered 413 before a byte is read; any other
    body (chunked ones too) is counted as the route reads it, and the first piece over the limit
    ends the request with 413. (The rest of such a body is read and dropped by the HTTP server,
    a piece at a time.) Nothing here holds the body: the form reader (``form_stream``) writes
    each file, as its pieces arrive, straight into the upload folder."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app, self.max_bytes = app, max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length", b"")
        if declared.isdigit() and int(declared) > self.max_bytes:
            problem = BodyTooLarge(str(int(declared)), self.max_bytes)
            await JSONResponse({"detail": problem.detail}, 413)(scope, receive, send)
            return
        received = 0

        async def counted() -> Message:
            nonlocal received
            message = await receive()
            received += len(message.get("body", b""))
            if received > self.max_bytes:
                raise BodyTooLarge(f"over {self.max_bytes}", self.max_bytes)
            return message

        await self.app(scope, counted, send)


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


class SecurityHeaders:
    """Headers on every answer. A plain ASGI middleware, not ``@app.middleware``: that one reads
    the body through a task group, which would turn the body limit's 413 into a 400."""

    # The pages and the report are self-contained: their own inline script and style, data
    # from this origin only, and never framed by another site.
    POLICY = ("default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; "
              "connect-src 'self'; img-src 'self' data: blob:; frame-ancestors 'none'; "
              "base-uri 'none'; form-action 'self'")

    def __init__(self, app: ASGIApp, unpoliced: frozenset[str]) -> None:
        self.app, self.unpoliced = app, unpoliced  # FastAPI's /docs loads Swagger UI from a CDN

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                headers["X-Content-Type-Options"] = "nosniff"
                headers["Referrer-Policy"] = "no-referrer"
                if (headers.get("content-type", "").startswith("text/html")
                        and scope["path"] not in self.unpoliced):
                    headers["Content-Security-Policy"] = self.POLICY
            await send(message)

        await self.app(scope, receive, send_with_headers)
