"""Utilities shared across subpackages: the one atomic-output primitive every writer uses."""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import Iterator

__all__ = ["atomic_output", "full_suffix"]

_MULTI_SUFFIXES = (".nii.gz", ".tar.gz")


def full_suffix(name: str | os.PathLike) -> str:
    """The file-format suffix of ``name`` (``.nii.gz`` counts as one), or ``""``."""
    base = os.path.basename(os.fspath(name))
    for s in _MULTI_SUFFIXES:
        if base.lower().endswith(s):
            return base[-len(s):]
    return os.path.splitext(base)[1]


@contextlib.contextmanager
def atomic_output(path: str | os.PathLike, fsync: bool = False) -> Iterator[str]:
    """Yield a hidden temporary path beside ``path`` with the same suffix (so writers such as nibabel,
    ITK or matplotlib pick the same format); when the block succeeds it replaces ``path`` with
    ``os.replace``, on any error the temporary file is removed. A reader, or a run killed mid-write,
    never sees a truncated ``path``. The destination folder is created when missing.

    Args:
        path: final destination.
        fsync: flush the temporary file to disk before the rename (checkpoints). Defaults to False.

    Example:
        >>> import os, tempfile
        >>> dst = os.path.join(tempfile.mkdtemp(), "x.txt")
        >>> with atomic_output(dst) as tmp:
        ...     _ = open(tmp, "w").write("done")
        >>> open(dst).read()
        'done'
    """
    path = os.fspath(path)
    head, name = os.path.split(os.path.abspath(path))
    os.makedirs(head, exist_ok=True)
    suffix = full_suffix(name)
    tmp = os.path.join(head, f".{name[: len(name) - len(suffix)]}.tmp-{os.getpid()}-{uuid.uuid4().hex[:8]}{suffix}")
    try:
        yield tmp
        if fsync and os.path.exists(tmp):
            with open(tmp, "rb") as f:
                os.fsync(f.fileno())
        umask = os.umask(0)
        os.umask(umask)
        if os.path.exists(tmp):
            os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
