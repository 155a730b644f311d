"""Achieved FLOP/s at the sequence length a device sends, from a node's measured curve.

A node may time its part at several sequence lengths (`ComputeProfile.
flops_by_seq_len`); the FLOP/s a clock achieves depends on the matrix sizes,
so the controller plans each side at the device's length: linear
interpolation in log2(length) between the two nearest measured lengths, the
nearest end outside them. FLOPs per cycle follow as achieved / clock_hz.
"""

from __future__ import annotations

import bisect
import math

from splitbed.v1 import control_pb2


def flops_at(compute: control_pb2.ComputeProfile, seq_len: int) -> float | None:
    """Achieved FLOP/s at `seq_len` from the curve; None when the node measured no curve."""
    points = sorted((p.seq_len, p.achieved_flops_per_s) for p in compute.flops_by_seq_len
                    if p.seq_len > 0 and p.achieved_flops_per_s > 0)
    if not points or seq_len <= 0:
        return None
    lens = [n for n, _ in points]
    i = bisect.bisect_left(lens, seq_len)
    if i < len(lens) and lens[i] == seq_len:
        return points[i][1]
    if i == 0:
        return points[0][1]
    if i == len(points):
        return points[-1][1]
    (n0, a0), (n1, a1) = points[i - 1], points[i]
    w = (math.log2(seq_len) - math.log2(n0)) / (math.log2(n1) - math.log2(n0))
    return a0 + w * (a1 - a0)


def flops_per_cycle_at(compute: control_pb2.ComputeProfile, seq_len: int) -> float:
    """FLOPs per cycle c at the device's `seq_len`: from the curve where there is one, else the profile's c."""
    achieved = flops_at(compute, seq_len)
    if achieved is None or compute.clock_hz <= 0:
        return compute.flops_per_cycle
    return achieved / compute.clock_hz
