"""Device agent: runs embeddings + encoder layers [0, L) of a pruned model and streams hidden states."""

import os

# Idle OpenMP workers spin by default; with the agent and the server on one host (loopback demos,
# tests, benchmarks) the idle side's spinning threads steal cores from the busy side and slowed each
# stage by ~40 % here. PASSIVE makes them sleep; set OMP_WAIT_POLICY yourself to override. Only
# effective when this runs before torch is imported, as it does for the CLIs.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
