"""Uplink backends (pacer, tbf, iw) and the factory that picks one."""

from __future__ import annotations

from typing import Any

from splitbed.errors import InvalidArgument
from splitbed.hw.link_base import AppliedLink, LinkBackend, model_rate_bps
from splitbed.hw.link_iw import IwLink
from splitbed.hw.link_pacer import PacerLink
from splitbed.hw.link_tbf import TbfLink

LINK_KINDS = ("pacer", "tbf", "iw")

__all__ = ["LINK_KINDS", "AppliedLink", "IwLink", "LinkBackend", "PacerLink", "TbfLink", "make_link", "model_rate_bps"]


def make_link(kind: str = "pacer", **opts: Any) -> LinkBackend:
    """A link backend: ``pacer`` (default, emulated), ``tbf`` (needs ``dev=``), ``iw`` (needs ``dev=``).

    ``opts`` go to the backend's constructor (e.g. ``burst_bytes``, ``netns``,
    ``latency_ms``, ``runner``).
    """
    if kind == "pacer":
        return PacerLink(**opts)
    if kind == "tbf":
        return TbfLink(**opts)
    if kind == "iw":
        return IwLink(**opts)
    raise InvalidArgument(f"unknown link kind {kind!r}; choose one of {', '.join(LINK_KINDS)}")
