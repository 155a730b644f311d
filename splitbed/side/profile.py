"""A node's measured profile for the controller: its compute and the cost of every split point."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from splitbed.kinds import Encoding
from splitbed.model import ModelSource, payload_bytes, split_table
from splitbed.side.hardware import ComputeHardware
from splitbed.side.timed import Part, achieved_flops_per_s
from splitbed.v1 import control_pb2


async def measure_compute(hw: ComputeHardware, part: Part | None, seq_len: int,
                          curve_lens: Sequence[int] = ()) -> control_pb2.ComputeProfile:
    """The side's compute as it runs now: achieved FLOP/s of its part (off the event loop) and its clock.

    With `curve_lens` the part is also timed at each of those sequence lengths
    (`flops_by_seq_len`): matrix sizes change what a clock achieves, and the
    controller plans at the length the device really sends.
    """
    lens = sorted({int(n) for n in curve_lens} | {seq_len}) if curve_lens else [seq_len]
    curve = {n: await asyncio.to_thread(achieved_flops_per_s, hw, part, n) for n in lens}
    profile = hw.compute_profile(curve[seq_len])
    if curve_lens and curve[seq_len] > 0:
        profile.flops_by_seq_len.extend(control_pb2.SeqFlops(seq_len=n, achieved_flops_per_s=a)
                                        for n, a in curve.items())
    return profile


def split_costs(source: ModelSource, seq_len: int, encoding: Encoding | None) -> list[control_pb2.SplitCost]:
    """Dense FLOPs and prunable parameters on each side of every split point L in [0, n].

    With an `encoding` (the device's) each row also carries the uplink payload
    in bits, the codec's exact size for a [1, seq_len, H] hidden state, except
    at L = n: the device pools the embedding itself and uploads nothing.
    """
    bits = 8 * payload_bytes(source.hidden_size, seq_len, encoding) if encoding else 0
    return [
        control_pb2.SplitCost(split=t.split, device_flops=t.device_flops, server_flops=t.server_flops,
                              device_params=t.device_prunable, server_params=t.server_prunable,
                              payload_bits=bits if t.split < source.n_layers else 0)
        for t in split_table(source, seq_len)
    ]


def node_profile(*, model: str, source: ModelSource, seq_len: int, compute: control_pb2.ComputeProfile,
                 encoding: Encoding | None = None,
                 link: control_pb2.LinkProfile | None = None) -> control_pb2.NodeProfile:
    profile = control_pb2.NodeProfile(
        model=model, n_layers=source.n_layers, seq_len=seq_len, compute=compute, random_init=source.random_init,
        encoding=encoding or "", splits=split_costs(source, seq_len, encoding),
    )
    if link is not None:
        profile.link.CopyFrom(link)
    return profile
