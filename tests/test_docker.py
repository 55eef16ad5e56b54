"""docker/docker-compose.yml (no Docker engine here): parsed with PyYAML and checked for the
services, the ports, the volumes and the wiring the README promises."""

import re
from pathlib import Path

import yaml

DOCKER = Path(__file__).resolve().parents[1] / "docker"


def compose() -> dict:
    return yaml.safe_load((DOCKER / "docker-compose.yml").read_text())


def mounts(service: dict) -> dict[str, str]:
    """target -> source of a service's volumes, in either the short or the long syntax."""
    found = {}
    for volume in service.get("volumes", []):
        if isinstance(volume, str):
            source, target = volume.split(":")[:2]
        else:
            source, target = volume["source"], volume["target"]
        found[target] = source
    return found


def test_services_ports_and_volumes():
    spec = compose()
    services = spec["services"]
    assert set(services) == {"postgres", "ray-head", "ray-gpu-worker", "api"}
    assert "8265:8265" in services["ray-head"]["ports"]
    assert "--dashboard-port=8265" in services["ray-head"]["command"]
    assert "--dashboard-host=0.0.0.0" in services["ray-head"]["command"]
    assert "8000:8000" in services["api"]["ports"]
    assert mounts(services["postgres"])["/var/lib/postgresql/data"] == "pgdata"
    api = mounts(services["api"])
    assert api["/data"] == "data" and api["/opt/archsearch/reports"] == "reports"
    # Tune's checkpoints: one shared volume at one path on every Ray node and the driver.
    for name in ("ray-head", "ray-gpu-worker", "api"):
        assert mounts(services[name])["/shared"] == "tune-storage", name
    declared = set(spec["volumes"])
    used = {source for s in services.values() for source in mounts(s).values()}
    assert used <= declared


def test_gpu_workers_scale_and_reserve_a_gpu():
    worker = compose()["services"]["ray-gpu-worker"]
    assert worker["deploy"]["replicas"] >= 1
    device = worker["deploy"]["resources"]["reservations"]["devices"][0]
    assert device["driver"] == "nvidia" and "gpu" in device["capabilities"]
    assert "--address=ray-head:6379" in worker["command"]
    assert worker["build"]["dockerfile"] == "docker/Dockerfile.cuda"
    assert "ports" not in worker  # replicas cannot share a host port


def test_api_is_wired_to_postgres_ray_and_a_token():
    services = compose()["services"]
    api = services["api"]
    command = api["command"]
    assert command[0] == "serve"
    assert command[command.index("--host") + 1] == "0.0.0.0"
    assert command[command.index("--ray-address") + 1] == "ray-head:6379"
    env = api["environment"]
    # serve refuses a public address without a token: compose must insist on one.
    assert re.fullmatch(r"\$\{ARCHSEARCH_API_TOKEN:\?.+\}", env["ARCHSEARCH_API_TOKEN"])
    assert env["ARCHSEARCH_DB"].startswith("postgresql+psycopg://")
    assert "@postgres:5432/" in env["ARCHSEARCH_DB"]
    assert api["depends_on"]["postgres"]["condition"] == "service_healthy"
    assert "healthcheck" in services["postgres"]
    for name in ("ray-head", "ray-gpu-worker", "api"):  # one Ray token for nodes and drivers
        assert services[name]["environment"]["RAY_AUTH_MODE"] == "token", name
    images = {services[n]["image"] for n in ("ray-head", "api")}
    assert images == {"archsearch:cpu"}


def test_every_image_runs_the_same_python():
    """Ray refuses a cluster whose nodes and drivers run different Python versions."""
    bases = {path.name: re.search(r"^FROM (\S+)", path.read_text(), re.M).group(1)
             for path in DOCKER.glob("Dockerfile.*")}
    assert set(bases) == {"Dockerfile.cpu", "Dockerfile.cuda"}
    assert len(set(bases.values())) == 1, bases
