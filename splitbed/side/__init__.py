"""The runtime the device agent and the edge server share: one side of the split, as a process.

``hardware`` (clock cap + energy meter of the side's compute), ``timed`` (timed
forward passes with cached FLOPs, achieved FLOP/s), ``profile`` (the node profile
and its split-cost table), ``applied`` (applying a pushed config, each value with
its source), ``settings`` (the settings both sides share) and ``calibrate_command``.
Nothing is imported here: the torch-free parts stay importable without torch.
"""
