"""Build the P1 problem of the live system from the profiles the nodes registered.

Nothing here is typed in by hand: FLOPs, parameter counts and payload bits
per split come from the device's profile (its model), f_max and FLOPs/cycle
from each side's measured compute profile, the link from the device's link
profile (gain estimated from the measured path).
"""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError

from controller.problem import Problem
from controller.seq_curve import flops_per_cycle_at
from controller.settings import ControllerSettings
from splitbed.errors import FailedPrecondition
from splitbed.v1 import control_pb2


def validation_message(exc: ValidationError) -> str:
    """One line per bad field, each naming the field (the same text REST returns as 422 detail)."""
    parts = []
    for err in exc.errors():
        loc = ".".join(str(x) for x in err["loc"]) or "(body)"
        parts.append(f"{loc}: {err['msg']}")
    return "; ".join(parts)


def _processor(profile: control_pb2.NodeProfile, who: str, seq_len: int = 0) -> dict[str, Any]:
    c = profile.compute
    if c.f_max_hz <= 0 or c.flops_per_cycle <= 0:
        raise FailedPrecondition(f"{who} profile has no compute figures (f_max_hz, flops_per_cycle)")
    # Planned at the length the device sends, where the node measured its FLOP/s against length.
    return {"f_max_hz": c.f_max_hz, "f_min_hz": min(c.f_min_hz, c.f_max_hz),
            "flops_per_cycle": flops_per_cycle_at(c, seq_len),
            "pue": c.pue or 1.0, "power_coeff": c.power_coeff or 1e-28,
            # The plan's clocks are put on the steps the node's clock backend really offers.
            "clock_steps_hz": [f for f in c.clock_steps_hz if 0.0 < f <= c.f_max_hz]}


def problem_dict(
    device: control_pb2.NodeProfile,
    server: control_pb2.NodeProfile,
    settings: ControllerSettings,
    *,
    latency_s: float,
    energy_j: float,
    pins: dict[str, float] | None = None,
) -> dict[str, Any]:
    if device.model != server.model:
        raise FailedPrecondition(f"device runs {device.model!r} but the server runs {server.model!r}")
    if not device.splits:
        raise FailedPrecondition("device profile lists no split points")
    link = device.link
    if link.gain <= 0 or link.bandwidth_hz <= 0:
        raise FailedPrecondition("device profile has no link figures (gain, bandwidth_hz)")
    pins = dict(pins or {})
    # A side without a clock backend cannot be capped: plan it at its (nominal) f_max.
    for profile, key in ((device, "freq_device_hz"), (server, "freq_server_hz")):
        if profile.compute.clock_backend == "none":
            pins.setdefault(key, profile.compute.f_max_hz)
    splits = [
        {
            "split": s.split,
            "device_flops": s.device_flops,
            "server_flops": s.server_flops,
            "device_params": s.device_params,
            "server_params": s.server_params,
            "payload_bits": s.payload_bits,
        }
        for s in device.splits
    ]
    return {
        "device": _processor(device, "device"),
        "server": _processor(server, "server", device.seq_len),
        "link": {"bandwidth_hz": link.bandwidth_hz, "noise_psd_w_per_hz": link.noise_psd_w_per_hz,
                 "gain": link.gain, "p_max_w": link.p_max_w},
        "budget": {"latency_s": latency_s, "energy_j": energy_j},
        "bits_per_param": settings.bits_per_param,
        "entropy_bits_per_param": settings.entropy_bits_per_param,
        "n_layers": device.n_layers,
        "rho_min_device": settings.rho_min_device,
        "rho_min_server": settings.rho_min_server,
        "splits": splits,
        "pins": {k: v for k, v in pins.items() if v is not None},
        # T_fix as the device measured it on its requests (or by probes before its first request).
        "fixed_latency_s": max(device.fixed_latency_s, 0.0),
    }


def build_problem(*args: Any, **kwargs: Any) -> Problem:
    """`problem_dict(...)` validated into the solver's problem."""
    return Problem.model_validate(problem_dict(*args, **kwargs))
