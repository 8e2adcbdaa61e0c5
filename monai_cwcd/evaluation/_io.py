"""Atomic writers shared by the evaluation tools: every output goes to a temporary file in the
destination folder first and is moved into place with ``os.replace``, so a reader never sees a
half-written CSV, JSON, Markdown or PNG file."""

from __future__ import annotations

import csv
import json
import math
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from monai_cwcd.utils import atomic_output

__all__ = ["atomic_write", "write_text", "write_json", "write_csv", "save_figure"]


def atomic_write(path: str | os.PathLike, writer: Callable[[str], None]) -> Path:
    """Call ``writer(tmp_path)`` on a temporary file beside ``path``, then ``os.replace`` it onto
    ``path``. The temporary file is removed if ``writer`` raises.

    Args:
        path: final destination.
        writer: callable that writes the full content to the path it receives.

    Returns:
        the destination as a ``Path``.
    """
    with atomic_output(path) as tmp:
        writer(tmp)
    return Path(path)


def write_text(path: str | os.PathLike, text: str) -> Path:
    """Atomically write ``text`` (UTF-8) to ``path``."""

    def _w(tmp: str) -> None:
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(text)

    return atomic_write(path, _w)


def _json_safe(obj: Any) -> Any:
    """Replace non-finite floats by ``None`` (JSON has no NaN/inf) recursively."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {str(k): _json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_json_safe(v) for v in obj]
    return obj


def write_json(path: str | os.PathLike, data: Any) -> Path:
    """Atomically write ``data`` as indented JSON; NaN and infinities become ``null``."""
    return write_text(path, json.dumps(_json_safe(data), indent=2, allow_nan=False) + "\n")


def write_csv(path: str | os.PathLike, header: Sequence[str], rows: Sequence[Sequence[Any]]) -> Path:
    """Atomically write a CSV file with ``header`` and ``rows`` (floats with 6 significant digits,
    NaN written as ``nan``)."""

    def _fmt(v: Any) -> Any:
        return f"{v:.6g}" if isinstance(v, float) else v

    def _w(tmp: str) -> None:
        with open(tmp, "w", newline="", encoding="utf-8") as f:
            w = csv.writer(f)
            w.writerow(list(header))
            for row in rows:
                w.writerow([_fmt(v) for v in row])

    return atomic_write(path, _w)


def save_figure(fig: Any, path: str | os.PathLike, dpi: int = 120) -> Path:
    """Atomically save a matplotlib figure as PNG and close it."""
    import matplotlib.pyplot as plt

    try:
        return atomic_write(path, lambda tmp: fig.savefig(tmp, dpi=dpi, format="png", bbox_inches="tight"))
    finally:
        plt.close(fig)
