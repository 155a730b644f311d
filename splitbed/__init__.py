"""Shared core of the split-inference testbed: wire codec, model split/prune/profile, the side runtime, hardware."""

__version__ = "0.1.0"
