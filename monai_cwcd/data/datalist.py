"""One entry point over the three datasets: ``load_datalist(dataset, dataset_dir, split)``."""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence

from monai_cwcd.data._utils import check_volume
from monai_cwcd.data.amos import _EXPECTED_IMAGE as _AMOS_IMAGE
from monai_cwcd.data.amos import AMOS_LABEL_IDS, amos_cases, amos_datalist
from monai_cwcd.data.brats import BRATS_LABEL_IDS, brats_cases, brats_datalist, check_brats_case
from monai_cwcd.data.pengwin import _EXPECTED_IMAGE as _PENGWIN_IMAGE
from monai_cwcd.data.pengwin import PENGWIN_RAW_LABEL_IDS, pengwin_cases, pengwin_datalist

__all__ = ["DATASETS", "DATASET_LABEL_IDS", "load_datalist", "dataset_cases", "check_case_images"]

DATASETS: tuple[str, ...] = ("amos", "brats", "pengwin")
DATASET_LABEL_IDS: dict[str, tuple[int, ...]] = {
    "amos": AMOS_LABEL_IDS,
    "brats": BRATS_LABEL_IDS,
    "pengwin": PENGWIN_RAW_LABEL_IDS,
}
"""Label values allowed in each dataset's label files (PENGWIN: the raw 0-30 before the remap)."""

_DATALISTS: dict[str, Callable[..., list[dict]]] = {"amos": amos_datalist, "brats": brats_datalist, "pengwin": pengwin_datalist}
_CASES: dict[str, Callable[..., list[dict]]] = {"amos": amos_cases, "brats": brats_cases, "pengwin": pengwin_cases}
_EXPECTED_IMAGE = {"amos": _AMOS_IMAGE, "pengwin": _PENGWIN_IMAGE}


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


def check_case_images(dataset: str, image: str | os.PathLike | Sequence[str | os.PathLike], case_id: str) -> None:
    """Check the headers of the image(s) of one case to predict (no label): AMOS and PENGWIN one
    single-channel 3D CT volume, BraTS the 4 modality files (flair, t1, t1ce, t2), each a
    single-channel 3D volume, all on one grid. The training datalists run the same checks with the
    label (``validate=True``).

    Example:
        >>> check_case_images("amos", "imagesTs/amos_0400.nii.gz", "amos_0400")  # doctest: +SKIP

    Args:
        dataset: dataset name (case-insensitive).
        image: the image file (BraTS: the list of the 4 modality files).
        case_id: the case named in the error.

    Raises:
        ValueError: unknown dataset.
        DatasetError: a missing, unreadable or truncated file, a 4D or multi-channel image, BraTS
            modalities of different shapes or affines (naming the case, the file(s) and the shapes).
    """
    name = _check_name(dataset)
    if name == "brats":
        check_brats_case(image, case_id)
    else:
        check_volume(image, case_id, _EXPECTED_IMAGE[name])
