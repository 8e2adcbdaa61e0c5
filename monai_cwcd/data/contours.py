"""Precompute contour maps for a whole dataset, written beside the labels (the CLI ``contours`` job).

For a label ``<name>.nii.gz`` (``.mha``) the map is ``<name>_contour.nii.gz`` (``_contour.mha``): same
grid, affine/spacing/origin/direction and format, uint8 0/1, computed on the label's own voxel grid
with the shared kernel of :mod:`monai_cwcd.transforms.functional`:

- AMOS: ``label_contour`` of the class-index map (the own-class contour of every organ, paper ``000``
  eq. 8), the same map as ``ContourWeightMap()`` gives for a ``(1, *spatial)`` label.
- PENGWIN: the same on the label after :class:`PengwinLabelRemap` (merged rare fragments have no
  boundary between them).
- BraTS: one channel per region TC, WT, ET (MONAI's ``ConvertToMultiChannelBasedOnBratsClasses``
  order), each ``binary_contour`` of the region, as ``ContourWeightMap`` gives for a ``(3, *spatial)``
  region mask; stored as a 4D NIfTI ``(x, y, z, 3)`` that ``LoadImaged`` + ``EnsureChannelFirstd``
  read back as ``(3, x, y, z)``.
"""

from __future__ import annotations

import os
from concurrent.futures import ProcessPoolExecutor, as_completed

import numpy as np
import torch

from monai_cwcd.data._utils import DatasetError, read_label, write_mha, write_nifti
from monai_cwcd.data.brats import BRATS_REGIONS
from monai_cwcd.data.datalist import DATASET_LABEL_IDS, dataset_cases
from monai_cwcd.data.pengwin import PENGWIN_REMAP_TABLE

__all__ = ["contour_path", "compute_contour_map", "precompute_contours"]


def contour_path(label_path: str | os.PathLike) -> str:
    """``<name>_contour<suffix>`` beside ``label_path`` (suffix ``.nii.gz``, ``.nii`` or ``.mha``)."""
    path = os.fspath(label_path)
    for suffix in (".nii.gz", ".nii", ".mha"):
        if path.endswith(suffix):
            return path[: -len(suffix)] + "_contour" + suffix
    raise ValueError(f"label file {path} is neither NIfTI (.nii, .nii.gz) nor MetaImage (.mha).")


def compute_contour_map(
    dataset: str, label: np.ndarray, kernel_size: int = 3, iterations: int = 1, edge_is_contour: bool = False
) -> np.ndarray:
    """Contour map (uint8) of a raw label volume in (x, y, z) order, as the precompute job writes it.

    Args:
        dataset: ``"amos"``, ``"brats"`` or ``"pengwin"``.
        label: raw label volume ``(x, y, z)`` as stored in the file.
        kernel_size: side of the erosion box. Defaults to 3.
        iterations: number of erosions. Defaults to 1.
        edge_is_contour: the outside of the volume is background. Defaults to False.

    Returns:
        ``(x, y, z)`` for AMOS and PENGWIN, ``(x, y, z, 3)`` (TC, WT, ET) for BraTS.

    Raises:
        ValueError: values outside the dataset's label set.
    """
    from monai_cwcd.transforms.functional import binary_contour, label_contour

    lab = np.asarray(label)
    values = np.unique(lab)
    bad = [v.item() for v in values if v not in DATASET_LABEL_IDS[dataset]]
    if bad:
        raise ValueError(f"label values {bad[:10]} outside the {dataset} label set {list(DATASET_LABEL_IDS[dataset])}.")
    t = torch.as_tensor(lab.astype(np.int64))
    if dataset == "brats":
        regions = torch.stack([torch.isin(t, torch.tensor(v)) for v in BRATS_REGIONS.values()])
        out = binary_contour(regions, 3, kernel_size, iterations, edge_is_contour)
        return out.permute(1, 2, 3, 0).numpy().astype(np.uint8)
    if dataset == "pengwin":
        t = torch.as_tensor(PENGWIN_REMAP_TABLE)[t]
    return label_contour(t, 3, kernel_size, iterations, edge_is_contour).numpy().astype(np.uint8)


def _one(dataset: str, case_id: str, label_path: str, kernel_size: int, iterations: int, edge_is_contour: bool) -> str:
    torch.set_num_threads(1)
    target = contour_path(label_path)
    try:
        label, ref = read_label(label_path)
        contour = compute_contour_map(dataset, label, kernel_size, iterations, edge_is_contour)
    except Exception as e:
        raise DatasetError(f"case {case_id}: cannot compute the contour of label file {label_path}: {e}") from e
    try:
        if label_path.endswith(".mha"):
            write_mha(contour, target, reference=ref)
        else:
            write_nifti(contour, ref.affine, target, header=ref.header)
    except Exception as e:
        raise DatasetError(f"case {case_id}: cannot write the contour map {target} of label file {label_path}: {e}") from e
    return target


def precompute_contours(
    dataset: str,
    dataset_dir: str | os.PathLike,
    kernel_size: int = 3,
    iterations: int = 1,
    edge_is_contour: bool = False,
    num_workers: int = 2,
    overwrite: bool = False,
    progress: bool = True,
) -> dict:
    """Write the contour map of every label file of a dataset beside it, in parallel.

    Each map is written to a hidden temporary file and renamed into place, so an interrupted or
    failing case never leaves a partial map; maps that already exist are skipped unless
    ``overwrite``. A failing case does not stop the others: it is counted and reported.

    Example:
        >>> summary = precompute_contours("amos", ensure_demo_dataset("amos"), num_workers=2)  # doctest: +SKIP
        >>> summary["written"] + summary["skipped"]  # doctest: +SKIP
        12

    Args:
        dataset: ``"amos"``, ``"brats"`` or ``"pengwin"``.
        dataset_dir: the dataset's folder (every usable case of every split is processed).
        kernel_size: side of the erosion box. Defaults to 3.
        iterations: number of erosions. Defaults to 1.
        edge_is_contour: the outside of the volume is background. Defaults to False.
        num_workers: worker processes; ``<= 1`` runs in this process. Defaults to 2.
        overwrite: recompute maps that already exist. Defaults to False.
        progress: show a tqdm progress bar. Defaults to True.

    Returns:
        ``{"written": int, "skipped": int, "failed": int, "errors": {label path: message}}``.

    Raises:
        ValueError: unknown dataset; DatasetError: the dataset layout cannot be read.
    """
    from tqdm.auto import tqdm

    name = str(dataset).lower()
    cases = dataset_cases(name, dataset_dir)
    todo, skipped = [], 0
    for case in cases:
        if not overwrite and os.path.isfile(contour_path(case["label"])):
            skipped += 1
        else:
            todo.append(case)
    summary: dict = {"written": 0, "skipped": skipped, "failed": 0, "errors": {}}
    args = [(name, c["case_id"], c["label"], int(kernel_size), int(iterations), bool(edge_is_contour)) for c in todo]
    bar = tqdm(total=len(cases), initial=skipped, desc=f"{name} contours", unit="label", disable=not progress)

    def record(label_path: str, error: BaseException | None) -> None:
        if error is None:
            summary["written"] += 1
        else:
            summary["failed"] += 1
            summary["errors"][label_path] = str(error)
        bar.update(1)

    try:
        if int(num_workers) <= 1 or len(args) <= 1:
            for a in args:
                try:
                    _one(*a)
                    record(a[2], None)
                except Exception as e:
                    record(a[2], e)
        else:
            with ProcessPoolExecutor(max_workers=int(num_workers)) as pool:
                futures = {pool.submit(_one, *a): a[2] for a in args}
                for future in as_completed(futures):
                    record(futures[future], future.exception())
    finally:
        bar.close()
    return summary
