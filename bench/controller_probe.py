"""Re-measure issue 9's "Measured on main" controller and security cases against a real controller.

    python bench/controller_probe.py [--quick]

Every case starts real `controller serve` processes on free ports and prints
what a new user would see (status codes, seconds, counts). Run it on two
commits to compare them case by case; nothing here asserts.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import grpc
import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from splitbed.v1 import control_pb2, control_pb2_grpc
from tests.launch import ROOT, child_env, start_controller
from tests.test_controller_protocol import FakeNode, profile

EXAMPLE = json.loads((ROOT / "examples" / "one_split.json").read_text())


def row(case: str, seen: object) -> None:
    print(f"{case:<58} {seen}", flush=True)


def _has_state_flag() -> bool:
    out = subprocess.run([sys.executable, "-m", "controller", "serve", "--help"], capture_output=True, text=True,
                         env=child_env(), cwd=ROOT, timeout=60).stdout
    return "--state" in out


HAS_STATE = _has_state_flag()


def _ctl(state: Path, extra: list[str] | None = None):
    return start_controller([*(["--state", str(state)] if HAS_STATE else []), *(extra or [])])


def _live(proc) -> tuple[FakeNode, FakeNode]:
    dev = FakeNode(proc.address, "device-0", control_pb2.ROLE_DEVICE)
    srv = FakeNode(proc.address, "edge-0", control_pb2.ROLE_SERVER)
    dev.next(), srv.next()
    return dev, srv


def restart_case(tmp: Path) -> None:
    state = tmp / "state.sqlite"
    proc = _ctl(state, ["--latency-budget-s", "0.3", "--energy-budget-j", "0.1"])
    dev, srv = _live(proc)
    httpx.put(f"{proc.rest_url}/v1/budget", json={"latency_s": 0.4, "energy_j": 0.2}, timeout=60)
    httpx.put(f"{proc.rest_url}/v1/pins", json={"split": 3}, timeout=60)
    before = httpx.get(f"{proc.rest_url}/v1/plan").json()
    dev.close(), srv.close()
    proc.stop()
    proc = _ctl(state, ["--latency-budget-s", "0.3", "--energy-budget-j", "0.1"])
    after = httpx.get(f"{proc.rest_url}/v1/plan").json()
    row("restart: budget before -> after", f"{before['budget']} -> {after['budget']}")
    row("restart: pins before -> after", f"{before['pins']} -> {after['pins']}")
    row("restart: version/history before -> after",
        f"v{before['version']}/{len(before['history'])} -> v{after['version']}/{len(after['history'])}")
    proc.stop()


def dead_server_case(tmp: Path, ack_timeout: float) -> None:
    proc = _ctl(tmp / "dead.sqlite", ["--ack-timeout-s", str(ack_timeout), "--latency-budget-s", "0.3",
                                       "--energy-budget-j", "0.1"])
    dev, srv = _live(proc)
    ch = grpc.insecure_channel(proc.address)
    stub = control_pb2_grpc.ControlServiceStub(ch)
    stub.Register(control_pb2.RegisterRequest(node_id="edge-dead", role=control_pb2.ROLE_SERVER,
                                              profile=profile("server")))
    watch = stub.WatchConfig(control_pb2.WatchConfigRequest(node_id="edge-dead"))  # never acks
    for i, lat in enumerate((0.4, 0.5)):
        t0 = time.monotonic()
        r = httpx.put(f"{proc.rest_url}/v1/budget", json={"latency_s": lat, "energy_j": 0.1}, timeout=200)
        budget = httpx.get(f"{proc.rest_url}/v1/plan").json()["budget"]
        row(f"never-acking server: re-plan {i + 1}", f"HTTP {r.status_code} after {time.monotonic() - t0:.1f} s, "
            f"budget now {budget['latency_s']}")
    watch.cancel()
    ch.close()
    dev.close(), srv.close()
    proc.stop()


def storm_case(tmp: Path, n_splits: int, storm: int) -> None:
    proc = _ctl(tmp / "storm.sqlite", ["--latency-budget-s", "0.3", "--energy-budget-j", "0.1"])
    dev, srv = _live(proc)
    big = json.loads(json.dumps(EXAMPLE))
    base = big["splits"][0]
    big["splits"] = [{**base, "split": i} for i in range(n_splits)]
    codes: list[int] = []

    def solve() -> None:
        try:
            r = httpx.post(f"{proc.rest_url}/v1/solve", params={"solver": "sca"}, json=big, timeout=300)
            codes.append(r.status_code)
        except httpx.HTTPError:
            codes.append(-1)

    threads = [threading.Thread(target=solve) for _ in range(storm)]
    for t in threads:
        t.start()
    time.sleep(1.0)
    t0 = time.monotonic()
    r = httpx.put(f"{proc.rest_url}/v1/budget", json={"latency_s": 0.4, "energy_j": 0.2}, timeout=300)
    took = time.monotonic() - t0
    solve_s = (r.json().get("answer") or {}).get("solve_time_s", float("nan")) if r.is_success else float("nan")
    for t in threads:
        t.join()
    row(f"storm of {storm} x {n_splits}-split sca solves: PUT /v1/budget",
        f"HTTP {r.status_code} in {took:.2f} s (own solve {solve_s:.3f} s); solve codes {sorted(set(codes))}")
    dev.close(), srv.close()
    proc.stop()


BAD_BODIES: list[tuple[str, str, str]] = [
    ("solve: NaN token", "/v1/solve", json.dumps(EXAMPLE).replace('"latency_s": 0.35', '"latency_s": NaN')),
    ("solve: Infinity token", "/v1/solve", json.dumps(EXAMPLE).replace('"latency_s": 0.35', '"latency_s": Infinity')),
    ("solve: 1e999", "/v1/solve", json.dumps(EXAMPLE).replace('"latency_s": 0.35', '"latency_s": 1e999')),
    ("solve: \"inf\"", "/v1/solve", json.dumps(EXAMPLE).replace('"latency_s": 0.35', '"latency_s": "inf"')),
    ("solve: gain 1e300", "/v1/solve", json.dumps(EXAMPLE).replace('"gain": 2.77e-11', '"gain": 1e300')),
    ("solve: k0_db 1e6", "/v1/solve", json.dumps(EXAMPLE).replace(
        '"gain": 2.77e-11', '"distance_m": 100, "k0_db": 1e6, "alpha": 3')),
    ("budget: true as seconds", "/v1/budget", '{"latency_s": true, "energy_j": 0.2}'),
    ("budget: NaN", "/v1/budget", '{"latency_s": NaN, "energy_j": 0.2}'),
    ("pins: split 99", "/v1/pins", '{"split": 99}'),
    ("pins: rho_device below floor", "/v1/pins", '{"rho_device": 0.01}'),
    ("pins: power above p_max", "/v1/pins", '{"power_w": 5}'),
    ("pins: freq_device above f_max", "/v1/pins", '{"freq_device_hz": 1e12}'),
    ("pins: freq_server above f_max", "/v1/pins", '{"freq_server_hz": 1e12}'),
]


def bad_input_case(tmp: Path) -> None:
    proc = _ctl(tmp / "bad.sqlite", ["--latency-budget-s", "0.3", "--energy-budget-j", "0.1"])
    dev, srv = _live(proc)
    httpx.put(f"{proc.rest_url}/v1/pins", json={"split": 3}, timeout=60)
    for name, path, body in BAD_BODIES:
        method = "POST" if path == "/v1/solve" else "PUT"
        r = httpx.request(method, proc.rest_url + path, content=body,
                          headers={"content-type": "application/json"}, timeout=60)
        row(name, f"HTTP {r.status_code}")
    r = httpx.put(f"{proc.rest_url}/v1/pins", json={"foo": 1}, timeout=60)
    pins = httpx.get(f"{proc.rest_url}/v1/pins").json()
    row("pins: {\"foo\": 1}", f"HTTP {r.status_code}, pins now {pins}")
    r = httpx.post(f"{proc.rest_url}/v1/solve", content=b"{" + b" " * (2 << 20) + b"}",
                   headers={"content-type": "application/json"}, timeout=60)
    row("solve: 2 MiB body", f"HTTP {r.status_code}")
    _security(proc)
    dev.close(), srv.close()
    proc.stop()


def _security(proc) -> None:
    ch = grpc.insecure_channel(proc.address)
    stub = control_pb2_grpc.ControlServiceStub(ch)
    fast = profile("server")
    fast.compute.achieved_flops_per_s = 1e15
    try:
        stub.Register(control_pb2.RegisterRequest(node_id="edge-0", role=control_pb2.ROLE_SERVER, profile=fast))
        outcome = "accepted"
    except grpc.RpcError as exc:
        outcome = f"{exc.code().name}"
    nodes = {n["node_id"]: n for n in httpx.get(f"{proc.rest_url}/v1/nodes").json()}
    flops = nodes.get("edge-0", {}).get("profile", {}).get("compute", {}).get("achieved_flops_per_s")
    row("anonymous re-register as edge-0 with 1e15 FLOP/s", f"{outcome}; edge-0 now {flops}")
    try:
        stub.ReportTelemetry(control_pb2.TelemetryReport(node_id="device-0", values={"gain": 1e-9}))
        row("anonymous telemetry for device-0 (forged gain)", "accepted")
    except grpc.RpcError as exc:
        row("anonymous telemetry for device-0 (forged gain)", exc.code().name)
    t0, ok, refused = time.monotonic(), 0, 0
    for i in range(10_000):
        if time.monotonic() - t0 > 10:
            break
        try:
            stub.Register(control_pb2.RegisterRequest(node_id=f"flood-{i}", role=control_pb2.ROLE_SERVER,
                                                      profile=profile("server")), timeout=5)
            ok += 1
        except grpc.RpcError:
            refused += 1
    n = len(httpx.get(f"{proc.rest_url}/v1/nodes", timeout=60).json())
    row("registration flood (10 s)", f"{ok} accepted, {refused} refused, {n} nodes kept")
    ch.close()


def cli_case(tmp: Path) -> None:
    env = child_env()
    for args in (["pin", "split=abc"], ["budget", "--latency-s", "inf", "--energy-j", "1"],
                 ["plan", "--url", "htp:/bad url"]):
        r = subprocess.run([sys.executable, "-m", "controller", *args], capture_output=True, text=True, env=env,
                           cwd=ROOT, timeout=60)
        lines = (r.stdout + r.stderr).strip().splitlines()
        row(f"cli: controller {' '.join(args)}", f"exit {r.returncode}, {len(lines)} output lines")
    port_file = tmp / "ports"
    p = subprocess.Popen([sys.executable, "-m", "controller", "serve", "--log-level", "INFO", "--grpc-port", "0",
                          "--rest-port", "0", "--host", "127.0.0.1",
                          *(["--state", str(tmp / "cli.sqlite")] if HAS_STATE else []),
                          "--port-file", str(port_file)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                         env=env, cwd=ROOT, text=True)
    time.sleep(6)
    p.terminate()
    out = p.communicate(timeout=30)[0]
    row("cli: serve --log-level INFO", f"{sum(' INFO ' in ln for ln in out.splitlines())} INFO lines")


def secured_case(tmp: Path) -> None:
    tokens = tmp / "tokens"
    tokens.write_text("admin admin-token-0123456789\nnode:edge-0 edge0-token-0123456789\n"
                      "node:device-0 device0-token-0123456789\n")
    proc = _ctl(tmp / "sec.sqlite", ["--token-file", str(tokens)])
    ch = grpc.insecure_channel(proc.address)
    stub = control_pb2_grpc.ControlServiceStub(ch)

    def code(call, request, token: str | None) -> str:
        md = [("authorization", f"Bearer {token}")] if token else None
        try:
            call(request, metadata=md, timeout=10)
            return "accepted"
        except grpc.RpcError as exc:
            return exc.code().name

    reg = control_pb2.RegisterRequest(node_id="edge-0", role=control_pb2.ROLE_SERVER, profile=profile("server"))
    row("with --token-file: anonymous register as edge-0", code(stub.Register, reg, None))
    row("with --token-file: device-0's token registers as edge-0", code(stub.Register, reg, "device0-token-0123456789"))
    tel = control_pb2.TelemetryReport(node_id="device-0", values={"gain": 1e-9})
    row("with --token-file: edge-0's token reports for device-0",
        code(stub.ReportTelemetry, tel, "edge0-token-0123456789"))
    r = httpx.put(f"{proc.rest_url}/v1/budget", json={"latency_s": 0.4, "energy_j": 0.2}, timeout=30)
    row("with --token-file: anonymous PUT /v1/budget", f"HTTP {r.status_code}")
    ch.close()
    proc.stop()


def bind_case(tmp: Path) -> None:
    import psutil

    port_file = tmp / "bind-ports"
    p = subprocess.Popen([sys.executable, "-m", "controller", "serve", "--grpc-port", "0", "--rest-port", "0",
                          *(["--state", str(tmp / "bind.sqlite")] if HAS_STATE else []),
                          "--port-file", str(port_file)], stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT,
                         env=child_env(), cwd=ROOT)
    deadline = time.monotonic() + 60
    while not (port_file.exists() and port_file.read_text().strip()) and time.monotonic() < deadline:
        time.sleep(0.2)
    time.sleep(1.0)
    ips = {c.laddr.ip for c in psutil.Process(p.pid).net_connections("inet") if c.status == psutil.CONN_LISTEN}
    p.terminate()
    p.wait(30)
    row("controller serve without --host listens on", sorted(ips))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="shorter ack timeout (10 s, not 60 s)")
    parser.add_argument("--splits", type=int, default=256, help="splits per stateless solve in the storm")
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="ctl-probe-"))
    restart_case(tmp)
    dead_server_case(tmp, 10.0 if args.quick else 60.0)
    storm_case(tmp, args.splits, 4)
    bad_input_case(tmp)
    cli_case(tmp)
    if HAS_STATE:  # token options exist
        secured_case(tmp)
    bind_case(tmp)


if __name__ == "__main__":
    main()
