"""Wireless uplink math shared by the controller and the device side (paper eq. 2, 6, 7).

Pure `math`: the device agent imports this without pulling in numpy or torch.
All quantities are SI: watts, hertz, W/Hz, bits, bits per second, metres.
"""

from __future__ import annotations

import math

from splitbed.errors import InvalidArgument


def _positive(name: str, value: float) -> None:
    if not (value > 0.0) or math.isinf(value):
        raise InvalidArgument(f"{name} must be a positive finite number, got {value!r}")


def snr(p_w: float, bandwidth_hz: float, noise_psd: float, gain: float) -> float:
    """Received signal-to-noise ratio g p / (B N0)."""
    _positive("bandwidth_hz", bandwidth_hz)
    _positive("noise_psd", noise_psd)
    if p_w < 0.0 or gain < 0.0:
        raise InvalidArgument("p_w and gain must be non-negative")
    return gain * p_w / (bandwidth_hz * noise_psd)


def rate_bps(p_w: float, bandwidth_hz: float, noise_psd: float, gain: float) -> float:
    """Achievable uplink rate r(p) = B log2(1 + g p / (B N0)) in bit/s."""
    return bandwidth_hz * math.log2(1.0 + snr(p_w, bandwidth_hz, noise_psd, gain))


def gain_from_distance(distance_m: float, k0_db: float, alpha: float, d0_m: float = 1.0) -> float:
    """Path-loss channel power gain K0 (d/d0)^-alpha with K0 given in dB."""
    _positive("distance_m", distance_m)
    _positive("d0_m", d0_m)
    if alpha < 0.0:
        raise InvalidArgument(f"alpha must be non-negative, got {alpha!r}")
    return 10.0 ** (k0_db / 10.0) * (distance_m / d0_m) ** (-alpha)


def gain_from_rate(rate_bps: float, p_w: float, bandwidth_hz: float, noise_psd: float) -> float:
    """Channel gain g that makes r(p_w) equal the given (e.g. measured) rate: inverse of r(p) in g."""
    _positive("rate_bps", rate_bps)
    _positive("p_w", p_w)
    _positive("bandwidth_hz", bandwidth_hz)
    _positive("noise_psd", noise_psd)
    # expm1 keeps precision when the spectral efficiency r/B is small.
    return math.expm1(rate_bps / bandwidth_hz * math.log(2.0)) * bandwidth_hz * noise_psd / p_w


def power_for_rate(rate_bps: float, bandwidth_hz: float, noise_psd: float, gain: float) -> float:
    """Smallest transmit power reaching the given rate: inverse of r(p) in p."""
    if rate_bps < 0.0:
        raise InvalidArgument(f"rate_bps must be non-negative, got {rate_bps!r}")
    _positive("bandwidth_hz", bandwidth_hz)
    _positive("noise_psd", noise_psd)
    _positive("gain", gain)
    return math.expm1(rate_bps / bandwidth_hz * math.log(2.0)) * bandwidth_hz * noise_psd / gain


def upload_time_s(payload_bits: float, p_w: float, bandwidth_hz: float, noise_psd: float, gain: float) -> float:
    """theta / r(p); zero for an empty payload, infinite when nothing can be sent."""
    if payload_bits <= 0.0:
        return 0.0
    r = rate_bps(p_w, bandwidth_hz, noise_psd, gain)
    return payload_bits / r if r > 0.0 else math.inf


def upload_energy_j(payload_bits: float, p_w: float, bandwidth_hz: float, noise_psd: float, gain: float) -> float:
    """p theta / r(p) (paper eq. 7)."""
    t = upload_time_s(payload_bits, p_w, bandwidth_hz, noise_psd, gain)
    if t == 0.0:
        return 0.0
    return math.inf if math.isinf(t) else p_w * t
