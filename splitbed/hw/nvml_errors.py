"""The one place NVML errors become domain errors (for clocks and meters).

pynvml raises a subclass of ``NVMLError`` per return code; callers wrap NVML
calls in ``nvml_errors("what was being done")`` so users see what failed and
how to fix it instead of "Insufficient Permissions".
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from types import ModuleType

from splitbed.errors import (
    FailedPrecondition,
    InvalidArgument,
    NotFound,
    PermissionDenied,
    SplitbedError,
    Unavailable,
)

logger = logging.getLogger(__name__)

NVML_GRANT_HINT = (
    "Changing GPU clocks or power limits needs root: run the edge server as root, "
    "in a container started with --cap-add SYS_ADMIN (compose: cap_add: [SYS_ADMIN]), "
    "or delegate the call to a small privileged helper (as Zeus does with zeusd). "
    "Or pass --clock emulated."
)


def load_pynvml() -> ModuleType:
    """Import pynvml (package nvidia-ml-py), or say which package is missing."""
    try:
        import pynvml
    except ImportError as exc:
        raise Unavailable("pynvml is not installed: pip install nvidia-ml-py") from exc
    return pynvml


def map_nvml_error(err: Exception, action: str) -> SplitbedError:
    """The domain error for an ``NVMLError`` raised while doing ``action``."""
    pynvml = load_pynvml()
    what = f"NVML could not {action}: {err}"
    table: list[tuple[str, type[SplitbedError], str]] = [
        ("NVMLError_NoPermission", PermissionDenied, NVML_GRANT_HINT),
        ("NVMLError_NotSupported", FailedPrecondition,
         "this GPU or driver does not support it (locked clocks need Volta or newer, "
         "energy counters Volta or newer; vGPU/MIG slices may forbid it)"),
        ("NVMLError_FunctionNotFound", FailedPrecondition, "the installed driver is too old for this call"),
        ("NVMLError_LibraryNotFound", Unavailable,
         "libnvidia-ml.so was not found: install the NVIDIA driver (in Docker use the "
         "NVIDIA container toolkit, --gpus all)"),
        ("NVMLError_DriverNotLoaded", Unavailable, "the NVIDIA kernel driver is not loaded"),
        ("NVMLError_LibRmVersionMismatch", Unavailable,
         "the NVML library and the kernel driver versions differ; reboot or reinstall the driver"),
        ("NVMLError_Uninitialized", FailedPrecondition, "nvmlInit() was not called"),
        ("NVMLError_InvalidArgument", InvalidArgument, "the value is out of range for this GPU"),
        ("NVMLError_NotFound", NotFound, "no such GPU or object"),
        ("NVMLError_GpuNotFound", NotFound, "no such GPU"),
        ("NVMLError_GpuIsLost", Unavailable, "the GPU fell off the bus; it needs a reset"),
        ("NVMLError_InsufficientPower", Unavailable, "the GPU's external power cables are not connected"),
        ("NVMLError_Timeout", Unavailable, "the driver timed out; retry"),
        ("NVMLError_InUse", Unavailable, "the GPU is in use by another process that holds the setting"),
        ("NVMLError_ResetRequired", FailedPrecondition, "the GPU needs a reset first"),
    ]
    for cls_name, domain, hint in table:
        cls = getattr(pynvml, cls_name, None)
        if cls is not None and isinstance(err, cls):
            return domain(f"{what}. {hint}")
    return Unavailable(what)


@contextmanager
def nvml_errors(action: str) -> Iterator[None]:
    """Re-raise any NVMLError inside the block as the matching domain error."""
    pynvml = load_pynvml()
    try:
        yield
    except pynvml.NVMLError as exc:
        mapped = map_nvml_error(exc, action)
        logger.debug("NVML error while trying to %s: %r -> %r", action, exc, mapped)
        raise mapped from exc
