"""Random multi-device problems near the paper's setting, for the solver's tests and benchmark.

The model is BERT-base as in examples/paper.json (FLOPs, parameters and payload
per split); the devices are drawn from the clock profiles in
`splitbed.hw.clock.profiles` (paper-device, raspberry-pi-4, jetson-orin-nano),
with f_max, the power coefficient, distance, power cap, budgets and rates
perturbed. Power coefficients phi are chosen so that phi f_max^3 is the board's
rough power draw under load (paper-device keeps the paper's 5e-29). Budgets are
drawn relative to what each device needs alone, so most instances are
feasible and the shared server or uplink is often the binding constraint.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np

from splitbed.hw.clock.profiles import get_profile

ROOT = Path(__file__).resolve().parent.parent
# (profile, power coefficient phi in W/(cycle/s)^3, PUE): phi f_max^3 ~ 0.05 W (paper), 4 W (Pi 4), 10 W (Orin Nano)
BOARDS: tuple[tuple[str, float, float], ...] = (
    ("paper-device", 5e-29, 1.0),
    ("raspberry-pi-4", 4.0 / 1.5e9**3, 1.0),
    ("jetson-orin-nano", 10.0 / 624.75e6**3, 1.0),
)
SERVER = {"f_max_hz": 4e9, "flops_per_cycle": 128, "pue": 2.0, "power_coeff": 1e-28, "f_min_hz": 4e8}
LINK = {"bandwidth_hz": 5e6, "noise_psd_w_per_hz": 2e-19}


def paper_splits(count: int, rng: np.random.Generator | None = None) -> list[dict[str, Any]]:
    """`count` of BERT-base's 13 split points, evenly spread and always with 0 and 12.

    With `rng`, the layers' FLOPs are scaled by 0.5-1.5 each (layers of unequal cost) and the
    hidden state sent from each middle split by 0.02-0.5 (a shorter sequence or a compressed
    encoding), so the best split is often in the middle; without, the paper's figures.
    """
    splits = json.loads((ROOT / "examples" / "paper.json").read_text())["splits"]
    total = splits[0]["server_flops"]
    layer = rng.uniform(0.5, 1.5, 12) if rng is not None else np.ones(12)
    cum = np.concatenate([[0.0], np.cumsum(layer)]) / layer.sum() * total
    keep = sorted({round(i * 12 / (count - 1)) for i in range(count)}) if count > 1 else [6]
    out = []
    for spec in splits:
        if spec["split"] not in keep:
            continue
        s, L = dict(spec), spec["split"]
        s["device_flops"], s["server_flops"] = float(cum[L]), max(float(total - cum[L]), 0.0) if L < 12 else 0.0
        if 0 < L < 12 and rng is not None:
            s["payload_bits"] *= float(rng.uniform(0.02, 0.5))
        out.append(s)
    return out


def board(name: str, rng: np.random.Generator | None = None) -> dict[str, float]:
    """A device processor from a clock profile; `rng` perturbs f_max (+-15%) and phi (x0.5-2)."""
    prof = get_profile(name)
    phi, pue = next((p, e) for n, p, e in BOARDS if n == name)
    f_max = prof.f_max_hz * (rng.uniform(0.85, 1.15) if rng is not None else 1.0)
    phi *= 2.0 ** rng.uniform(-1, 1) if rng is not None else 1.0
    return {"f_max_hz": f_max, "flops_per_cycle": prof.flops_per_cycle, "pue": pue, "power_coeff": phi,
            "f_min_hz": min(prof.f_min_hz, f_max)}


def _needs(dev: dict[str, float], server: dict[str, float], gain: float, p_max: float) -> tuple[float, float]:
    """Rough latency and energy of the whole model at full clocks at the cheaper of on-device and split 6."""
    n = 21.77e9
    t_dev = n / (dev["f_max_hz"] * dev["flops_per_cycle"])
    e_dev = dev["pue"] * n * dev["power_coeff"] * dev["f_max_hz"] ** 2 / dev["flops_per_cycle"]
    rate = LINK["bandwidth_hz"] * math.log2(1 + gain * p_max / (LINK["bandwidth_hz"] * LINK["noise_psd_w_per_hz"]))
    t_up, e_up = 1.6e6 / rate, p_max * 1.6e6 / rate
    t_srv = n / 2 / (server["f_max_hz"] * server["flops_per_cycle"])
    e_srv = server["pue"] * n / 2 * server["power_coeff"] * (server["f_max_hz"] / 2) ** 2 / server["flops_per_cycle"]
    return min(t_dev, t_dev / 2 + t_up + t_srv), min(e_dev, e_dev / 2 + e_up + e_srv)


def random_device(
    rng: np.random.Generator, i: int, splits: list[dict[str, Any]], server: dict[str, float]
) -> dict[str, Any]:
    name = str(rng.choice([b[0] for b in BOARDS]))
    dev = board(name, rng)
    distance = float(rng.uniform(150, 700))
    gain = 10 ** (-3.0) * distance ** -2.8
    p_max = float(rng.uniform(0.2, 1.0))
    t_need, e_need = _needs(dev, server, gain, p_max)
    latency = t_need * float(rng.uniform(0.6, 2.5))
    return {
        "id": f"dev-{i}-{name}", "device": dev, "distance_m": distance, "k0_db": -30.0, "alpha": 2.8,
        "p_max_w": p_max, "budget": {"latency_s": latency, "energy_j": e_need * float(rng.uniform(0.4, 2.0))},
        "rate_hz": float(rng.uniform(0.5, 1.0)) / latency, "weight": float(rng.choice([1.0, 1.0, 2.0])),
        "rho_min_device": 0.1, "rho_min_server": 0.1, "splits": splits,
    }


def random_points(rng: np.random.Generator) -> dict[str, list[list[float]]]:
    """Convex non-increasing distortion-vs-ratio points per side, as a measured curve would give."""
    out = {}
    for side in ("device", "server"):
        x = np.array([0.0, 0.25, 0.5, 0.75, 1.0])
        top = float(rng.uniform(2.0, 8.0))
        out[side] = [[float(r), float(1.0 + (top - 1.0) * (1.0 - r) ** rng.uniform(1.5, 3.0))] for r in x]
    return out


def random_problem(
    rng: np.random.Generator, devices: int, n_splits: int, measured: bool = False, tight: bool = False,
    **extra: Any,
) -> dict[str, Any]:
    """A multi-device problem (JSON form) with `devices` random devices and `n_splits` splits each.

    `measured`: the measured-distortion objective, with random convex curves per device.
    `tight`: twice the request rates and ratio floors of 0.7, so the best splits alone often overload the
    server and the search starts from phase 1.
    """
    splits = paper_splits(n_splits, rng)
    server = dict(SERVER, f_max_hz=SERVER["f_max_hz"] * float(rng.uniform(0.1, 0.6)))
    devs = [random_device(rng, i, splits, server) for i in range(devices)]
    if tight:
        for dev in devs:
            dev.update(rate_hz=2.0 * dev["rate_hz"], rho_min_device=0.7, rho_min_server=0.7)
    if measured:
        for dev in devs:
            dev["distortion_points"] = random_points(rng)
        extra = {"objective": "measured", **extra}
    return {"server": server, "link": dict(LINK), "u_max": 0.9, "devices": devs, **extra}
