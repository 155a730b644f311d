"""Forward passes of a side's model part: FLOPs cached per part, timed under the side's hardware.

Both sides run their part the same way (inputs onto the part's device, no
autograd, synchronise a GPU, hidden states back as float32 numpy) and time it
the same way, so the device's front layers and the server's back layers report
compute time, emulated stretch and energy alike.
"""

from __future__ import annotations

import logging
import time
import weakref
from collections.abc import Callable

import numpy as np
import torch

from splitbed.affinity import Side, pin_process
from splitbed.model import DevicePart, ModelSource, ServerPart, profile_part, resolve_model
from splitbed.side.hardware import ComputeHardware, ComputeTiming
from splitbed.side.settings import SideSettings

Part = DevicePart | ServerPart

logger = logging.getLogger(__name__)

EMULATED_SHORTFALL = 0.97  # below this fraction of an emulated clock's f*c a profile is measured again, longer

_FLOPS: weakref.WeakKeyDictionary[torch.nn.Module, dict[int, int]] = weakref.WeakKeyDictionary()


def open_model(settings: SideSettings, side: Side) -> ModelSource:
    """The model source a side's settings name, with the process pinned (--cpus) and torch's intra-op threads
    set first (--threads, or one per pinned core)."""
    cpus = pin_process(settings.cpus, side)
    threads = settings.threads or (len(cpus) if cpus else 0)
    if threads:
        torch.set_num_threads(threads)
    return resolve_model(settings.model)


def flops_of(part: Part, seq_len: int) -> int:
    """FLOPs of one sequence of `seq_len` tokens through `part` as it is pruned; analytic, cached per part."""
    cache = _FLOPS.setdefault(part, {})
    if seq_len not in cache:
        cache[seq_len] = profile_part(part, seq_len).flops
    return cache[seq_len]


def _run(part: Part, inputs: tuple[torch.Tensor | None, ...]) -> np.ndarray:
    device = next((p.device for p in part.parameters()), torch.device("cpu"))
    with torch.inference_mode():
        out = part(*(t.to(device) if t is not None else None for t in inputs))
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        return out.detach().to("cpu", torch.float32).numpy()


def timed_forward(hw: ComputeHardware, part: Part, *inputs: torch.Tensor | None) -> tuple[np.ndarray, ComputeTiming]:
    """Run `part` on `inputs` (the first one [batch, seq, ...]) under `hw`: output, compute time and energy."""
    first = inputs[0]
    assert first is not None
    flops = flops_of(part, int(first.shape[1])) * int(first.shape[0])
    started = hw.begin()
    out = _run(part, inputs)
    return out, hw.finish(started, flops)


def untimed_forward(part: Part, *inputs: torch.Tensor | None) -> np.ndarray:
    return _run(part, inputs)


def sample_inputs(part: Part, seq_len: int) -> tuple[torch.Tensor, ...]:
    """A fixed input of `seq_len` tokens for the part's side: token ids for the device, a hidden state for the
    server (what profiling and calibration run)."""
    if isinstance(part, DevicePart):
        ids = torch.full((1, seq_len), 1000, dtype=torch.long)
        return ids, torch.ones_like(ids), torch.zeros_like(ids)
    hidden = np.random.default_rng(0).standard_normal((1, seq_len, part.source.hidden_size)).astype(np.float32)
    return torch.from_numpy(hidden), torch.ones((1, seq_len), dtype=torch.long)


def best_flops_per_s(run: Callable[[], object], flops: float, *, rounds: int = 3, runs: int = 4,
                     pause_s: float = 0.3) -> float:
    """Achieved FLOP/s of `run` (which does `flops`): the fastest of several runs in rounds spaced in time.

    One warm-up run first; the rounds are spread over about a second so a
    burst of other load (on a shared host, the other process starting up) does
    not become the profile the controller plans with.
    """
    run()
    best = float("inf")
    for r in range(rounds):
        if r:
            time.sleep(pause_s)
        for _ in range(runs):
            t0 = time.perf_counter()
            run()
            best = min(best, time.perf_counter() - t0)
    return flops / best


def achieved_flops_per_s(hw: ComputeHardware, part: Part | None, seq_len: int) -> float:
    """Timed runs of `part` as it is now (clock cap and emulation included); 0 for no part or no layers."""
    if part is None or flops_of(part, seq_len) == 0:
        return 0.0
    inputs = sample_inputs(part, seq_len)
    flops = flops_of(part, seq_len)
    achieved = best_flops_per_s(lambda: timed_forward(hw, part, *inputs), flops)
    # An emulated clock is only ever slower than f*c when the host could not keep up at that moment: on a shared
    # host that is a burst of other load, and a profile taken in it would plan every later request too slow.
    target = hw.freq_hz * (hw.flops_per_cycle or 0.0)
    if hw.emulated and achieved < EMULATED_SHORTFALL * target:
        logger.info("%s at %d tokens: %.2f GFLOP/s < %.2f emulated; measuring for longer", part.side, seq_len,
                    achieved / 1e9, target / 1e9)
        achieved = max(achieved, best_flops_per_s(lambda: timed_forward(hw, part, *inputs), flops,
                                                  rounds=8, runs=3, pause_s=0.4))
    return achieved
