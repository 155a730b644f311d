"""Plans and their two-phase push: servers first, then devices; a server that does not ack is dropped.

No request is ever sent for a version the server does not serve: every edge
server watching configs receives config v and acknowledges it (it has loaded
the part), then the device agents receive it. A server that does not answer
within the ack timeout, or fails to apply, is left out of that push so one dead
server cannot block the others; the push fails only when no server applied it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from dataclasses import dataclass, field

from controller.problem import Answer
from controller.registry import Node
from controller.settings import ControllerSettings
from splitbed.errors import FailedPrecondition, Unavailable
from splitbed.v1 import control_pb2

logger = logging.getLogger(__name__)

PIN_FIELDS = ("split", "rho_device", "rho_server", "power_w", "freq_device_hz", "freq_server_hz")


@dataclass
class Plan:
    config: control_pb2.Config
    answer: Answer
    status: str = "pending"  # pending -> applied | failed
    created_at: float = field(default_factory=time.time)
    dropped: list[str] = field(default_factory=list)


def config_from_answer(version: int, answer: Answer, model: str, settings: ControllerSettings,
                       reason: str) -> control_pb2.Config:
    st = answer.stage
    assert answer.split is not None and st is not None
    return control_pb2.Config(
        version=version, model=model, method=settings.method, encoding=settings.encoding or "", reason=reason,
        knobs=control_pb2.Knobs(
            split=answer.split, rho_device=answer.rho_device or 0.0, rho_server=answer.rho_server or 0.0,
            power_w=answer.power_w or 0.0, freq_device_hz=answer.freq_device_hz or 0.0,
            freq_server_hz=answer.freq_server_hz or 0.0,
        ),
        predicted=control_pb2.Prediction(
            t_device_s=st.t_device, t_upload_s=st.t_upload, t_server_s=st.t_server,
            latency_s=answer.latency_s or 0.0, e_device_j=st.e_device, e_upload_j=st.e_upload,
            e_server_j=st.e_server, energy_j=answer.energy_j or 0.0, rate_bps=answer.rate_bps or 0.0,
            log2_distortion_bound=answer.log2_distortion_bound or 0.0, t_fixed_s=st.t_fixed,
        ),
    )


async def _wait_acks(targets: list[Node], version: int, timeout_s: float) -> None:
    waits = [asyncio.ensure_future(n.acks.setdefault(version, asyncio.Event()).wait()) for n in targets]
    try:
        await asyncio.wait(waits, timeout=timeout_s)
    finally:
        for w in waits:
            w.cancel()
        for w in waits:
            with contextlib.suppress(asyncio.CancelledError):
                await w


async def push_plan(plan: Plan, servers: list[Node], devices: list[Node], ack_timeout_s: float) -> None:
    """Push to servers, wait for their acks (dropping the silent), then to devices; raise if none applied."""
    version = plan.config.version
    targets = [n for n in servers if n.queue is not None]
    if not targets:
        plan.status = "failed"
        raise Unavailable("no edge server is watching configs")
    for node in targets:
        node.acks.setdefault(version, asyncio.Event())
        assert node.queue is not None
        node.queue.put_nowait(plan.config)
    await _wait_acks(targets, version, ack_timeout_s)
    applied = [n for n in targets if n.acked_version >= version]
    for node in targets:
        acked = node.acks.pop(version, None)
        if node in applied:
            continue
        if acked is None or not acked.is_set():
            node.ack_error = f"version {version}: no acknowledgement within {ack_timeout_s:g} s"
        plan.dropped.append(node.node_id)
        logger.warning("edge server %s dropped from the push of version %d: %s", node.node_id, version,
                       node.ack_error)
    if not applied:
        plan.status = "failed"
        errors = [n.ack_error for n in targets]
        if all(e and "no acknowledgement" in e for e in errors):
            raise Unavailable(f"no edge server applied version {version} within {ack_timeout_s:g} s")
        raise FailedPrecondition(f"version {version} not applied by {[n.node_id for n in targets]}: {errors}")
    plan.status = "applied"
    for node in devices:
        if node.queue is not None:
            node.queue.put_nowait(plan.config)
    logger.info("plan version %d pushed (%s)%s", version, plan.config.reason,
                f"; dropped {plan.dropped}" if plan.dropped else "")
