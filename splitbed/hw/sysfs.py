"""Reading and writing sysfs-style files with errors that say how to fix them.

Every real backend goes through here so that a missing file becomes
``NotFound``, a refused write becomes ``PermissionDenied`` naming the file and
the way to grant access, and the kernel rejecting a value becomes
``InvalidArgument``: nothing is silently ignored.
"""

from __future__ import annotations

import errno
import logging
import os
from pathlib import Path

from splitbed.errors import InvalidArgument, NotFound, PermissionDenied

logger = logging.getLogger(__name__)


def _write_raw(path: Path, text: str) -> None:
    # os.open without O_CREAT: a sysfs attribute that does not exist must not
    # be created as a regular file (matters for fake trees and for typos).
    fd = os.open(path, os.O_WRONLY | os.O_TRUNC)
    try:
        os.write(fd, text.encode())
    finally:
        os.close(fd)


def _read_raw(path: Path) -> str:
    return path.read_text()


def read_text(path: Path, *, grant_hint: str = "") -> str:
    """The stripped contents of ``path``."""
    try:
        return _read_raw(path).strip()
    except FileNotFoundError as exc:
        raise NotFound(f"{path} does not exist") from exc
    except PermissionError as exc:
        raise PermissionDenied(_denied("read", path, grant_hint)) from exc


def read_int(path: Path, *, grant_hint: str = "") -> int:
    text = read_text(path, grant_hint=grant_hint)
    try:
        return int(text.split()[0])
    except (ValueError, IndexError) as exc:
        raise InvalidArgument(f"{path} holds {text!r}, not an integer") from exc


def read_ints(path: Path) -> list[int]:
    """Whitespace-separated integers (e.g. ``scaling_available_frequencies``)."""
    text = read_text(path)
    try:
        return [int(tok) for tok in text.split()]
    except ValueError as exc:
        raise InvalidArgument(f"{path} holds {text!r}, not a list of integers") from exc


def write_text(path: Path, text: str, *, grant_hint: str) -> None:
    """Write ``text`` to ``path``; ``grant_hint`` tells the user how to get write access."""
    logger.debug("writing %r to %s", text, path)
    try:
        _write_raw(path, text)
    except FileNotFoundError as exc:
        raise NotFound(f"{path} does not exist") from exc
    except PermissionError as exc:
        raise PermissionDenied(_denied("write", path, grant_hint)) from exc
    except OSError as exc:
        if exc.errno in (errno.EINVAL, errno.ERANGE):
            raise InvalidArgument(f"the kernel rejected {text!r} for {path}: {exc.strerror}") from exc
        if exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
            raise PermissionDenied(_denied("write", path, grant_hint)) from exc
        raise


def _denied(verb: str, path: Path, grant_hint: str) -> str:
    msg = f"permission denied: cannot {verb} {path}."
    if grant_hint:
        msg += " " + grant_hint
    return msg
