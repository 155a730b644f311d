"""A steady uplink-rate estimate from sustained transfers, allowing for the token bucket's burst.

A shaper with a bucket (tc tbf) lets the first `burst` bytes of an upload
that follows idle time through at line rate, so short uploads look faster
than r(p) (23 against 19.4 Mbit/s) and a gain inverted from them drifts. And
on a busy host the measured upload time also carries the RPC's own delays,
which only ever add time: the shaper's rate is a floor under every upload.
So over a window of uploads made at one applied power, each upload's rate is
taken with one full bucket subtracted,

    r_i = 8 * (bytes_i - burst) / t_i

over the uploads longer than `SUSTAINED` buckets (shorter ones are mostly
burst and say little about the rate), and the estimate is the fastest of
them: one upload the host did not delay.
"""

from __future__ import annotations

from collections.abc import Sequence

SUSTAINED = 4.0  # an upload counts when it is more than this many buckets


def steady_rate_bps(uploads: Sequence[tuple[int, float]], burst_bytes: float) -> float | None:
    """Rate from (payload bytes, upload seconds) pairs; None when no upload was sustained."""
    burst = max(0.0, float(burst_bytes))
    kept = [(b, t) for b, t in uploads if t > 0 and b > SUSTAINED * burst and b > 0]
    if not kept:
        return None
    return max(8.0 * (b - burst) / t for b, t in kept)
