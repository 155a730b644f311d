"""The experiments' own P1 (used for budget scaling and the measured objective) is the controller's live P1.

`experiments.live.problem_from_nodes` rebuilds the problem from what `GET /v1/nodes` shows; if it drifts from
`controller.live_problem.problem_dict` (a field the controller plans with and the driver leaves out), the
measured-objective points are solved on another problem than the bound ones they are compared with.
"""

from __future__ import annotations

from typing import Any

import pytest
from google.protobuf.json_format import MessageToDict

from controller.live_problem import problem_dict
from controller.settings import ControllerSettings
from experiments.config import LiveSpec
from experiments.live import problem_from_nodes
from splitbed.model import resolve_model
from splitbed.side.profile import node_profile
from splitbed.v1 import control_pb2

SEQ = 64


def _profiles() -> tuple[control_pb2.NodeProfile, control_pb2.NodeProfile]:
    src = resolve_model("minilm")
    dev_c = control_pb2.ComputeProfile(achieved_flops_per_s=3.2e10, clock_hz=1e9, flops_per_cycle=32.0,
                                       f_max_hz=1e9, f_min_hz=2e8, clock_backend="emulated", pue=1.0,
                                       power_coeff=1e-28, clock_steps_hz=[2e8, 6e8, 1e9])
    srv_c = control_pb2.ComputeProfile(achieved_flops_per_s=6.3e10, clock_hz=2e9, flops_per_cycle=31.5,
                                       f_max_hz=2e9, f_min_hz=8e8, clock_backend="emulated", pue=2.0,
                                       power_coeff=1e-28, clock_steps_hz=[8e8, 1.4e9, 2e9])
    srv_c.flops_by_seq_len.add(seq_len=32, achieved_flops_per_s=6.0e10)
    srv_c.flops_by_seq_len.add(seq_len=128, achieved_flops_per_s=6.4e10)
    link = control_pb2.LinkProfile(bandwidth_hz=5e6, noise_psd_w_per_hz=2e-19, gain=2.77e-11, p_max_w=0.5)
    dev = node_profile(model="minilm", source=src, seq_len=SEQ, compute=dev_c, encoding="fp16", link=link)
    dev.fixed_latency_s = 0.0031
    srv = node_profile(model="minilm", source=src, seq_len=SEQ, compute=srv_c)
    return dev, srv


class _Nodes:
    def __init__(self, dev: control_pb2.NodeProfile, srv: control_pb2.NodeProfile) -> None:
        self._dev, self._srv = dev, srv

    def device(self) -> dict[str, Any]:
        return {"node_id": "device-0", "role": "device", "profile": MessageToDict(self._dev,
                                                                                  preserving_proto_field_name=True)}

    def server(self) -> dict[str, Any]:
        return {"node_id": "edge-0", "role": "server", "profile": MessageToDict(self._srv,
                                                                                preserving_proto_field_name=True)}


@pytest.mark.parametrize("split", [0, 2, 5])
def test_driver_problem_equals_the_controllers(split: int) -> None:
    dev, srv = _profiles()
    lv = LiveSpec(model="minilm", seq_len=SEQ, encoding="fp16")
    ours = problem_from_nodes(_Nodes(dev, srv), lv, split, 0.1, 0.01)  # type: ignore[arg-type]
    settings = ControllerSettings(rho_min_device=lv.rho_min, rho_min_server=lv.rho_min)
    theirs = problem_dict(dev, srv, settings, latency_s=0.1, energy_j=0.01)
    theirs["splits"] = [s for s in theirs["splits"] if s["split"] == split]
    for key in ("device", "server", "link", "budget", "n_layers", "rho_min_device", "rho_min_server",
                "fixed_latency_s", "splits"):
        assert _close(ours[key], theirs[key]), (key, ours[key], theirs[key])


def _close(a: Any, b: Any) -> bool:
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_close(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_close(x, y) for x, y in zip(a, b, strict=True))
    return bool(a == pytest.approx(b, rel=1e-9))
