"""One entry point over the three datasets: ``load_datalist(dataset, dataset_dir, split)``."""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence

from monai_cwcd.data.amos import AMOS_LABEL_IDS, amos_cases, amos_datalist
from monai_cwcd.data.brats import BRATS_LABEL_IDS, brats_cases, brats_datalist
from monai_cwcd.data.pengwin import PENGWIN_RAW_LABEL_IDS, pengwin_cases, pengwin_datalist

__all__ = ["DATASETS", "DATASET_LABEL_IDS", "load_datalist", "dataset_cases"]

DATASETS: tuple[str, ...] = ("amos", "brats", "pengwin")
DATASET_LABEL_IDS: dict[str, tuple[int, ...]] = {
    "amos": AMOS_LABEL_IDS,
    "brats": BRATS_LABEL_IDS,
    "pengwin": PENGWIN_RAW_LABEL_IDS,
}
"""Label values allowed in each dataset's label files (PENGWIN: the raw 0-30 before the remap)."""

_DATALISTS: dict[str, Callable[..., list[dict]]] = {"amos": amos_datalist, "brats": brats_datalist, "pengwin": pengwin_datalist}
_CASES: dict[str, Callable[..., list[dict]]] = {"amos": amos_cases, "brats": brats_cases, "pengwin": pengwin_cases}


def _check_name(dataset: str) -> str:
    name = str(dataset).lower()
    if name not in DATASETS:
        raise ValueError(f"dataset must be one of {DATASETS}, got {dataset!r}.")
    return name


def load_datalist(
    dataset: str,
    dataset_dir: str | os.PathLike,
    split: str,
    split_counts: Sequence[int] | None = None,
    validate: bool = True,
) -> list[dict]:
    """Datalist of one split of ``dataset`` (``"amos"``, ``"brats"`` or ``"pengwin"``), see
    :func:`amos_datalist`, :func:`brats_datalist`, :func:`pengwin_datalist`.

    Example:
        >>> val = load_datalist("pengwin", ensure_demo_dataset("pengwin"), "val")  # doctest: +SKIP

    Args:
        dataset: dataset name (case-insensitive).
        dataset_dir: the dataset's folder.
        split: ``"train"``, ``"val"`` or ``"test"``.
        split_counts: explicit (train, val, test) counts. Defaults to None (the paper's).
        validate: check the headers of this split's files. Defaults to True.

    Raises:
        ValueError: unknown dataset or split.
        DatasetError: see the dataset's loader.
    """
    return _DATALISTS[_check_name(dataset)](dataset_dir, split, split_counts=split_counts, validate=validate)


def dataset_cases(dataset: str, dataset_dir: str | os.PathLike, validate: bool = False) -> list[dict]:
    """All usable cases of ``dataset`` (every split), sorted by case id.

    Args:
        dataset: dataset name (case-insensitive).
        dataset_dir: the dataset's folder.
        validate: check every file header. Defaults to False.
    """
    return _CASES[_check_name(dataset)](dataset_dir, validate=validate)
