"""BraTS 2021 (brain tumour, 4-channel MRI): labels, regions, case discovery and the 800/200/251 split.

Layout (as released)::

    dataset_dir/BraTS2021_00000/BraTS2021_00000_{flair,t1,t1ce,t2,seg}.nii.gz
    (case folders directly in ``dataset_dir`` or one level below it)

Labels 0 (background), 1 (necrotic tumour core, NCR), 2 (peritumoral edema, ED), 4 (enhancing
tumour, ET). Metrics use the regions TC (1, 4), WT (1, 2, 4) and ET (4), the channel order of
MONAI's ``ConvertToMultiChannelBasedOnBratsClassesd``.
"""

from __future__ import annotations

import glob
import os
from collections.abc import Sequence

from monai_cwcd.data._utils import DatasetError, check_case, check_unique_ids, split_cases

__all__ = [
    "BRATS_LABELS",
    "BRATS_LABEL_IDS",
    "BRATS_REGIONS",
    "BRATS_MODALITIES",
    "BRATS_SPLIT",
    "brats_case_files",
    "check_brats_case",
    "brats_cases",
    "brats_datalist",
]

BRATS_LABELS: dict[int, str] = {
    0: "background",
    1: "necrotic tumor core",
    2: "peritumoral edema",
    4: "enhancing tumor",
}
BRATS_LABEL_IDS: tuple[int, ...] = tuple(BRATS_LABELS)
BRATS_REGIONS: dict[str, tuple[int, ...]] = {"TC": (1, 4), "WT": (1, 2, 4), "ET": (4,)}
"""Evaluation regions in MONAI's channel order (``ConvertToMultiChannelBasedOnBratsClasses``)."""
BRATS_MODALITIES: tuple[str, ...] = ("flair", "t1", "t1ce", "t2")
BRATS_SPLIT: tuple[int, int, int] = (800, 200, 251)
_PREFIX = "BraTS2021_"
_EXPECTED_IMAGE = "a single-channel 3D MRI volume, one file per modality"


def brats_case_files(folder: str | os.PathLike, label: bool = True) -> dict[str, str]:
    """The files of one BraTS case folder ``<folder>/<name>_{flair,t1,t1ce,t2,seg}.nii.gz`` (or
    ``.nii``), ``<name>`` being the folder's name, by modality (and ``"seg"``).

    Args:
        folder: the case folder, e.g. ``BraTS2021_00000/``.
        label: require the label ``<name>_seg.nii.gz`` too. Defaults to True.

    Raises:
        DatasetError: a missing file, naming the case, the modality (or label) and the path.
    """
    folder = os.fspath(folder)
    case_id = os.path.basename(os.path.normpath(folder))
    files = {}
    for m in BRATS_MODALITIES + (("seg",) if label else ()):
        path = os.path.join(folder, f"{case_id}_{m}.nii.gz")
        if not os.path.isfile(path) and os.path.isfile(path[: -len(".gz")]):
            path = path[: -len(".gz")]
        if not os.path.isfile(path):
            what = "label" if m == "seg" else f"modality {m!r}"
            raise DatasetError(f"case {case_id}: {what} file {path} is missing.")
        files[m] = path
    return files


def check_brats_case(images: Sequence[str | os.PathLike], case_id: str, label: str | os.PathLike | None = None) -> None:
    """Check the headers of one BraTS case: its 4 modality files (flair, t1, t1ce, t2) and its label,
    if given, are readable, complete, single-channel 3D volumes on one grid (same spatial shape and
    affine).

    Raises:
        DatasetError: not 4 modality files, or see :func:`monai_cwcd.data._utils.check_case`.
    """
    if isinstance(images, (str, os.PathLike)) or len(images) != len(BRATS_MODALITIES):
        raise DatasetError(
            f"case {case_id}: expected the {len(BRATS_MODALITIES)} modality files {', '.join(BRATS_MODALITIES)} "
            f"of a BraTS case, got {images!r}."
        )
    check_case(images, case_id, _EXPECTED_IMAGE, label=label)


def brats_cases(dataset_dir: str | os.PathLike, validate: bool = False) -> list[dict]:
    """All BraTS cases (folders ``BraTS2021_*``), sorted by case id, as datalist dicts; ``"image"``
    is the list of the 4 modality paths in the order flair, t1, t1ce, t2.

    Args:
        dataset_dir: folder holding the case folders (or one folder that does).
        validate: check every file header (readable, complete, all modalities and the label on
            the same grid). Defaults to False.

    Raises:
        DatasetError: no case folder, a missing modality or label, duplicate case ids, or (with
            ``validate``) a bad file.
    """
    root = os.fspath(dataset_dir)
    folders = sorted(
        p for pattern in (_PREFIX + "*", os.path.join("*", _PREFIX + "*"))
        for p in glob.glob(os.path.join(glob.escape(root), pattern)) if os.path.isdir(p)
    )
    if not folders:
        raise DatasetError(
            f"BraTS: no {_PREFIX}* case folder in {root!r}. Pass the folder of the BraTS 2021 training "
            "data as dataset_dir (bundles: --dataset_dir /path/to/brats2021), or use the synthetic demo: "
            "`monai-cwcd demo-data brats`, or the bundle's demo.json overlay."
        )
    check_unique_ids([(os.path.basename(p), p) for p in folders], "BraTS")
    cases = []
    for folder in folders:
        files = brats_case_files(folder)
        cases.append({"image": [files[m] for m in BRATS_MODALITIES], "label": files["seg"], "case_id": os.path.basename(folder)})
    if validate:
        for c in cases:
            check_brats_case(c["image"], c["case_id"], c["label"])
    return cases


def brats_datalist(
    dataset_dir: str | os.PathLike,
    split: str,
    split_counts: Sequence[int] | None = None,
    validate: bool = True,
) -> list[dict]:
    """BraTS datalist of one split: ``[{"image": [flair, t1, t1ce, t2], "label": path, "case_id": str}, ...]``.

    Cases are sorted, shuffled with a fixed seed and split 800/200/251 (scaled proportionally, at
    least one case per split, when the dataset has another size than the paper's 1251).

    Example:
        >>> from monai.transforms import EnsureChannelFirstd, LoadImaged  # doctest: +SKIP
        >>> case = brats_datalist(ensure_demo_dataset("brats"), "val")[0]  # doctest: +SKIP
        >>> d = EnsureChannelFirstd(["image", "label"])(LoadImaged(["image", "label"])(case))  # doctest: +SKIP
        >>> d["image"].shape[0]  # doctest: +SKIP
        4

    Args:
        dataset_dir: folder holding the case folders.
        split: ``"train"``, ``"val"`` or ``"test"``.
        split_counts: explicit (train, val, test) counts. Defaults to None (the paper's).
        validate: check the headers of this split's files. Defaults to True.

    Raises:
        DatasetError: see :func:`brats_cases`; too few cases for the split.
    """
    cases = {c["case_id"]: c for c in brats_cases(dataset_dir)}
    ids = split_cases(list(cases), split, BRATS_SPLIT, split_counts, dataset="BraTS")
    out = [cases[i] for i in ids]
    if validate:
        for c in out:
            check_brats_case(c["image"], c["case_id"], c["label"])
    return out
