"""Fit a measured distortion-vs-kept-ratio curve by a convex, non-increasing function.

The fit is the least-squares convex piecewise-linear interpolant: values y_i at
the measured ratios x_i minimise sum w_i (y_i - d_i)^2 subject to slopes that
are non-positive (keeping more parameters never hurts) and non-decreasing
(convexity). The result is max_j(y_j + s_j (rho - x_j)): DCP-representable as an
epigraph with one affine piece per segment, and linearly extended outside the
measured range.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Sequence

import cvxpy as cp
import numpy as np

from controller.system_model import PiecewiseLinear
from splitbed.errors import InvalidArgument

logger = logging.getLogger(__name__)


def fit_convex_decreasing(points: Sequence[tuple[float, float]], name: str = "distortion_points") -> PiecewiseLinear:
    """Least-squares convex non-increasing piecewise-linear fit of (rho, d) points."""
    groups: dict[float, list[float]] = defaultdict(list)
    for rho, dist in points:
        groups[float(rho)].append(float(dist))
    if len(groups) < 2:
        raise InvalidArgument(f"{name}: need at least two points with distinct ratios")
    x = np.array(sorted(groups))
    d = np.array([float(np.mean(groups[float(v)])) for v in x])
    w = np.array([len(groups[float(v)]) for v in x], dtype=float)
    scale = max(float(np.max(np.abs(d))), 1e-300)
    y = cp.Variable(len(x))
    slopes = cp.multiply(1.0 / np.diff(x), cp.diff(y))
    cons = [slopes <= 0]
    if len(x) > 2:
        cons.append(cp.diff(slopes) >= 0)
    prob = cp.Problem(cp.Minimize(cp.sum(cp.multiply(w, cp.square(y - d / scale)))), cons)
    prob.solve(solver=cp.CLARABEL)
    if y.value is None:
        raise InvalidArgument(f"{name}: the convex fit failed ({prob.status})")
    yv = np.asarray(y.value) * scale
    sv = np.minimum(np.diff(yv) / np.diff(x), 0.0)
    # Enforce monotone slopes exactly; the solver meets them only to its tolerance.
    sv = np.maximum.accumulate(sv)
    intercepts = tuple(float(yv[j] - sv[j] * x[j]) for j in range(len(sv)))
    logger.debug("fitted %d pieces to %d points (%s)", len(sv), len(points), name)
    return PiecewiseLinear(intercepts=intercepts, slopes=tuple(float(s) for s in sv))
