"""tbf link backend: exact tc command lines with a fake runner, and a real veth pair in netns."""

from __future__ import annotations

import json
import logging
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence

import pytest

from splitbed.channel import power_for_rate
from splitbed.errors import NotFound, PermissionDenied, Unavailable
from splitbed.hw.link import TbfLink, make_link
from splitbed.hw.link_tbf import DEFAULT_QUEUE_BYTES

B, N0, G = 5e6, 2e-19, 1e-3 * 500 ** -2.8


class FakeTc:
    """Records command lines and keeps the 'kernel' rate so ``tc -j qdisc show`` can report it."""

    def __init__(self, *, fail_with: str | None = None) -> None:
        self.calls: list[list[str]] = []
        self.rate_Bps: int | None = None
        self.fail_with = fail_with

    def __call__(self, args: Sequence[str]) -> subprocess.CompletedProcess[str]:
        args = list(args)
        self.calls.append(args)
        if self.fail_with:
            return subprocess.CompletedProcess(args, 2, "", self.fail_with)
        if "-j" in args:
            qdiscs = [{"kind": "tbf", "root": True, "options": {"rate": self.rate_Bps, "burst": 3028}}]
            return subprocess.CompletedProcess(args, 0, json.dumps(qdiscs), "")
        if "rate" in args:
            self.rate_Bps = int(args[args.index("rate") + 1].removesuffix("bit")) // 8
        return subprocess.CompletedProcess(args, 0, "", "")


def test_replace_then_change_exact_command_lines() -> None:
    fake = FakeTc()
    link = make_link("tbf", dev="veth0", runner=fake)
    assert isinstance(link, TbfLink)
    first = link.set_rate_bps(5_000_000)
    second = link.set_rate_bps(2_000_000)
    assert fake.calls[0] == ["tc", "qdisc", "replace", "dev", "veth0", "root", "tbf",
                             "rate", "5000000bit", "burst", "3028", "latency", "6711ms"]
    assert fake.calls[1] == ["tc", "-j", "qdisc", "show", "dev", "veth0"]
    assert fake.calls[2] == ["tc", "qdisc", "change", "dev", "veth0", "root", "tbf",
                             "rate", "2000000bit", "burst", "3028", "latency", "16778ms"]
    assert first.rate_bps == 5e6 and second.rate_bps == 2e6
    assert link.burst_for(40e6) == 10_000  # above one frame's worth: 2 ms of traffic
    assert second.rate_source == "enforced:tc-tbf" and second.backend == "tbf"


def test_apply_maps_power_to_rate_and_runs_in_netns() -> None:
    fake = FakeTc()
    link = TbfLink("va", netns="sb-test", runner=fake, burst_bytes=10000, latency_ms=20, min_queue_bytes=0)
    power = power_for_rate(4e6, B, N0, G)
    applied = link.apply(power, bandwidth_hz=B, noise_psd=N0, gain=G)
    assert fake.calls[0] == ["ip", "netns", "exec", "sb-test", "tc", "qdisc", "replace", "dev", "va", "root",
                             "tbf", "rate", "4000000bit", "burst", "10000", "latency", "20ms"]
    assert applied.power_w == power and applied.rate_bps == 4e6
    link.close()
    assert fake.calls[-1] == ["ip", "netns", "exec", "sb-test", "tc", "qdisc", "del", "dev", "va", "root"]


def test_latency_is_raised_until_the_queue_holds_a_whole_tcp_send_buffer() -> None:
    # A shorter queue drops the tail of an upload TCP sent in one go (alternate uploads at half the rate).
    link = TbfLink("veth0", runner=FakeTc(), latency_ms=50)
    assert link.latency_for(1e9) == 50  # 50 ms at 1 Gbit/s is 6.25 MB: enough
    assert link.latency_for(10e6) == 3356  # 4 MiB at 10 Mbit/s
    assert link.latency_for(1e6) == 33555
    for rate in (0.5e6, 2e6, 10e6, 100e6):
        assert rate / 8 * link.latency_for(rate) / 1e3 >= DEFAULT_QUEUE_BYTES == 4 * 1024 * 1024
    assert TbfLink("veth0", runner=FakeTc(), min_queue_bytes=2 * 65536).latency_for(1e6) == 1049


def test_the_agent_sizes_the_tbf_queue_from_its_setting() -> None:
    from device_agent.settings import AgentSettings
    from device_agent.uplink import Uplink

    default = Uplink(AgentSettings(link="tbf", link_dev="veth0")).backend
    bigger = Uplink(AgentSettings(link="tbf", link_dev="veth0", link_queue_bytes=4 * DEFAULT_QUEUE_BYTES)).backend
    assert isinstance(default, TbfLink) and isinstance(bigger, TbfLink)
    assert default.latency_for(10e6) == TbfLink("veth0").latency_for(10e6)
    assert bigger.latency_for(10e6) == pytest.approx(4 * default.latency_for(10e6), rel=1e-3)


def test_operation_not_permitted_is_permission_denied() -> None:
    link = TbfLink("eth0", runner=FakeTc(fail_with="RTNETLINK answers: Operation not permitted"))
    with pytest.raises(PermissionDenied) as info:
        link.set_rate_bps(1e6)
    msg = str(info.value)
    assert "cap_add: [NET_ADMIN]" in msg and "setcap cap_net_admin+ep" in msg and "tc qdisc replace" in msg


def test_unknown_device_and_missing_tc() -> None:
    with pytest.raises(NotFound, match="interface"):
        TbfLink("nope0", runner=FakeTc(fail_with='Cannot find device "nope0"')).set_rate_bps(1e6)

    def absent(args: Sequence[str]) -> subprocess.CompletedProcess[str]:
        raise FileNotFoundError(args[0])

    with pytest.raises(Unavailable, match="iproute2"):
        TbfLink("eth0", runner=absent).set_rate_bps(1e6)


# ---- real kernel shaping between two network namespaces ----------------------------------

RECEIVER = r"""
import json, socket, sys, time
srv = socket.socket()
srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
srv.bind((sys.argv[1], 5201)); srv.listen(1)
srv.settimeout(10)
print("ready", flush=True)
runs = []
for _ in range(int(sys.argv[2])):
    conn, _ = srv.accept()
    conn.settimeout(10)
    total, samples = 0, []
    while data := conn.recv(1 << 16):
        total += len(data)
        samples.append((time.monotonic(), total))
    conn.close()
    runs.append(samples)
print(json.dumps(runs), flush=True)
"""

SENDER = r"""
import socket, sys, time
s = socket.create_connection((sys.argv[1], 5201), timeout=5)
print("connected", flush=True)
deadline = time.monotonic() + float(sys.argv[2])
payload = b"\0" * (1 << 16)
while time.monotonic() < deadline:
    s.sendall(payload)
s.close()
"""


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True, text=True, timeout=10)


@pytest.fixture
def veth_pair() -> Iterator[tuple[str, str, str, str]]:
    """Two namespaces joined by a veth pair; yields (sender ns, sender dev, receiver ns, receiver addr)."""
    if os.geteuid() != 0:
        pytest.skip("needs root (network namespaces)")
    if shutil.which("ip") is None or shutil.which("tc") is None:
        pytest.skip("needs ip and tc (apt-get install iproute2)")
    tag = f"sb-{os.getpid()}-{time.monotonic_ns() % 10000}"
    ns_a, ns_b = f"{tag}-a", f"{tag}-b"
    net = f"10.200.{os.getpid() % 250}"
    try:
        _ip("netns", "add", ns_a)
    except subprocess.CalledProcessError as exc:
        pytest.skip(f"cannot create a network namespace (no CAP_SYS_ADMIN/NET_ADMIN?): {exc.stderr.strip()}")
    try:
        _ip("netns", "add", ns_b)
        _ip("-n", ns_a, "link", "add", "va", "type", "veth", "peer", "name", "vb", "netns", ns_b)
        _ip("-n", ns_a, "addr", "add", f"{net}.1/30", "dev", "va")
        _ip("-n", ns_b, "addr", "add", f"{net}.2/30", "dev", "vb")
        for ns, dev in ((ns_a, "va"), (ns_b, "vb")):
            _ip("-n", ns, "link", "set", dev, "up")
            _ip("-n", ns, "link", "set", "lo", "up")
        yield ns_a, "va", ns_b, f"{net}.2"
    finally:
        for ns in (ns_a, ns_b):
            subprocess.run(["ip", "netns", "del", ns], capture_output=True, timeout=10)


def _rx_bytes(pid: int, dev: str) -> int:
    """Bytes received on ``dev`` in the network namespace of process ``pid`` (no subprocess: exact timing)."""
    with open(f"/proc/{pid}/net/dev") as f:
        for line in f:
            name, _, rest = line.partition(":")
            if name.strip() == dev:
                return int(rest.split()[0])
    raise AssertionError(f"{dev} not in /proc/{pid}/net/dev")


@pytest.mark.root
def test_tbf_tracks_rate_changes_on_a_real_veth(veth_pair: tuple[str, str, str, str]) -> None:
    """One qdisc, changed in place (`tc qdisc change`) between three TCP transfers of ~1 s each.

    Throughput is what arrives on the receiver's veth, sampled from the
    receiver namespace's /proc/<pid>/net/dev, so a descheduled receiver on a
    busy host does not distort it. A change flushes the tbf backlog (the
    kernel swaps its fifo child), which sends a running TCP flow into loss
    recovery for up to a second; each rate therefore gets its own connection
    so the check measures the shaper, not TCP's recovery.
    """
    ns_a, dev, ns_b, addr = veth_pair
    rates = [2e6, 5e6, 10e6]
    settle_s, window_s = 0.3, 0.8
    link = TbfLink(dev, netns=ns_a)
    receiver = subprocess.Popen(["ip", "netns", "exec", ns_b, sys.executable, "-c", RECEIVER, addr, str(len(rates))],
                                stdout=subprocess.PIPE, text=True)
    try:
        assert receiver.stdout is not None and receiver.stdout.readline().strip() == "ready"
        measured = []
        for rate in rates:
            applied = link.apply(power_for_rate(rate, B, N0, G), bandwidth_hz=B, noise_psd=N0, gain=G)
            assert applied.rate_bps == pytest.approx(rate, rel=1e-3)  # read back from the kernel
            sender = subprocess.Popen(["ip", "netns", "exec", ns_a, sys.executable, "-c", SENDER, addr,
                                       str(settle_s + window_s + 0.2)], stdout=subprocess.PIPE, text=True)
            assert sender.stdout is not None and sender.stdout.readline().strip() == "connected"
            time.sleep(settle_s)
            n0, t0 = _rx_bytes(receiver.pid, "vb"), time.monotonic()
            time.sleep(window_s)
            n1, t1 = _rx_bytes(receiver.pid, "vb"), time.monotonic()
            measured.append((n1 - n0) * 8 / (t1 - t0))
            sender.communicate(timeout=15)
            assert sender.returncode == 0
        logging.getLogger(__name__).info("tbf shaped %s Mbit/s, measured %s Mbit/s",
                                         [r / 1e6 for r in rates], [round(m / 1e6, 3) for m in measured])
        out, _ = receiver.communicate(timeout=15)
        payload = [run[-1][1] for run in json.loads(out)]
        assert all(n > 0 for n in payload), "a TCP transfer delivered nothing"
        for rate, got in zip(rates, measured, strict=True):
            # Frames on the wire, as tbf counts them (Ethernet + IP + TCP headers included).
            assert got == pytest.approx(rate, rel=0.10), f"{rate / 1e6} Mbit/s shaped, {got / 1e6:.2f} measured"
    finally:
        if receiver.poll() is None:
            receiver.kill()
            receiver.wait(timeout=5)
        link.close()
