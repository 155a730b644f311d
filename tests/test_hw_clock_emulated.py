"""Emulated clock: stretching math, snapping to profile steps, refusal of too-fast profiles."""

from __future__ import annotations

import pytest

from splitbed.errors import FailedPrecondition, InvalidArgument, NotFound
from splitbed.hw.clock import PROFILES, EmulatedClock, get_profile, make_clock


def test_target_time_and_stretch_follow_the_cap() -> None:
    clock = EmulatedClock("paper-device", host_flops_per_s=100e9)  # 1 GHz x 32 FLOPs/cycle
    applied = clock.set_cap(0.5e9)
    assert applied.emulated is True and applied.backend == "emulated"
    assert applied.applied_hz == 0.5e9
    # 8e9 FLOPs at 0.5 GHz x 32 = 16 GFLOP/s -> 0.5 s
    assert clock.target_time_s(8e9) == pytest.approx(0.5)
    assert clock.stretch(8e9, measured_s=0.1) == pytest.approx(0.4)
    # Host already slower than the target: nothing to add.
    assert clock.stretch(8e9, measured_s=0.7) == 0.0


def test_cap_is_clamped_to_profile_range() -> None:
    clock = EmulatedClock("paper-device", host_flops_per_s=100e9)
    assert clock.set_cap(5e9).applied_hz == 1e9
    assert clock.set_cap(1.0).applied_hz == clock.min_hz()
    assert clock.reset().applied_hz == 1e9


def test_snaps_to_profile_steps() -> None:
    clock = EmulatedClock("raspberry-pi-4", host_flops_per_s=100e9)
    assert clock.steps_hz() is not None
    applied = clock.set_cap(1.25e9)
    assert applied.applied_hz == pytest.approx(1.2e9)
    assert clock.target_time_s(1.92e9) == pytest.approx(1.92e9 / (1.2e9 * 16))


def test_refuses_profile_faster_than_host() -> None:
    with pytest.raises(FailedPrecondition) as info:
        EmulatedClock("paper-server", host_flops_per_s=100e9)  # 4 GHz x 128 = 512 GFLOP/s
    assert "faster than this host" in str(info.value)
    assert "512.0 GFLOP/s" in str(info.value)


def test_rejects_bad_inputs() -> None:
    with pytest.raises(NotFound, match="paper-device"):
        get_profile("no-such-board")
    with pytest.raises(InvalidArgument):
        EmulatedClock("paper-device", host_flops_per_s=0)
    clock = EmulatedClock("paper-device", host_flops_per_s=100e9)
    with pytest.raises(InvalidArgument):
        clock.stretch(1e9, measured_s=-1)
    with pytest.raises(InvalidArgument):
        clock.target_time_s(-1)


def test_profiles_are_documented() -> None:
    for profile in PROFILES.values():
        assert profile.note
        assert profile.f_min_hz <= profile.f_max_hz
        if not profile.name.startswith("paper-"):
            assert "approximate" in profile.note


def test_make_clock_emulated_and_unknown_kind() -> None:
    clock = make_clock("emulated", profile="raspberry-pi-4", host_flops_per_s=1e11)
    assert isinstance(clock, EmulatedClock) and clock.profile.name == "raspberry-pi-4"
    with pytest.raises(InvalidArgument, match="unknown clock kind"):
        make_clock("turbo")
