"""Small helpers shared by the handlers: rank-0 test and atomic file writes."""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import IO, Any

import torch.distributed as dist

from monai_cwcd.utils import atomic_output

__all__ = ["is_rank0", "atomic_write"]


def is_rank0() -> bool:
    """True when ``torch.distributed`` is not initialised or this process has rank 0.

    The handlers that write files (checkpoints, curves, metrics) call it so that a multi-GPU run
    writes one set of outputs without any change to the config.
    """
    return not (dist.is_available() and dist.is_initialized()) or dist.get_rank() == 0


def atomic_write(path: str | os.PathLike, write: Callable[[IO[Any]], Any], mode: str = "wb") -> str:
    """Write ``path`` atomically: ``write(f)`` fills a temporary file in the same folder, which then
    replaces ``path`` with ``os.replace`` (a reader, or a run killed mid-write, never sees a
    truncated file).

    Args:
        path: destination file; its folder is created when missing.
        write: callable receiving the open temporary file object.
        mode: ``"wb"`` or ``"w"``. Defaults to ``"wb"``.

    Returns:
        the destination path as a string.
    """
    path = os.fspath(path)
    with atomic_output(path, fsync=True) as tmp:
        with open(tmp, mode) as f:
            write(f)
    return path
