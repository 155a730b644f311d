"""The paper's system model (eqs. 2, 4-11, 41) as plain formulas.

Everything here is scalar float math; the solvers use it to re-evaluate a
recovered plan, so a reported latency or energy never comes from a solver's
internal (possibly slack) variables.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from splitbed import channel

LN2 = math.log(2.0)


@dataclass(frozen=True)
class Processor:
    """One side's compute: f_max (Hz), FLOPs per cycle c, PUE eta, power coefficient phi (W/(cycle/s)^3)."""

    f_max_hz: float
    flops_per_cycle: float
    pue: float
    power_coeff: float
    f_min_hz: float = 0.0  # lowest clock the hardware offers; 0 = any
    # Discrete clock steps the hardware offers (Hz, ascending); empty = continuous.
    steps_hz: tuple[float, ...] = ()

    def time_s(self, ratio: float, flops: float, freq_hz: float) -> float:
        """rho N / (f c) (eq. 4 / 8); zero work takes no time even at f = 0."""
        work = ratio * flops
        if work <= 0.0:
            return 0.0
        return math.inf if freq_hz <= 0.0 else work / (freq_hz * self.flops_per_cycle)

    def energy_j(self, ratio: float, flops: float, freq_hz: float) -> float:
        """eta rho N phi f^2 / c (eq. 5 / 9)."""
        return self.pue * ratio * flops * self.power_coeff * freq_hz**2 / self.flops_per_cycle


@dataclass(frozen=True)
class Link:
    """Uplink: bandwidth B (Hz), noise PSD N0 (W/Hz), channel power gain g, power cap P_max (W)."""

    bandwidth_hz: float
    noise_psd: float
    gain: float
    p_max_w: float

    @property
    def snr_per_watt(self) -> float:
        """a = g / (B N0), so r(p) = B log2(1 + a p)."""
        return self.gain / (self.bandwidth_hz * self.noise_psd)

    def rate_bps(self, p_w: float) -> float:
        return channel.rate_bps(p_w, self.bandwidth_hz, self.noise_psd, self.gain)

    def time_s(self, payload_bits: float, p_w: float) -> float:
        return channel.upload_time_s(payload_bits, p_w, self.bandwidth_hz, self.noise_psd, self.gain)

    def energy_j(self, payload_bits: float, p_w: float) -> float:
        return channel.upload_energy_j(payload_bits, p_w, self.bandwidth_hz, self.noise_psd, self.gain)

    def power_for_time(self, payload_bits: float, time_s: float) -> float:
        """Power that uploads the payload in exactly time_s: (2^(theta/(B t)) - 1)/a."""
        return channel.power_for_rate(payload_bits / time_s, self.bandwidth_hz, self.noise_psd, self.gain)


@dataclass(frozen=True)
class Stages:
    """Per-stage times (s) and energies (J) of one plan."""

    t_device: float
    t_upload: float
    t_server: float
    e_device: float
    e_upload: float
    e_server: float
    t_fixed: float = 0.0  # measured per-request framework cost T_fix (not a stage of the paper's model)

    @property
    def latency_s(self) -> float:
        return self.t_device + self.t_upload + self.t_server + self.t_fixed

    @property
    def energy_j(self) -> float:
        return self.e_device + self.e_upload + self.e_server


@dataclass(frozen=True)
class SplitModel:
    """Everything P1 needs for one split point, in SI units."""

    split: int
    device_flops: float
    server_flops: float
    device_params: float
    server_params: float
    payload_bits: float
    device: Processor
    server: Processor
    link: Link
    bits_per_param: float
    entropy_bits_per_param: float
    # T_fix, s: measured per-request cost of a request to the server that no stage models (encode, gRPC round
    # trip, decode, thread hops); a constant, so the latency budget stays convex (docs/design.md section 1).
    fixed_latency_s: float = 0.0

    @property
    def has_device(self) -> bool:
        return self.device_flops > 0.0

    @property
    def has_server(self) -> bool:
        return self.server_flops > 0.0

    @property
    def has_upload(self) -> bool:
        return self.payload_bits > 0.0

    @property
    def t_fixed(self) -> float:
        """T_fix where a request goes to the server; a split that finishes on the device sends none."""
        return self.fixed_latency_s if self.has_upload else 0.0

    def stages(self, rho: float, rho_s: float, p_w: float, f_hz: float, fs_hz: float) -> Stages:
        """Evaluate eqs. 4-9 for the given knobs; empty stages cost nothing."""
        return Stages(
            t_device=self.device.time_s(rho, self.device_flops, f_hz),
            t_upload=self.link.time_s(self.payload_bits, p_w),
            t_server=self.server.time_s(rho_s, self.server_flops, fs_hz),
            e_device=self.device.energy_j(rho, self.device_flops, f_hz),
            e_upload=self.link.energy_j(self.payload_bits, p_w),
            e_server=self.server.energy_j(rho_s, self.server_flops, fs_hz),
            t_fixed=self.t_fixed,
        )

    def kept_params(self, rho: float, rho_s: float) -> float:
        return rho * self.device_params + rho_s * self.server_params

    def log2_distortion_bound(self, rho: float, rho_s: float) -> float:
        return log2_distortion_bound(
            rho, rho_s, self.device_params, self.server_params, self.bits_per_param, self.entropy_bits_per_param
        )


def log2_distortion_bound(
    rho: float, rho_s: float, q: float, s: float, bits_per_param: float, entropy_bits_per_param: float
) -> float:
    """log2 of D^(rho, rho~) (eq. 41), with h = entropy_bits_per_param * (q + s) bits.

    D^ = (q+s)/(sqrt(pi) e) * 2^(-((rho q + rho~ s) b - h)/(q+s)) * (Gamma((q+s)/2) / (2 Gamma(q+s)))^(1/(q+s));
    q+s is ~1e8, so the Gamma ratio only exists in log space.
    """
    n = q + s
    if n <= 0.0:
        raise ValueError("q + s must be positive")
    h_total = entropy_bits_per_param * n
    log_gamma_term = (math.lgamma(n / 2.0) - LN2 - math.lgamma(n)) / n / LN2
    return (
        math.log2(n)
        - math.log2(math.sqrt(math.pi) * math.e)
        - ((rho * q + rho_s * s) * bits_per_param - h_total) / n
        + log_gamma_term
    )


@dataclass(frozen=True)
class Knobs:
    """A plan's decision variables: kept ratios, transmit power (W), clocks (Hz)."""

    rho: float
    rho_s: float
    power_w: float
    freq_device_hz: float
    freq_server_hz: float


@dataclass(frozen=True)
class PiecewiseLinear:
    """A convex, non-increasing function max_j(intercept_j + slope_j * rho), slopes <= 0."""

    intercepts: tuple[float, ...]
    slopes: tuple[float, ...]

    def __call__(self, rho: float) -> float:
        return max(a + b * rho for a, b in zip(self.intercepts, self.slopes, strict=True))

    @property
    def pieces(self) -> int:
        return len(self.slopes)


@dataclass(frozen=True)
class SplitTask:
    """One split's P1 instance: model, budgets, ratio bounds, pinned knobs, optional measured fits."""

    model: SplitModel
    latency_s: float
    energy_j: float
    rho_lo: float = 0.0
    rho_hi: float = 1.0
    rho_s_lo: float = 0.0
    rho_s_hi: float = 1.0
    power_w: float | None = None
    freq_device_hz: float | None = None
    freq_server_hz: float | None = None
    fit_device: PiecewiseLinear | None = None
    fit_server: PiecewiseLinear | None = None

    @property
    def stage_budget_s(self) -> float:
        """T0 - T_fix: what the latency budget leaves for the three modelled stages."""
        return self.latency_s - self.model.t_fixed

    @property
    def measured(self) -> bool:
        return self.fit_device is not None or self.fit_server is not None

    def objective(self, rho: float, rho_s: float) -> float:
        """The minimised objective: log2 D^, or the sum of the fitted measured distortions."""
        if self.measured:
            d = self.fit_device(rho) if self.fit_device is not None else 0.0
            return d + (self.fit_server(rho_s) if self.fit_server is not None else 0.0)
        return self.model.log2_distortion_bound(rho, rho_s)

    def with_budget(self, latency_s: float, energy_j: float) -> SplitTask:
        return SplitTask(
            self.model, latency_s, energy_j, self.rho_lo, self.rho_hi, self.rho_s_lo, self.rho_s_hi,
            self.power_w, self.freq_device_hz, self.freq_server_hz, self.fit_device, self.fit_server,
        )
