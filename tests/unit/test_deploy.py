"""The deploy files parse and fit together: the compose file (``docker compose config`` where
the compose plugin exists), Prometheus's config, Grafana's provisioning and dashboard, and the
Kubernetes manifests."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
SOURCES = "\n".join(p.read_text() for p in (ROOT / "gateway").glob("*.py")) + "\n".join(
    p.read_text() for p in (ROOT / "channels").rglob("*.py")
)


def load(path: Path) -> Any:
    return yaml.safe_load(path.read_text())


def compose() -> dict[str, Any]:
    return dict(load(DEPLOY / "compose.yaml"))


def mounts(service: str) -> dict[str, Path]:
    """A compose service's bind mounts: container path → host path."""
    out = {}
    for volume in compose()["services"][service].get("volumes", []):
        host, container = volume.split(":")[:2]
        out[container] = (DEPLOY / host).resolve()
    return out


def has_compose_plugin() -> bool:
    if shutil.which("docker") is None:
        return False
    done = subprocess.run(["docker", "compose", "version"], capture_output=True, timeout=30)
    return done.returncode == 0


@pytest.mark.skipif(not has_compose_plugin(), reason="docker compose is not installed here")
def test_docker_compose_accepts_the_compose_file() -> None:
    env = {**os.environ, "OMNIGATE_WEB_SECRET": "s", "OMNIGATE_API_TOKEN": "t"}
    env["GRAFANA_ADMIN_PASSWORD"] = "g"
    done = subprocess.run(
        ["docker", "compose", "-f", str(DEPLOY / "compose.yaml"), "config", "-q"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr


def test_compose_runs_redis_the_gateway_a_worker_prometheus_and_grafana() -> None:
    services = compose()["services"]
    assert {"redis", "gateway", "worker", "prometheus", "grafana"} <= set(services)
    for name, service in services.items():
        assert "image" in service or "build" in service, name
        for needed in service.get("depends_on", []):
            assert needed in services, f"{name} depends on unknown {needed}"


def test_every_file_compose_mounts_exists() -> None:
    for service in ("prometheus", "grafana"):
        for container, host in mounts(service).items():
            assert host.exists(), f"{service} mounts {host} at {container}: missing"


def test_prometheus_scrapes_the_gateways_metrics() -> None:
    config = load(mounts("prometheus")["/etc/prometheus/prometheus.yml"])
    [job] = config["scrape_configs"]
    assert job["metrics_path"] == "/metrics"
    [sd] = job["dns_sd_configs"]
    assert sd["names"] == ["gateway"] and sd["port"] == 8080


def test_grafana_reads_prometheus_and_the_dashboard_folder_compose_mounts() -> None:
    provisioning = mounts("grafana")["/etc/grafana/provisioning"]
    [source] = load(provisioning / "datasources" / "prometheus.yaml")["datasources"]
    assert source["type"] == "prometheus" and source["url"] == "http://prometheus:9090"
    [provider] = load(provisioning / "dashboards" / "omnigate.yaml")["providers"]
    assert provider["options"]["path"] in mounts("grafana")


def test_the_dashboard_charts_only_metrics_the_gateway_exposes() -> None:
    dashboard = json.loads((DEPLOY / "grafana" / "dashboards" / "omnigate.json").read_text())
    assert dashboard["uid"] and dashboard["panels"]
    names = set()
    for panel in dashboard["panels"]:
        assert panel["datasource"]["uid"] == "prometheus" and panel["targets"], panel["title"]
        for target in panel["targets"]:
            names |= set(re.findall(r"omnigate_[a-z_]+", target["expr"]))
    for name in names:
        base = re.sub(r"_(total|bucket|count|sum)$", "", name)
        defined = f'"{base}"' in SOURCES or f'"{base}_total"' in SOURCES
        assert defined, f"{name} is on the dashboard but no module defines it"


def test_the_kubernetes_manifests_are_well_formed() -> None:
    for path in (DEPLOY / "k8s").glob("*.yaml"):
        for doc in yaml.safe_load_all(path.read_text()):
            assert doc["apiVersion"] and doc["kind"] and doc["metadata"]["name"], path
            if doc["kind"] == "Deployment":
                labels = doc["spec"]["template"]["metadata"]["labels"]
                assert doc["spec"]["selector"]["matchLabels"].items() <= labels.items()
                assert doc["spec"]["template"]["spec"]["containers"]
