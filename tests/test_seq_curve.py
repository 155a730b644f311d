"""The controller plans each side at the device's sequence length from the node's FLOP/s-vs-length curve."""

from __future__ import annotations

import pytest

from controller.live_problem import problem_dict
from controller.seq_curve import flops_at, flops_per_cycle_at
from controller.settings import ControllerSettings
from splitbed.v1 import control_pb2


def _compute(points: dict[int, float], clock_hz: float = 2e9, c: float = 32.0) -> control_pb2.ComputeProfile:
    return control_pb2.ComputeProfile(
        achieved_flops_per_s=c * clock_hz, clock_hz=clock_hz, flops_per_cycle=c, f_max_hz=clock_hz,
        f_min_hz=clock_hz / 4, clock_backend="emulated", pue=1.0, power_coeff=1e-28,
        flops_by_seq_len=[control_pb2.SeqFlops(seq_len=n, achieved_flops_per_s=a) for n, a in points.items()])


def test_curve_is_read_at_measured_lengths_and_interpolated_in_log_length():
    comp = _compute({32: 20e9, 128: 60e9, 64: 40e9})
    assert flops_at(comp, 64) == 40e9
    assert flops_at(comp, 16) == 20e9 and flops_at(comp, 512) == 60e9  # nearest end outside
    assert flops_at(comp, 90) == pytest.approx(40e9 + 20e9 * 0.49185, rel=1e-4)  # log2(90/64) = 0.4919
    assert flops_per_cycle_at(comp, 32) == pytest.approx(10.0)


def test_no_curve_keeps_the_profiles_flops_per_cycle():
    comp = _compute({})
    assert flops_at(comp, 64) is None
    assert flops_per_cycle_at(comp, 64) == 32.0


def test_live_problem_plans_the_server_at_the_devices_length():
    device = control_pb2.NodeProfile(model="m", n_layers=1, seq_len=32, compute=_compute({}, 1e9, 16.0),
                                     splits=[control_pb2.SplitCost(split=0, device_flops=1e6, server_flops=1e9,
                                                                   payload_bits=1e4)],
                                     link=control_pb2.LinkProfile(gain=1e-9, bandwidth_hz=1e6,
                                                                  noise_psd_w_per_hz=1e-20, p_max_w=1.0))
    server = control_pb2.NodeProfile(model="m", n_layers=1, seq_len=128,
                                     compute=_compute({32: 32e9, 128: 64e9}))
    d = problem_dict(device, server, ControllerSettings(), latency_s=1.0, energy_j=1.0)
    assert d["server"]["flops_per_cycle"] == pytest.approx(16.0)  # 32 GFLOP/s at 2 GHz, measured at 32 tokens
    assert d["device"]["flops_per_cycle"] == 16.0
