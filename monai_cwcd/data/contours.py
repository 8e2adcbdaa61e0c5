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

Physical and per-structure thickness (issue 12): ``contour_width_mm`` replaces ``kernel_size`` /
``iterations`` with a thickness in millimetres (each label's own voxel spacing is read from its
file), one number, one per axis, or one per class (``{class: width}``; BraTS: per region channel
TC, WT, ET). :func:`adaptive_contour_widths` derives one width per structure from the training
labels and :func:`write_contour_widths` stores it as ``<dataset_dir>/contour_widths.json``, which
:func:`load_contour_widths` reads back (for the bundles' configs and the transforms and losses).
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed

import numpy as np
import torch

from monai_cwcd.data._utils import DatasetError, read_label, write_mha, write_nifti
from monai_cwcd.data.amos import AMOS_LABELS
from monai_cwcd.data.brats import BRATS_REGIONS
from monai_cwcd.data.datalist import DATASET_LABEL_IDS, dataset_cases, load_datalist
from monai_cwcd.data.pengwin import PENGWIN_CLASSES, PENGWIN_REMAP_TABLE
from monai_cwcd.utils import atomic_output

__all__ = [
    "contour_path",
    "compute_contour_map",
    "precompute_contours",
    "CONTOUR_WIDTHS_FILE",
    "label_spacing",
    "adaptive_clip_range",
    "equivalent_radius_width",
    "adaptive_contour_widths",
    "write_contour_widths",
    "load_contour_widths",
]

CONTOUR_WIDTHS_FILE = "contour_widths.json"
"""Name of the per-structure width file that ``monai-cwcd contours --adaptive`` writes in the dataset folder."""


def contour_path(label_path: str | os.PathLike) -> str:
    """``<name>_contour<suffix>`` beside ``label_path`` (suffix ``.nii.gz``, ``.nii`` or ``.mha``)."""
    path = os.fspath(label_path)
    for suffix in (".nii.gz", ".nii", ".mha"):
        if path.endswith(suffix):
            return path[: -len(suffix)] + "_contour" + suffix
    raise ValueError(f"label file {path} is neither NIfTI (.nii, .nii.gz) nor MetaImage (.mha).")


def compute_contour_map(
    dataset: str,
    label: np.ndarray,
    kernel_size: int = 3,
    iterations: int = 1,
    edge_is_contour: bool = False,
    contour_width_mm: float | Sequence[float] | Mapping[int, float | Sequence[float]] | None = None,
    spacing: Sequence[float] | None = None,
) -> np.ndarray:
    """Contour map (uint8) of a raw label volume in (x, y, z) order, as the precompute job writes it.

    Args:
        dataset: ``"amos"``, ``"brats"`` or ``"pengwin"``.
        label: raw label volume ``(x, y, z)`` as stored in the file.
        kernel_size: side of the erosion box. Defaults to 3.
        iterations: number of erosions. Defaults to 1.
        edge_is_contour: the outside of the volume is background. Defaults to False.
        contour_width_mm: thickness in mm instead of ``kernel_size``/``iterations``: a number, one per
            axis, or ``{class: width}`` (AMOS classes, PENGWIN classes after the remap, BraTS region
            channels 0-2 = TC, WT, ET). Defaults to None.
        spacing: voxel spacing (x, y, z) in mm, needed with ``contour_width_mm``. Defaults to None.

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
    mm = {} if contour_width_mm is None else {"contour_width_mm": contour_width_mm, "spacing": spacing}
    if dataset == "brats":
        regions = torch.stack([torch.isin(t, torch.tensor(v)) for v in BRATS_REGIONS.values()])
        out = binary_contour(regions, 3, kernel_size, iterations, edge_is_contour, **mm)
        return out.permute(1, 2, 3, 0).numpy().astype(np.uint8)
    if dataset == "pengwin":
        t = torch.as_tensor(PENGWIN_REMAP_TABLE)[t]
    return label_contour(t, 3, kernel_size, iterations, edge_is_contour, **mm).numpy().astype(np.uint8)


def label_spacing(ref) -> tuple[float, float, float]:
    """Voxel spacing (x, y, z) in mm of a label read by ``read_label`` (nibabel image: the norms of its
    affine's columns; ITK image: ``GetSpacing()``)."""
    affine = getattr(ref, "affine", None)
    if affine is not None:
        return tuple(float(v) for v in np.linalg.norm(np.asarray(affine)[:3, :3], axis=0))
    return tuple(float(v) for v in ref.GetSpacing())[:3]


def _one(
    dataset: str,
    case_id: str,
    label_path: str,
    kernel_size: int,
    iterations: int,
    edge_is_contour: bool,
    contour_width_mm=None,
) -> str:
    torch.set_num_threads(1)
    target = contour_path(label_path)
    try:
        label, ref = read_label(label_path)
        spacing = label_spacing(ref) if contour_width_mm is not None else None
        contour = compute_contour_map(dataset, label, kernel_size, iterations, edge_is_contour, contour_width_mm, spacing)
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
    contour_width_mm: float | Sequence[float] | Mapping[int, float | Sequence[float]] | None = None,
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
        contour_width_mm: thickness in mm instead of ``kernel_size``/``iterations`` (number, per axis,
            or per class, e.g. :func:`load_contour_widths`), applied with each label file's own
            spacing. Defaults to None.

    Returns:
        ``{"written": int, "skipped": int, "failed": int, "errors": {label path: message}}``.

    Raises:
        ValueError: unknown dataset; DatasetError: the dataset layout cannot be read.
    """
    from tqdm.auto import tqdm

    from monai_cwcd.transforms.functional import check_contour_width

    check_contour_width(contour_width_mm)  # fail before any work
    name = str(dataset).lower()
    cases = dataset_cases(name, dataset_dir)
    todo, skipped = [], 0
    for case in cases:
        if not overwrite and os.path.isfile(contour_path(case["label"])):
            skipped += 1
        else:
            todo.append(case)
    summary: dict = {"written": 0, "skipped": skipped, "failed": 0, "errors": {}}
    args = [
        (name, c["case_id"], c["label"], int(kernel_size), int(iterations), bool(edge_is_contour), contour_width_mm)
        for c in todo
    ]
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


# ----------------------------------------------------------------------------------------------------
# per-structure widths from the training labels (issue 12 item 2)


def _structures(dataset: str) -> dict[int, str]:
    """The contour classes (channels for BraTS) of ``dataset`` and their names; background included
    for the class-index datasets."""
    if dataset == "amos":
        return dict(AMOS_LABELS)
    if dataset == "pengwin":
        return dict(PENGWIN_CLASSES)
    return dict(enumerate(BRATS_REGIONS))


def _case_volumes(dataset: str, case_id: str, label_path: str) -> tuple[dict[int, float], tuple[float, ...]]:
    """Volume in mm^3 of every structure present in one label file, and the file's voxel spacing."""
    torch.set_num_threads(1)
    try:
        label, ref = read_label(label_path)
        spacing = label_spacing(ref)
        lab = np.asarray(label)
        values = np.unique(lab)
        bad = [v.item() for v in values if v not in DATASET_LABEL_IDS[dataset]]
        if bad:
            raise ValueError(f"label values {bad[:10]} outside the {dataset} label set {list(DATASET_LABEL_IDS[dataset])}")
    except Exception as e:
        raise DatasetError(f"case {case_id}: cannot read the structure volumes of label file {label_path}: {e}") from e
    voxel = float(np.prod(spacing))
    lab = lab.astype(np.int64)
    if dataset == "brats":
        counts = {c: int(np.isin(lab, v).sum()) for c, v in enumerate(BRATS_REGIONS.values())}
    else:
        if dataset == "pengwin":
            lab = PENGWIN_REMAP_TABLE[lab]
        counts = dict(enumerate(np.bincount(lab.ravel()).tolist()))
    return {c: n * voxel for c, n in counts.items() if n > 0}, spacing


def equivalent_radius_width(
    volumes_mm3: Sequence[float], fraction: float, min_width_mm: float, max_width_mm: float
) -> tuple[float, float]:
    """The adaptive rule for one structure: ``(r, w)`` with ``r`` the median over ``volumes_mm3`` (one
    volume per case) of the equivalent radius ``(3 V / (4 pi))^(1/3)`` (mm) and ``w = clip(fraction *
    r, min_width_mm, max_width_mm)`` (mm).

    Example:
        >>> r, w = equivalent_radius_width([4 / 3 * math.pi * 1000.0], 0.1, 0.8, 4.8)  # a 10 mm ball
        >>> round(r, 6), round(w, 6)
        (10.0, 1.0)
    """
    radius = float(np.median([(3.0 * v / (4.0 * math.pi)) ** (1.0 / 3.0) for v in volumes_mm3]))
    return radius, min(max(float(fraction) * radius, float(min_width_mm)), float(max_width_mm))


def adaptive_clip_range(
    spacings: Sequence[Sequence[float]], min_width_mm: float | None = None, max_width_mm: float | None = None
) -> tuple[float, float, float]:
    """The clip range of the adaptive rule, ``(min_width_mm, max_width_mm, median finest spacing)``.

    By default the lower clip is the median over the cases of each case's smallest voxel spacing (one
    voxel on the finest axis) and the upper clip six times the lower clip (the conference paper's
    largest setting, six erosions); given values replace them.

    Args:
        spacings: one voxel spacing (mm per spatial axis) per case.
        min_width_mm: lower clip in mm. Defaults to None (the median finest spacing).
        max_width_mm: upper clip in mm. Defaults to None (``6 * min_width_mm``).

    Raises:
        ValueError: no spacings, or not ``0 < min_width_mm <= max_width_mm`` (finite).

    Example:
        >>> adaptive_clip_range([(0.75, 0.75, 4.0), (1.0, 1.0, 2.0), (0.5, 0.5, 5.0)])
        (0.75, 4.5, 0.75)
    """
    if not len(spacings):
        raise ValueError("the adaptive rule needs the voxel spacing of at least one case.")
    finest = float(np.median([min(float(v) for v in sp) for sp in spacings]))
    lo = finest if min_width_mm is None else float(min_width_mm)
    hi = 6.0 * lo if max_width_mm is None else float(max_width_mm)
    if not (math.isfinite(lo) and math.isfinite(hi) and 0.0 < lo <= hi):
        raise ValueError(f"need 0 < min_width_mm <= max_width_mm, got min {lo} and max {hi} mm.")
    return lo, hi, finest


def adaptive_contour_widths(
    dataset: str,
    dataset_dir: str | os.PathLike,
    split: str = "train",
    fraction: float = 0.1,
    min_width_mm: float | None = None,
    max_width_mm: float | None = None,
    split_counts: Sequence[int] | None = None,
    num_workers: int = 2,
) -> dict:
    """One contour width per structure, from the training labels: a fixed fraction of each
    structure's equivalent radius, clipped to a range.

    For every structure ``c`` (AMOS organs, PENGWIN fragments after the remap, BraTS regions TC, WT,
    ET) and every training case that contains it, ``V_c`` is its volume in mm^3 (voxel count times
    the voxel volume of that file) and ``r_c = (3 V_c / (4 pi))^(1/3)`` the radius of the ball of the
    same volume; over the cases, ``r_c`` is the median. Then::

        w_c = clip(fraction * r_c, min_width_mm, max_width_mm)

    A shell ``w`` thick inside a ball of radius ``r`` holds ``1 - (1 - w / r)^3`` of its volume, so
    ``w = fraction * r`` gives every structure the same contour share (``fraction = 0.1``: 27%);
    the clip keeps the contour at least one voxel thick on the finest axis (``min_width_mm``, by
    default the median over the cases of the smallest voxel spacing) and at most six such voxels
    (``max_width_mm``, by default ``6 * min_width_mm``: the conference paper's 6 iterations, the
    thickest contour the papers used). The background (class 0 of AMOS and PENGWIN) and structures
    absent from every training case get ``min_width_mm``. The computation is deterministic (medians
    over the sorted training split of the dataset's fixed-seed split).

    Example:
        >>> result = adaptive_contour_widths("amos", ensure_demo_dataset("amos"))  # doctest: +SKIP
        >>> result["contour_width_mm"]  # doctest: +SKIP
        {'0': 0.8, '1': 2.187, ...}

    Args:
        dataset: ``"amos"``, ``"brats"`` or ``"pengwin"``.
        dataset_dir: the dataset's folder.
        split: the split whose labels define the widths. Defaults to ``"train"``.
        fraction: width as a fraction of the equivalent radius, in (0, 1]. Defaults to 0.1.
        min_width_mm: lower clip in mm. Defaults to None (the median smallest voxel spacing).
        max_width_mm: upper clip in mm. Defaults to None (``6 * min_width_mm``).
        split_counts: explicit (train, val, test) counts, as the datalists. Defaults to None.
        num_workers: worker processes reading the labels; ``<= 1`` reads in this process. Defaults to 2.

    Returns:
        the JSON-ready record :func:`write_contour_widths` stores: ``"contour_width_mm"`` (``{class:
        width}`` with string keys, what :func:`load_contour_widths` returns as ints), ``"rule"``
        (formula and the parameters used), ``"structures"`` (per class: name, cases, median volume in
        ml, median equivalent radius, width) and the dataset, split and case ids.

    Raises:
        ValueError: an invalid ``fraction``/clip range; DatasetError: unreadable labels, values
            outside the dataset's label set, or an empty split.
    """
    name = str(dataset).lower()
    if not 0.0 < float(fraction) <= 1.0:
        raise ValueError(f"fraction must be in (0, 1], got {fraction!r}.")
    cases = load_datalist(name, dataset_dir, split, split_counts=split_counts, validate=False)
    if not cases:
        raise DatasetError(f"{name}: the {split!r} split of {os.fspath(dataset_dir)} has no cases.")
    args = [(name, c["case_id"], c["label"]) for c in cases]
    if int(num_workers) <= 1 or len(args) <= 1:
        results = [_case_volumes(*a) for a in args]
    else:
        with ProcessPoolExecutor(max_workers=int(num_workers)) as pool:
            results = list(pool.map(_case_volumes, *zip(*args)))
    lo, hi, finest = adaptive_clip_range([sp for _, sp in results], min_width_mm, max_width_mm)
    structures = {}
    widths = {}
    for c, label_name in _structures(name).items():
        vols = [v[c] for v, _ in results if c in v]
        background = name != "brats" and c == 0
        entry = {"name": label_name, "cases": len(vols)}
        if vols and not background:
            radius, width = equivalent_radius_width(vols, fraction, lo, hi)
            entry.update(median_volume_ml=round(float(np.median(vols)) / 1000.0, 4), equivalent_radius_mm=round(radius, 3))
        else:
            width = lo
        entry["width_mm"] = round(width, 3)
        structures[str(c)] = entry
        widths[str(c)] = round(width, 3)
    return {
        "dataset": name,
        "split": split,
        "case_ids": [c["case_id"] for c in cases],
        "rule": {
            "formula": "w_c = clip(fraction * median_cases((3 V_c / (4 pi))^(1/3)), min_width_mm, max_width_mm)",
            "fraction": float(fraction),
            "min_width_mm": round(lo, 4),
            "max_width_mm": round(hi, 4),
            "background": "min_width_mm" if name != "brats" else None,
            "median_finest_spacing_mm": round(finest, 4),
        },
        "structures": structures,
        "contour_width_mm": widths,
    }


def write_contour_widths(result: Mapping, path: str | os.PathLike) -> str:
    """Write the record of :func:`adaptive_contour_widths` as JSON, atomically; a folder means
    ``<folder>/contour_widths.json``. Returns the file path."""
    target = os.fspath(path)
    if os.path.isdir(target):
        target = os.path.join(target, CONTOUR_WIDTHS_FILE)
    with atomic_output(target) as tmp:
        with open(tmp, "w") as f:
            json.dump(result, f, indent=2)
            f.write("\n")
    return target


def load_contour_widths(path: str | os.PathLike) -> dict[int, float]:
    """The per-structure widths ``{class: width_mm}`` of a ``contour_widths.json`` (or of the one in a
    dataset folder), ready for ``contour_width_mm`` of ``ContourWeightMap(d)``, the CWCD losses and
    :func:`precompute_contours`.

    Example (a bundle config: ``"contour_width_mm": "$monai_cwcd.data.load_contour_widths(@dataset_dir)"``)::

        widths = load_contour_widths("/data/amos22")  # written by `monai-cwcd contours amos /data/amos22 --adaptive`

    Raises:
        FileNotFoundError: no such file (the message says how to create it); ValueError: the file is
            not a widths record (no ``"contour_width_mm"`` mapping of class -> width >= 0).
    """
    from monai_cwcd.transforms.functional import check_contour_width

    target = os.fspath(path)
    if os.path.isdir(target):
        target = os.path.join(target, CONTOUR_WIDTHS_FILE)
    if not os.path.isfile(target):
        raise FileNotFoundError(
            f"no contour width file {target}; create it with `monai-cwcd contours <dataset> <dataset_dir> --adaptive`."
        )
    try:
        with open(target) as f:
            record = json.load(f)
        widths = record["contour_width_mm"]
        if not isinstance(widths, Mapping):
            raise TypeError("'contour_width_mm' is not an object")
        checked = check_contour_width(widths)
    except (OSError, json.JSONDecodeError, KeyError, TypeError, ValueError) as e:
        raise ValueError(f"{target} is not a contour width file ('contour_width_mm': {{class: width_mm}}): {e}") from e
    return {c: (w[0] if len(w) == 1 else w) for c, w in checked.items()}
