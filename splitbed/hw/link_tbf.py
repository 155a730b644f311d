"""Kernel-enforced uplink rate with a Linux ``tbf`` qdisc on the sender's interface.

The first ``apply`` installs ``tc qdisc replace dev IF root tbf rate R burst B
latency L``; later ones change it live with ``tc qdisc change``; the rate in
force is read back from ``tc -j qdisc show``. Needs CAP_NET_ADMIN. With
``netns`` set every command runs in that network namespace.

Queue size: tbf's queue holds ``rate * latency`` bytes, and a packet that
finds it full is dropped. The rate model has no losses (an upload of theta
bits takes theta / r(p)), so the queue must hold whatever TCP hands it at
once, which can be a whole upload: the window grows over earlier uploads
(BBR even reads the bucket's line-rate bursts as Gbit/s of bandwidth). With a
128 KiB queue, 196 kB uploads at 10 Mbit/s lost 20-30 segments to tbf every
other request and took 0.36 s instead of 0.16 s (a lost tail waits for a loss
probe or a 200 ms RTO). So the latency passed to tc is raised until the queue
holds ``min_queue_bytes``: 4 MiB by default, Linux's default ``tcp_wmem``
maximum, the most one TCP socket keeps unacknowledged, so one connection never
overflows it. (It also covers GSO/TSO's 64 KiB super-packets, which a shorter
queue drops segments of.) ``tc qdisc change`` swaps tbf's fifo and drops its
backlog: a running TCP flow loses those packets and recovers within about a
second.
"""

from __future__ import annotations

import json
import logging
import math
import subprocess
from collections.abc import Sequence

from splitbed.errors import FailedPrecondition, InvalidArgument, NotFound, PermissionDenied, Unavailable
from splitbed.hw.commands import Runner, in_netns, run_command
from splitbed.hw.link_base import AppliedLink, LinkBackend, check_rate, model_rate_bps

logger = logging.getLogger(__name__)

NET_ADMIN_HINT = (
    "tc needs CAP_NET_ADMIN: run as root, start the container with `cap_add: [NET_ADMIN]` "
    "(docker run --cap-add NET_ADMIN), or grant the binary the capability with "
    "`sudo setcap cap_net_admin+ep $(command -v tc)`. Or use --link pacer."
)

# One MTU-sized frame plus headroom: tbf drops packets larger than its burst.
MIN_BURST_BYTES = 3028
# Default bucket, as seconds of traffic at the rate. Small, so that uploads of a few ms are mostly paced at r(p)
# and the agent's channel estimate (device_agent/channel_estimate.py, uploads over 4 buckets) has uploads to use:
# with 10 ms, compose's 17-19 ms int8 uploads were under 2 buckets and the gain was never estimated.
DEFAULT_BURST_S = 0.002
# Linux's default net.ipv4.tcp_wmem maximum: a send buffer, hence a TCP socket's data in flight, is at most this.
DEFAULT_QUEUE_BYTES = 4 * 1024 * 1024


def tc_error(args: Sequence[str], proc: subprocess.CompletedProcess[str]) -> Exception:
    """The domain error for a failed ``tc``/``ip`` call."""
    err = (proc.stderr or proc.stdout or "").strip()
    line = " ".join(args)
    low = err.lower()
    if "operation not permitted" in low or "permission denied" in low:
        return PermissionDenied(f"`{line}` failed: {err}. {NET_ADMIN_HINT}")
    if "cannot find device" in low or "no such device" in low:
        return NotFound(f"`{line}` failed: {err} (is the interface name right, and in the right netns?)")
    if "no such file" in low and "netns" in line:
        return NotFound(f"`{line}` failed: {err} (the network namespace does not exist)")
    return FailedPrecondition(f"`{line}` failed with exit {proc.returncode}: {err}")


class TbfLink(LinkBackend):
    """Rate-limits interface ``dev`` to r(p) with tbf.

    ``emulated=True``: the rate is really enforced by the kernel, but no radio
    power changes; ``rate_source`` is ``enforced:tc-tbf``.
    """

    name = "tbf"
    emulated = True

    def __init__(
        self,
        dev: str,
        *,
        netns: str | None = None,
        burst_bytes: int | None = None,
        latency_ms: float = 50.0,
        min_queue_bytes: int = DEFAULT_QUEUE_BYTES,
        runner: Runner = run_command,
        tc: str = "tc",
        ip: str = "ip",
    ) -> None:
        if not dev:
            raise InvalidArgument("tbf needs an interface name (dev)")
        if latency_ms <= 0:
            raise InvalidArgument(f"latency_ms must be positive, got {latency_ms!r}")
        self.dev = dev
        self.netns = netns
        self._burst = burst_bytes
        self._latency_ms = latency_ms
        self._min_queue = max(0, min_queue_bytes)
        self._runner = runner
        self._tc = tc
        self._ip = ip
        self._installed = False

    def _run(self, args: Sequence[str]) -> subprocess.CompletedProcess[str]:
        full = in_netns(self.netns, args, self._ip)
        try:
            proc = self._runner(full)
        except FileNotFoundError as exc:
            raise Unavailable(f"`{full[0]}` is not installed (apt-get install iproute2)") from exc
        except subprocess.TimeoutExpired as exc:
            raise Unavailable(f"`{' '.join(full)}` did not finish within {exc.timeout:g} s") from None
        if proc.returncode != 0:
            raise tc_error(full, proc)
        return proc

    def burst_for(self, rate_bps: float) -> int:
        """Burst bytes: the configured value, else DEFAULT_BURST_S of traffic but at least one frame."""
        if self._burst is not None:
            return self._burst
        return max(MIN_BURST_BYTES, round(rate_bps / 8 * DEFAULT_BURST_S))

    def latency_for(self, rate_bps: float) -> float:
        """Queue latency in ms: the configured one, raised so the queue holds ``min_queue_bytes``."""
        return max(self._latency_ms, math.ceil(self._min_queue * 8 / rate_bps * 1e3))

    def command(self, verb: str, rate_bps: float) -> list[str]:
        """The tc command line (without netns prefix) for ``verb`` = replace | change."""
        return [
            self._tc, "qdisc", verb, "dev", self.dev, "root", "tbf",
            "rate", f"{round(rate_bps)}bit",
            "burst", str(self.burst_for(rate_bps)),
            "latency", f"{self.latency_for(rate_bps):g}ms",
        ]

    def read_rate_bps(self) -> float | None:
        """The rate of the root tbf on ``dev`` per ``tc -j qdisc show`` (bytes/s there), or None."""
        proc = self._run([self._tc, "-j", "qdisc", "show", "dev", self.dev])
        try:
            for q in json.loads(proc.stdout or "[]"):
                if q.get("kind") == "tbf" and q.get("root"):
                    return float(q["options"]["rate"]) * 8
        except (ValueError, KeyError, TypeError):
            logger.warning("could not parse tc output for %s: %r", self.dev, proc.stdout[:200])
        return None

    def apply(self, power_w: float, *, bandwidth_hz: float, noise_psd: float, gain: float) -> AppliedLink:
        rate = model_rate_bps(power_w, bandwidth_hz=bandwidth_hz, noise_psd=noise_psd, gain=gain)
        return self._set(power_w, rate)

    def set_rate_bps(self, rate_bps: float) -> AppliedLink:
        """Shape to ``rate_bps`` directly (no power model); power is reported as 0."""
        return self._set(0.0, check_rate(rate_bps))

    def _set(self, power_w: float, rate: float) -> AppliedLink:
        # tc rates are integer bit/s; below 8 bit/s the kernel's bytes/s field is 0.
        rate = max(rate, 8.0)
        cmd = self.command("change" if self._installed else "replace", rate)
        self._run(cmd)
        self._installed = True
        applied = self.read_rate_bps()
        if applied is None:
            applied = float(round(rate))
            logger.warning("tbf on %s: no read-back, reporting the requested rate", self.dev)
        logger.info("tbf %s: %.4f W -> %.3f Mbit/s (applied %.3f)", self.dev, power_w, rate / 1e6, applied / 1e6)
        where = f" in netns {self.netns}" if self.netns else ""
        return AppliedLink(power_w, applied, self.name, True, " ".join(cmd) + where, "enforced:tc-tbf")

    def close(self) -> None:
        """Remove the qdisc this backend installed (the interface's default comes back)."""
        if not self._installed:
            return
        try:
            self._run([self._tc, "qdisc", "del", "dev", self.dev, "root"])
        except NotFound:
            logger.debug("tbf %s: interface gone before close", self.dev)
        self._installed = False
