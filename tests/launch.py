"""Start the testbed's real processes on free ports from a source checkout (the demo, the benchmarks, the tests)."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from splitbed.omp import bound_openmp_spinning
from splitbed.tls import TlsFiles, sync_channel

ROOT = Path(__file__).resolve().parent.parent


def child_env(threads: int = 1, **extra: str) -> dict[str, str]:
    env = dict(os.environ)
    bound_openmp_spinning(env)
    env.update({"PYTHONUNBUFFERED": "1", "OMP_NUM_THREADS": str(threads),
                "HF_HUB_OFFLINE": "1",
                "TRANSFORMERS_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"})
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    # A controller started from a test keeps its state in a file of its own (the default is
    # ./controller-state.sqlite, which would carry budgets and pins from one test into the next).
    env["CONTROLLER_STATE"] = tempfile.mktemp(prefix="splitbed-state-", suffix=".sqlite")
    env.update(extra)
    return env


@dataclass
class Proc:
    popen: subprocess.Popen[bytes]
    port: int
    log: Path
    rest_port: int | None = None

    @property
    def rest_url(self) -> str:
        return f"http://127.0.0.1:{self.rest_port}"

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def stop(self, timeout: float = 15.0) -> int:
        return stop_process(self.popen, timeout)


def stop_process(popen: subprocess.Popen[bytes], timeout: float = 15.0) -> int:
    """SIGTERM (the services go NOT_SERVING and drain), then SIGKILL after `timeout`; the exit code."""
    if popen.poll() is None:
        popen.send_signal(signal.SIGTERM)
        try:
            popen.wait(timeout)
        except subprocess.TimeoutExpired:
            popen.kill()
            popen.wait()
    return popen.returncode


def wait_healthy(address: str, service: str = "", timeout: float = 120.0, tls: TlsFiles | None = None) -> None:
    deadline = time.monotonic() + timeout
    with sync_channel(address, tls or TlsFiles()) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        while time.monotonic() < deadline:
            try:
                resp = stub.Check(health_pb2.HealthCheckRequest(service=service), timeout=2)
                if resp.status == health_pb2.HealthCheckResponse.SERVING:
                    return
            except grpc.RpcError:
                pass
            time.sleep(0.2)
    raise TimeoutError(f"{address} not SERVING within {timeout} s")


def wait_port_file(popen: subprocess.Popen[bytes], port_file: Path, log: Path, timeout: float,
                   what: str) -> list[int]:
    """The ports a starting process writes to its port file; fail with its log if it dies or hangs."""
    deadline = time.monotonic() + timeout
    while not port_file.exists() or not port_file.read_text().strip():
        if popen.poll() is not None:
            raise RuntimeError(f"{what} exited with {popen.returncode}:\n{log.read_text(errors='replace')}")
        if time.monotonic() > deadline:
            popen.kill()
            raise TimeoutError(f"{what} did not start within {timeout:.0f} s:\n{log.read_text(errors='replace')}")
        time.sleep(0.1)
    return [int(p) for p in port_file.read_text().split()]


def start(module: str, args: Sequence[str], *, threads: int = 1, timeout: float = 180.0,
          env: dict[str, str] | None = None, port_flags: Sequence[str] = ("--port", "0"),
          tls: TlsFiles | None = None) -> Proc:
    """Start `python -m module ARGS --port 0 --port-file F`, wait until its health service says SERVING.

    The port file holds the gRPC port, and for the controller the REST port after it.
    """
    tmp = Path(tempfile.mkdtemp(prefix="splitbed-"))
    port_file = tmp / "port"
    log = tmp / "log"
    popen = subprocess.Popen(
        [sys.executable, "-m", module, *args, *port_flags, "--port-file", str(port_file)],
        stdout=log.open("wb"), stderr=subprocess.STDOUT, env=env or child_env(threads), cwd=ROOT,
    )
    deadline = time.monotonic() + timeout
    ports = wait_port_file(popen, port_file, log, timeout, module)
    proc = Proc(popen, ports[0], log, ports[1] if len(ports) > 1 else None)
    wait_healthy(proc.address, timeout=max(1.0, deadline - time.monotonic()), tls=tls)
    return proc


def start_edge(split: int, rho: float = 1.0, method: str = "structured-magnitude", model: str = "minilm",
               extra: Sequence[str] = (), threads: int = 1) -> Proc:
    return start("edge_server", ["serve", "--model", model, "--split", str(split), "--rho", str(rho),
                                 "--method", method, "--host", "127.0.0.1", *extra], threads=threads)


def start_controller(extra: Sequence[str] = (), tls: TlsFiles | None = None,
                     env: dict[str, str] | None = None) -> Proc:
    # A state file of its own unless given: never the shared default in the working directory.
    state = [] if "--state" in extra else ["--state", tempfile.mktemp(prefix="splitbed-state-", suffix=".sqlite")]
    return start("controller", ["serve", "--host", "127.0.0.1", *state, *extra],
                 port_flags=("--grpc-port", "0", "--rest-port", "0"), tls=tls, env=env)


@contextlib.contextmanager
def controller_and_edge(controller_args: Sequence[str],
                        start_edge_under: Callable[[Proc], Proc]) -> Iterator[tuple[Proc, Proc]]:
    """A controller and an edge server registered with it; both stopped on exit (the controller too if the
    edge fails to start)."""
    controller = start_controller(controller_args)
    try:
        edge = start_edge_under(controller)
    except BaseException:
        controller.stop()
        raise
    try:
        yield controller, edge
    finally:
        edge.stop()
        controller.stop()
