"""Hardware backends: clock caps, link (transmit power / rate), energy and memory meters.

Each kind sits behind one small abstract interface with real implementations
and an emulated/modelled one; every result says which backend produced it and
whether it was measured, enforced or emulated. Nothing here imports torch.
"""

# ``calibrate`` (the function) is not re-exported: it would shadow the submodule
# ``splitbed.hw.calibrate``; import it from there.
from splitbed.hw.calibrate import CalibrationPoint, CalibrationResult
from splitbed.hw.clock import AppliedClock, ClockBackend, EmulatedClock, make_clock
from splitbed.hw.energy import EnergyMeter, EnergyReading, make_energy_meter, upload_energy
from splitbed.hw.link import AppliedLink, LinkBackend, make_link
from splitbed.hw.memory import MemoryMeter, MemoryReading

__all__ = [
    "AppliedClock",
    "AppliedLink",
    "CalibrationPoint",
    "CalibrationResult",
    "ClockBackend",
    "EmulatedClock",
    "EnergyMeter",
    "EnergyReading",
    "LinkBackend",
    "MemoryMeter",
    "MemoryReading",
    "make_clock",
    "make_energy_meter",
    "make_link",
    "upload_energy",
]
