"""Hardware backends: clock caps, link (transmit power / rate), energy and memory meters.

Each kind sits behind one small abstract interface with real implementations
and an emulated/modelled one; every result says which backend produced it and
whether it was measured, enforced or emulated. Nothing here imports torch.
"""
