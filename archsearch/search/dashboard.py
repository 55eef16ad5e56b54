"""What a user needs to get into the Ray dashboard, without importing Ray (the CLI, the API
and the live page say it)."""

from __future__ import annotations

from pathlib import Path

TOKEN_FILE = Path.home() / ".ray" / "auth_token"


def dashboard_hint() -> str:
    """How to get into the dashboard (Ray 2.60 enables token authentication by default)."""
    return (f"the dashboard asks for a token: it is in {TOKEN_FILE} "
            "(or the RAY_AUTH_TOKEN environment variable of the cluster)")
