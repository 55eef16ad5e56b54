"""How ``archsearch serve`` runs: one frozen settings object, and the bearer token."""

from __future__ import annotations

import ipaddress
import os
import secrets
import socket
from dataclasses import dataclass, field
from pathlib import Path

from archsearch import options
from archsearch.data.limits import DataLimits
from archsearch.errors import UsageError

TOKEN_ENV = "ARCHSEARCH_API_TOKEN"
MIN_TOKEN_CHARS = 16


@dataclass(frozen=True)
class ServeConfig:
    host: str = options.DEFAULT_SERVE_HOST
    port: int = options.DEFAULT_SERVE_PORT
    db_url: str = options.DEFAULT_DB_URL
    ray_address: str | None = None  # drivers join this cluster; None: each starts its own Ray
    dashboard_url: str | None = None  # the Ray dashboard the pages link to (None: derived)
    data_dir: Path = options.DEFAULT_DATA_DIR
    report_dir: Path = options.DEFAULT_REPORT_DIR
    token_file: Path | None = None
    max_upload_mb: float = options.DEFAULT_MAX_UPLOAD_MB
    limits: DataLimits = field(default_factory=DataLimits)  # every upload is read within them
    cancel_grace_s: float = 20.0  # after SIGINT, how long a driver may take to write its report

    def __post_init__(self) -> None:
        if not 0 < self.port < 65536:
            raise UsageError(f"port {self.port} is not a TCP port (1-65535).")

    @property
    def max_upload_bytes(self) -> int:
        return int(self.max_upload_mb * 1024 * 1024)

    def ray_dashboard(self) -> str:
        """The dashboard the pages link to: given, else port 8265 of the cluster's head (or of
        loopback, where drivers start their own Ray and the first one takes 8265)."""
        if self.dashboard_url:
            return self.dashboard_url.rstrip("/")
        host = "127.0.0.1"
        if self.ray_address and self.ray_address not in ("auto", "local"):
            host = self.ray_address.removeprefix("ray://").rsplit(":", 1)[0] or host
        return f"http://{host}:8265"


def is_loopback(host: str) -> bool:
    """True when ``host`` only accepts connections from this machine."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        try:  # a host name: loopback only when every address it resolves to is
            infos = socket.getaddrinfo(host, None)
        except OSError:
            return False
        return bool(infos) and all(ipaddress.ip_address(i[4][0]).is_loopback for i in infos)


def resolve_token(config: ServeConfig) -> tuple[str, str]:
    """The bearer token and where it came from: ``$ARCHSEARCH_API_TOKEN``, else the token file,
    else (loopback only) a fresh random token written to ``data_dir/api_token`` (mode 0600), so
    that even a laptop's other local users cannot drive the service."""
    token, origin = os.environ.get(TOKEN_ENV, "").strip(), f"${TOKEN_ENV}"
    if not token and config.token_file is not None:
        try:
            token = config.token_file.read_text().strip()
        except OSError as exc:
            raise UsageError(f"cannot read the API token file {config.token_file}: "
                             f"{exc.strerror}.") from None
        origin = str(config.token_file)
    if token:
        if len(token) < MIN_TOKEN_CHARS:
            raise UsageError(f"the API token from {origin} has {len(token)} characters; use at "
                             f"least {MIN_TOKEN_CHARS} (e.g. `openssl rand -hex 32`).")
        return token, origin
    if not is_loopback(config.host):
        raise UsageError(f"refusing to serve on {config.host} without an API token: anyone who "
                         "reaches it could start searches and read every task. Set "
                         f"{TOKEN_ENV} or pass --token-file FILE, or serve on 127.0.0.1.")
    generated = config.data_dir / "api_token"
    generated.parent.mkdir(parents=True, exist_ok=True)
    token = secrets.token_urlsafe(32)
    descriptor = os.open(generated, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w") as out:
        out.write(token + "\n")
    return token, f"{generated} (generated)"
