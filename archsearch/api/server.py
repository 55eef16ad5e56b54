"""``archsearch serve``: check the settings, print where to go, run uvicorn."""

from __future__ import annotations

import sys

from archsearch.api.config import ServeConfig, resolve_token


def serve(config: ServeConfig) -> None:
    """Serve until interrupted. Raises UsageError for a non-loopback host without a token, or an
    unreadable or too short token, before anything is bound or started."""
    token, origin = resolve_token(config)
    # Imported only now: the app pulls in torch and Ray (seconds), and a refusal should not wait.
    import uvicorn

    from archsearch.api.app import create_app
    from archsearch.search import dashboard_hint

    app = create_app(config, token)
    base = f"http://{config.host}:{config.port}"
    print(f"archsearch API on {base} (OpenAPI: {base}/docs); bearer token from {origin}.\n"
          f"Live pages: {base}/ (open {base}/#token=TOKEN to hand the page the token).\n"
          f"Ray dashboard: {config.ray_dashboard()} ({dashboard_hint()}).",
          file=sys.stderr, flush=True)
    uvicorn.run(app, host=config.host, port=config.port, log_level="warning",
                server_header=False)
