"""Shared core of the split-inference testbed: wire codec, model split/prune/profile, hardware backends."""

__version__ = "0.1.0"
