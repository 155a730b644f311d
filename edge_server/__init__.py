"""Edge server: runs encoder layers [L, n) + pooling of a pruned BERT-family model for many device agents."""

import os

# Idle OpenMP workers spin by default; with the agent and the server on one host (loopback demos,
# tests, benchmarks) the idle side's spinning threads steal cores from the busy side and slowed each
# stage by ~40 % here. PASSIVE makes them sleep; set OMP_WAIT_POLICY yourself to override. Only
# effective when this runs before torch is imported, as it does for the CLIs.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
