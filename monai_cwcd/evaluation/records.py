"""Portable records of a comparison's finished runs (issue 11, item 7).

A comparison keeps one JSON file per finished run under its ``runs_dir`` (``<data>/<run>.json``:
the run's identity, per-epoch per-case metrics, time and parameter count) and its report data in
``<part>/comparison.json``; from these alone it rebuilds every table, plot and page without training.
Those folders live on one machine. :func:`pack_records` folds them into a few xz-compressed JSON
files that can be committed next to the page they produce (``benchmarks/evidence/``), and
:func:`unpack_records` puts them back on another machine, so that

* the page can be regenerated, checked and re-analysed from the same runs anywhere (every number
  on it traces to a run record), and
* a suite longer than one working session can be trained in several sittings on different machines:
  each sitting resumes from the records the previous ones left.

Layout of a records folder::

    runs/<data>.json.xz       {"format": 1, "runs": {"<run file name>": <run record>, ...}}
    parts/<part>.json.xz      {"format": 1, "comparison": <the part's comparison.json>}

Packing is deterministic (sorted keys, fixed compression settings) and skips a file whose content
would not change, so re-packing unchanged runs leaves the files byte-identical; every file is
written atomically.
"""

from __future__ import annotations

import json
import lzma
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from monai_cwcd.evaluation._io import atomic_write, write_json

__all__ = ["RECORDS_FORMAT", "pack_records", "unpack_records"]

#: version of the records layout; :func:`unpack_records` refuses other versions
RECORDS_FORMAT = 1


def _dump(path: Path, data: Any) -> None:
    raw = (json.dumps(data, sort_keys=True, separators=(",", ":"), allow_nan=False) + "\n").encode()

    def _w(tmp: str) -> None:
        with open(tmp, "wb") as f:
            f.write(lzma.compress(raw, format=lzma.FORMAT_XZ, check=lzma.CHECK_CRC64, preset=9))

    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, _w)


def _load(path: Path, key: str) -> Any:
    try:
        data = json.loads(lzma.decompress(path.read_bytes()))
    except (OSError, lzma.LZMAError, ValueError) as e:
        raise ValueError(f"{path}: not a records file (an xz-compressed JSON file written by pack_records): {e}") from None
    if not isinstance(data, dict) or data.get("format") != RECORDS_FORMAT or key not in data:
        raise ValueError(f"{path}: expected a records file of format {RECORDS_FORMAT} with key '{key}', "
                         f"got format {data.get('format') if isinstance(data, dict) else type(data).__name__}.")
    return data[key]


def _portable_run(record: Any) -> Any:
    """The run record with its data location in the portable form (``$MONAI_CWCD_CACHE/<folder>``
    for a folder in the cache): a run trained before runs named their data that way, still on disk
    under its absolute path, is recorded as it matches on other machines."""
    from monai_cwcd.evaluation.compare import _portable_source

    ident = record.get("ident") if isinstance(record, dict) else None
    if isinstance(ident, dict) and ident.get("source") is not None:
        record = {**record, "ident": {**ident, "source": _portable_source(ident["source"])}}
    return record


def pack_records(output_dir: str | os.PathLike, records_dir: str | os.PathLike, parts: Sequence[str] = (),
                 runs_dir: str | os.PathLike | None = None) -> list[Path]:
    """Fold the finished runs and the parts' report data into ``records_dir``.

    Every ``<runs_dir>/<data>/*.json`` run is added to ``records_dir/runs/<data>.json.xz`` (with its
    data location relative to the cache, ``$MONAI_CWCD_CACHE/<folder>``, where it is in it); runs already
    in that file and absent from ``runs_dir`` are kept (records only grow; a run with the same name is
    replaced by the one on disk). Each part folder ``<output_dir>/<part>`` with a ``comparison.json``
    is stored as ``records_dir/parts/<part>.json.xz``.

    Args:
        output_dir: the comparison's (or suite's) output folder.
        records_dir: the records folder (created if missing).
        parts: part folder names under ``output_dir`` (e.g. ``["part1", "part2"]``); ``()``: none.
        runs_dir: the run folder; default ``<output_dir>/runs``.

    Returns:
        the records files (re)written; a file whose content would not change is left as it is.

    Raises:
        ValueError: an existing records file is unreadable or of another format, or a run file is
            not valid JSON.
    """
    out, rec_dir = Path(output_dir), Path(records_dir)
    runs = Path(runs_dir) if runs_dir is not None else out / "runs"
    written = []
    for data_dir in sorted(p for p in runs.iterdir() if p.is_dir()) if runs.is_dir() else []:
        target = rec_dir / "runs" / f"{data_dir.name}.json.xz"
        old = _load(target, "runs") if target.exists() else None
        merged = dict(old or {})
        for f in sorted(data_dir.glob("*.json")):
            try:
                merged[f.stem] = _portable_run(json.loads(f.read_text()))
            except ValueError as e:
                raise ValueError(f"{f}: a run file that is not valid JSON ({e}); delete it to retrain that run.") from None
        if merged != old:
            _dump(target, {"format": RECORDS_FORMAT, "runs": merged})
            written.append(target)
    for part in parts:
        comparison = out / part / "comparison.json"
        if comparison.exists():
            target = rec_dir / "parts" / f"{part}.json.xz"
            data = json.loads(comparison.read_text())
            if not target.exists() or _load(target, "comparison") != data:
                _dump(target, {"format": RECORDS_FORMAT, "comparison": data})
                written.append(target)
    return written


def unpack_records(records_dir: str | os.PathLike, output_dir: str | os.PathLike,
                   runs_dir: str | os.PathLike | None = None) -> dict[str, int]:
    """Put the records of ``records_dir`` back as run files and part data under ``output_dir``.

    Files already present are left untouched (a local run or report is never overwritten): the
    comparison then reuses every run whose identity matches its settings (see
    :func:`~monai_cwcd.evaluation.compare_losses`) and trains only the others. A part's
    ``comparison.json`` carries the wall clock of the invocation that trained it from scratch, which
    the page keeps while the same runs are reused.

    Args:
        records_dir: a folder written by :func:`pack_records`; a missing folder restores nothing.
        output_dir: the comparison's (or suite's) output folder.
        runs_dir: the run folder; default ``<output_dir>/runs``.

    Returns:
        ``{"runs": n, "parts": m}``: the files restored.

    Raises:
        ValueError: a records file is unreadable or of another format.
    """
    rec_dir, out = Path(records_dir), Path(output_dir)
    runs = Path(runs_dir) if runs_dir is not None else out / "runs"
    restored = {"runs": 0, "parts": 0}
    for f in sorted((rec_dir / "runs").glob("*.json.xz")):
        data_key = f.name[: -len(".json.xz")]
        for name, rec in _load(f, "runs").items():
            path = runs / data_key / f"{name}.json"
            if not path.exists():
                path.parent.mkdir(parents=True, exist_ok=True)
                write_json(path, rec)
                restored["runs"] += 1
    for f in sorted((rec_dir / "parts").glob("*.json.xz")):
        path = out / f.name[: -len(".json.xz")] / "comparison.json"
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            write_json(path, _load(f, "comparison"))
            restored["parts"] += 1
    return restored
