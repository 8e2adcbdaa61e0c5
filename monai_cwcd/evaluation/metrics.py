"""Per-case, per-structure segmentation metrics (DSC, HD95, ASSD) with MONAI's metric classes, and
the folder evaluator behind ``monai-cwcd evaluate``.

Conventions (also in ``docs/evaluation.md``), for each case and structure, with ``P`` the predicted
mask and ``G`` the label mask:

- both ``P`` and ``G`` non-empty: DSC from :class:`monai.metrics.DiceMetric`, HD95 from
  :class:`monai.metrics.HausdorffDistanceMetric` (``percentile=95``), ASSD from
  :class:`monai.metrics.SurfaceDistanceMetric` (``symmetric=True``), distances in physical units
  (the header spacing) when ``spacing_aware`` else in voxels;
- exactly one of them empty (a missed or a hallucinated structure): DSC = 0 and HD95 = ASSD = the
  diagonal of the image extent (the largest distance possible inside the image), so failures are
  penalised instead of silently dropped; they are counted as ``n_missed`` / ``n_false_positive``;
- both empty (structure absent and correctly not predicted): DSC, HD95 and ASSD are NaN, i.e. "not
  applicable", and are left out of the means (``n_valid`` counts the cases that were used).
"""

from __future__ import annotations

import math
import os
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from monai.metrics import DiceMetric, HausdorffDistanceMetric, SurfaceDistanceMetric

from monai_cwcd.evaluation._io import save_figure, write_csv, write_json

__all__ = [
    "METRICS",
    "segmentation_metrics",
    "summarize_cases",
    "find_cases",
    "pair_cases",
    "load_label_map",
    "evaluate_folders",
    "plot_per_class_bars",
    "dataset_label_names",
]

METRICS = ("dice", "hd95", "assd")
_NIFTI = (".nii.gz", ".nii")
_ITK = (".mha", ".mhd", ".nrrd")
_PRED_SUFFIXES = ("_seg", "_pred", "_prediction", "_trans")
_LABEL_SUFFIXES = ("_seg", "_label", "_labels", "_gt")
_SUFFIXES = tuple(dict.fromkeys(_PRED_SUFFIXES + _LABEL_SUFFIXES))
_IGNORED_SUFFIXES = ("_contour",)


def _structures(
    num_classes: int,
    class_names: Sequence[str] | Mapping[int, str] | None,
    include_background: bool,
    regions: Mapping[str, Sequence[int]] | None,
) -> list[tuple[str, list[int]]]:
    """``[(name, label values), ...]`` of the structures to score."""
    if regions:
        return [(str(k), [int(v) for v in vals]) for k, vals in regions.items()]
    if isinstance(class_names, Mapping):
        names = {int(k): str(v) for k, v in class_names.items()}
    elif class_names is not None:
        if len(class_names) != num_classes:
            raise ValueError(
                f"class_names must have num_classes={num_classes} entries (index 0 = background), got {len(class_names)}."
            )
        names = dict(enumerate(map(str, class_names)))
    else:
        names = {}
    start = 0 if include_background else 1
    return [(names.get(c, f"class_{c}"), [c]) for c in range(start, num_classes)]


def segmentation_metrics(
    pred: torch.Tensor | np.ndarray,
    label: torch.Tensor | np.ndarray,
    num_classes: int | None = None,
    spacing: Sequence[float] | None = None,
    class_names: Sequence[str] | Mapping[int, str] | None = None,
    include_background: bool = False,
    regions: Mapping[str, Sequence[int]] | None = None,
) -> dict[str, dict[str, float]]:
    """DSC, HD95 and ASSD of every structure of one case, computed with MONAI's metric classes.

    ``pred`` and ``label`` are class-index maps of the same spatial shape ``(*spatial)`` (a leading
    channel axis of size 1 is accepted). See the module docstring for the empty-structure rules.

    Example:
        >>> import torch
        >>> lab = torch.zeros(8, 8, 8, dtype=torch.long); lab[2:6, 2:6, 2:6] = 1
        >>> segmentation_metrics(lab, lab, num_classes=2)["class_1"]["dice"]
        1.0

    Args:
        pred: predicted class-index map.
        label: reference class-index map.
        num_classes: number of classes including background. Defaults to ``None`` (max label + 1).
        spacing: voxel size per spatial axis, for distances in physical units. Defaults to ``None``
            (voxel units).
        class_names: names for class indices ``0..num_classes-1`` (a sequence of length
            ``num_classes`` or a ``{index: name}`` mapping). Defaults to ``None`` (``class_<i>``).
        include_background: also score class 0. Defaults to ``False``.
        regions: score unions of labels instead of classes, e.g. BraTS
            ``{"TC": [1, 4], "WT": [1, 2, 4], "ET": [4]}``. Defaults to ``None``.

    Returns:
        ``{structure: {"dice", "hd95", "assd", "label_voxels", "pred_voxels"}}`` (floats).

    Raises:
        ValueError: shapes differ, or ``spacing`` has the wrong length.
    """
    p = torch.as_tensor(np.asarray(pred) if isinstance(pred, np.ndarray) else pred).detach()
    g = torch.as_tensor(np.asarray(label) if isinstance(label, np.ndarray) else label).detach()
    if p.shape != g.shape:
        raise ValueError(f"prediction shape {tuple(p.shape)} differs from label shape {tuple(g.shape)}.")
    if p.ndim >= 3 and p.shape[0] == 1:
        p, g = p[0], g[0]
    p, g = p.round().long(), g.round().long()
    ndim = g.ndim
    if spacing is not None and len(spacing) != ndim:
        raise ValueError(f"spacing must have {ndim} entries (one per spatial axis), got {tuple(spacing)}.")
    sp = [float(s) for s in spacing] if spacing is not None else [1.0] * ndim
    if num_classes is None:
        num_classes = int(max(int(p.max()), int(g.max()))) + 1
    worst = math.sqrt(sum((n * s) ** 2 for n, s in zip(g.shape, sp)))

    dice_m = DiceMetric(include_background=True, reduction="none", ignore_empty=False)
    hd_m = HausdorffDistanceMetric(include_background=True, percentile=95, reduction="none")
    sd_m = SurfaceDistanceMetric(include_background=True, symmetric=True, reduction="none")
    out: dict[str, dict[str, float]] = {}
    for name, values in _structures(num_classes, class_names, include_background, regions):
        vals = torch.as_tensor(values, device=g.device)
        pm, gm = torch.isin(p, vals), torch.isin(g, vals)
        n_p, n_g = int(pm.sum()), int(gm.sum())
        rec = {"label_voxels": float(n_g), "pred_voxels": float(n_p)}
        if n_p == 0 and n_g == 0:
            rec.update(dice=float("nan"), hd95=float("nan"), assd=float("nan"))
        elif n_p == 0 or n_g == 0:
            rec.update(dice=0.0, hd95=worst, assd=worst)
        else:
            yp, yg = pm[None, None].float(), gm[None, None].float()
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                rec["dice"] = float(dice_m(y_pred=yp, y=yg)[0, 0])
                rec["hd95"] = float(hd_m(y_pred=yp, y=yg, spacing=sp)[0, 0])
                rec["assd"] = float(sd_m(y_pred=yp, y=yg, spacing=sp)[0, 0])
        out[name] = rec
    for m in (dice_m, hd_m, sd_m):
        m.reset()
    return out


def summarize_cases(per_case: Mapping[str, Mapping[str, Mapping[str, float]]]) -> dict[str, Any]:
    """Per-structure mean/std/median of each metric over cases (NaN = not applicable, skipped), plus
    the overall mean (mean of the per-structure means).

    Args:
        per_case: ``{case: {structure: {metric: value}}}`` as returned per case by
            :func:`segmentation_metrics`.

    Returns:
        ``{"num_cases", "structures": {name: {metric: {"mean", "std", "median", "n_valid"},
        "n_missed", "n_false_positive", "mean_label_voxels"}}, "overall": {metric: mean}}``.
    """
    names: list[str] = []
    for recs in per_case.values():
        names.extend(n for n in recs if n not in names)
    structures: dict[str, Any] = {}
    for name in names:
        recs = [r[name] for r in per_case.values() if name in r]
        entry: dict[str, Any] = {}
        for m in METRICS:
            v = np.array([r[m] for r in recs], dtype=float)
            v = v[~np.isnan(v)]
            entry[m] = {
                "mean": float(v.mean()) if v.size else float("nan"),
                "std": float(v.std()) if v.size else float("nan"),
                "median": float(np.median(v)) if v.size else float("nan"),
                "n_valid": int(v.size),
            }
        entry["n_missed"] = sum(1 for r in recs if r["label_voxels"] > 0 and r["pred_voxels"] == 0)
        entry["n_false_positive"] = sum(1 for r in recs if r["label_voxels"] == 0 and r["pred_voxels"] > 0)
        entry["mean_label_voxels"] = float(np.mean([r["label_voxels"] for r in recs])) if recs else float("nan")
        structures[name] = entry
    overall = {}
    for m in METRICS:
        means = np.array([structures[n][m]["mean"] for n in names], dtype=float)
        means = means[~np.isnan(means)]
        overall[m] = float(means.mean()) if means.size else float("nan")
    return {"num_cases": len(per_case), "structures": structures, "overall": overall}


def _strip_ext(name: str) -> tuple[str, str] | None:
    low = name.lower()
    for ext in _NIFTI + _ITK:
        if low.endswith(ext):
            return name[: -len(ext)], ext
    return None


def _split_case(stem: str, suffixes: Sequence[str] = _SUFFIXES) -> tuple[str, str]:
    """``(case id, suffix)``: the stem without one trailing suffix of ``suffixes`` (or ``""``)."""
    for s in suffixes:
        if stem.endswith(s) and len(stem) > len(s):
            return stem[: -len(s)], s
    return stem, ""


def _case_name(stem: str) -> str:
    return _split_case(stem)[0]


def _image_files(root: Path, pattern: str | None) -> list[Path]:
    """Supported image files under ``root`` (``pattern`` or recursive), without hidden files and
    contour maps (``*_contour.nii.gz`` written by ``monai-cwcd contours``)."""
    out = []
    for f in sorted(root.glob(pattern) if pattern else root.rglob("*")):
        split = _strip_ext(f.name)
        if split is None or f.name.startswith(".") or split[0].endswith(_IGNORED_SUFFIXES) or not f.is_file():
            continue
        out.append(f)
    return out


def find_cases(folder: str | os.PathLike, pattern: str | None = None, role: str = "any") -> dict[str, Path]:
    """Map case id -> image file for the NIfTI (``.nii``, ``.nii.gz``) or ITK (``.mha``, ``.mhd``,
    ``.nrrd``) files under ``folder`` (recursively, so MONAI ``SaveImage`` sub-folders work).

    The case id is the file name without extension and without one trailing suffix. Hidden files
    and contour maps (``*_contour.*``, written by ``monai-cwcd contours``) are never cases. With
    ``role="prediction"``, when some files carry a prediction suffix (``_seg``, ``_pred``,
    ``_prediction``, ``_trans``, as MONAI ``SaveImage`` writes them) only those are predictions; the
    other files of the folder are ignored. With ``role="label"`` the suffixes are ``_seg``,
    ``_label``, ``_labels``, ``_gt``, so ``BraTS2021_00000_seg.nii.gz`` is case
    ``BraTS2021_00000`` and its modality files are cases of their own, that no prediction matches.

    Args:
        folder: folder to search.
        pattern: glob pattern relative to ``folder`` (e.g. ``"*_seg.nii.gz"``). Defaults to
            ``None`` (every supported file, recursively).
        role: ``"prediction"``, ``"label"`` or ``"any"`` (every known suffix). Defaults to ``"any"``.

    Raises:
        ValueError: the folder does not exist, holds no supported file, or two files map to the
            same case id.
    """
    suffixes = {"prediction": _PRED_SUFFIXES, "label": _LABEL_SUFFIXES, "any": _SUFFIXES}[role]
    root = Path(folder)
    if not root.is_dir():
        raise ValueError(f"folder {str(root)!r} does not exist or is not a directory.")
    files = [(f, *_split_case(_strip_ext(f.name)[0], suffixes)) for f in _image_files(root, pattern)]
    if role == "prediction" and any(suffix for _, _, suffix in files):
        files = [entry for entry in files if entry[2]]
    cases: dict[str, Path] = {}
    for f, case, _ in files:
        if case in cases:
            raise ValueError(
                f"files {str(cases[case])!r} and {str(f)!r} both map to case {case!r}; pass the folder that holds"
                " only one of them, or --pattern."
            )
        cases[case] = f
    if not cases:
        what = f"matching {pattern!r}" if pattern else "(.nii, .nii.gz, .mha, .mhd, .nrrd)"
        raise ValueError(f"folder {str(root)!r} holds no image file {what}.")
    return cases


def pair_cases(
    pred_dir: str | os.PathLike, label_dir: str | os.PathLike, pattern: str | None = None
) -> tuple[dict[str, tuple[Path, Path]], list[str]]:
    """Pair each prediction of ``pred_dir`` with the label of the same case id in ``label_dir``
    (see :func:`find_cases`; ``amos_0001_seg.nii.gz`` <-> ``amos_0001.nii.gz``).

    Labels without a prediction are left out (a label folder may hold the whole dataset); a
    prediction without a label is an error.

    Returns:
        ``({case: (prediction, label)}, [cases of label_dir without prediction])``.

    Raises:
        ValueError: see :func:`find_cases`; a prediction whose case has no label (one line naming the
            file, the case id and the label folder).
    """
    preds = find_cases(pred_dir, pattern, role="prediction")
    root = Path(label_dir)
    if not root.is_dir():
        raise ValueError(f"folder {str(root)!r} does not exist or is not a directory.")
    labels: dict[str, list[Path]] = {}
    for f in _image_files(root, pattern):
        labels.setdefault(_split_case(_strip_ext(f.name)[0], _LABEL_SUFFIXES)[0], []).append(f)
    pairs = {}
    for case, pred in sorted(preds.items()):
        found = labels.get(case, [])
        if not found:
            raise ValueError(
                f"prediction {str(pred)!r} (case {case!r}) has no label in {str(root)!r}: expected {case}.nii.gz,"
                f" {case}_seg.nii.gz or .mha ({len(preds)} predictions, {len(labels)} label files)."
            )
        if len(found) > 1:
            raise ValueError(
                f"files {str(found[0])!r} and {str(found[1])!r} both map to case {case!r}; pass the folder that holds"
                " only one of them, or --pattern."
            )
        pairs[case] = (pred, found[0])
    return pairs, sorted(set(labels) - set(preds))


def load_label_map(path: str | os.PathLike) -> tuple[torch.Tensor, tuple[float, ...]]:
    """Read a class-index map with MONAI ``LoadImage`` (``NibabelReader`` for NIfTI, ``ITKReader``
    for ``.mha``/``.mhd``/``.nrrd``) and return ``(labels (*spatial) long tensor, spacing)``.

    Raises:
        ValueError: the file cannot be read, holds more than one channel, or has non-integer values.
    """
    from monai.transforms import LoadImage

    path = Path(path)
    split = _strip_ext(path.name)
    reader = "NibabelReader" if split is not None and split[1] in _NIFTI else "ITKReader"
    try:
        img = LoadImage(image_only=True, reader=reader)(str(path))
    except Exception as e:  # any reader failure -> one clear error naming the file
        raise ValueError(f"cannot read {str(path)!r} with MONAI LoadImage({reader}): {e}") from e
    spacing = tuple(float(s) for s in img.pixdim) if hasattr(img, "pixdim") else ()
    arr = torch.as_tensor(img.as_tensor() if hasattr(img, "as_tensor") else img)
    while arr.ndim > 3 and arr.shape[-1] == 1:
        arr = arr[..., 0]
    if arr.ndim > 3:
        raise ValueError(f"{str(path)!r} has shape {tuple(arr.shape)}; expected a single-channel class-index map.")
    if arr.is_floating_point() and not torch.equal(arr, arr.round()):
        raise ValueError(f"{str(path)!r} has non-integer values; expected a class-index map.")
    spacing = spacing[: arr.ndim] if len(spacing) >= arr.ndim else (1.0,) * arr.ndim
    return arr.round().long(), spacing


def dataset_label_names(folder: str | os.PathLike) -> dict[int, str] | None:
    """Structure names of a dataset from the ``labels`` of its ``dataset.json`` (MSD / nnU-Net /
    AMOS layout: ``{"0": "background", "1": "spleen", ...}``), looked up in ``folder`` and its
    parent (a ``labelsTr/`` folder sits beside the dataset's ``dataset.json``).

    Args:
        folder: a label folder or the dataset folder.

    Returns:
        ``{label value: name}``, or None when no readable ``dataset.json`` with ``labels`` is found.
    """
    import json

    for root in (Path(folder), Path(folder).parent):
        meta_file = root / "dataset.json"
        if not meta_file.is_file():
            continue
        try:
            labels = json.loads(meta_file.read_text()).get("labels")
            names = {int(k): str(v) for k, v in labels.items()} if isinstance(labels, Mapping) else None
        except (ValueError, TypeError, AttributeError):
            names = None
        if names:
            return names
    return None


def plot_per_class_bars(
    summary: Mapping[str, Any], path: str | os.PathLike, title: str = "", distance_unit: str | None = None
) -> Path:
    """Chart of the mean (error bar: standard deviation over cases) DSC, HD95 and ASSD per structure,
    saved atomically as PNG: three panels side by side sharing the structure names on the vertical
    axis (readable for the 15 AMOS organs at a normal size), each bar labelled with its value; a
    structure without any valid case (absent from every reference and prediction, NaN) is marked
    "absent" instead of drawn as a zero.

    Args:
        summary: output of :func:`summarize_cases` (``summary["settings"]["distance_unit"]``, when
            present, gives the distance unit).
        path: destination PNG.
        title: figure title. Defaults to ``""``.
        distance_unit: unit of HD95 and ASSD in the axis titles. Defaults to ``None`` (from the
            summary's settings: ``"mm"`` for header spacing, ``"voxels"`` otherwise; ``"mm"`` if unset).

    Returns:
        the PNG path.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if distance_unit is None:
        setting = str(summary.get("settings", {}).get("distance_unit", "mm"))
        distance_unit = "mm" if setting.startswith("mm") else setting
    names = list(summary["structures"])
    height = max(3.4, 0.32 * len(names) + 1.4)
    fig, axes = plt.subplots(1, 3, figsize=(13, height), sharey=True)
    labels = ("DSC", f"HD95 ({distance_unit})", f"ASSD ({distance_unit})")
    ypos = np.arange(len(names))
    for ax, m, lab in zip(axes, METRICS, labels):
        means = np.array([summary["structures"][n][m]["mean"] for n in names], dtype=float)
        stds = np.array([summary["structures"][n][m]["std"] for n in names], dtype=float)
        present = ~np.isnan(means)
        ax.barh(ypos[present], means[present], xerr=np.nan_to_num(stds[present]), color="tab:blue", alpha=0.85,
                capsize=2, error_kw={"elinewidth": 0.8, "ecolor": "0.3"})
        top = 1.0 if m == "dice" else max(float(np.nanmax(means + np.nan_to_num(stds))) if present.any() else 1.0, 1e-6)
        for y, v, sd, ok in zip(ypos, means, np.nan_to_num(stds), present):
            text = (f"{v:.2f}" if m == "dice" else f"{v:.3g}") if ok else "absent"
            ax.text(v + sd + 0.02 * top if ok else 0.01 * top, y, text, va="center", fontsize=7,
                    color="0.2" if ok else "tab:red", style="normal" if ok else "italic")
        ax.set_xlim(0, 1.2 if m == "dice" else top * 1.25)
        if m == "dice":
            ax.set_xticks(np.linspace(0, 1, 6))
        ax.set_title(lab, fontsize=11)
        ax.grid(axis="x", alpha=0.3)
        ax.tick_params(axis="x", labelsize=8)
    axes[0].set_yticks(ypos)
    axes[0].set_yticklabels([n.replace("_", " ") for n in names], fontsize=9)
    axes[0].set_ylim(len(names) - 0.5, -0.5)  # first structure on top
    fig.suptitle(title or "per-structure metrics", fontsize=12)
    fig.tight_layout()
    return save_figure(fig, path)


def evaluate_folders(
    pred_dir: str | os.PathLike,
    label_dir: str | os.PathLike,
    output_dir: str | os.PathLike,
    num_classes: int | None = None,
    class_names: Sequence[str] | Mapping[int, str] | None = None,
    spacing_aware: bool = True,
    pattern: str | None = None,
    include_background: bool = False,
    regions: Mapping[str, Sequence[int]] | None = None,
    label_remap: str | None = None,
) -> dict[str, Any]:
    """Score a folder of predicted class-index maps against a folder of labels.

    Files are paired by case id (see :func:`pair_cases`): every prediction needs a label; labels
    without a prediction (the rest of a dataset's label folder) are left out and counted in
    ``settings["labels_without_prediction"]``; contour maps and files that are not predictions are
    ignored. Writes, atomically, into ``output_dir``: ``per_case.csv`` (one row per case and
    structure: ``case, structure, dice, hd95, assd, label_voxels, pred_voxels``),
    ``summary.json`` (:func:`summarize_cases` plus the settings) and ``per_class.png``. Nothing is
    written if any input is bad.

    Example:
        >>> summary = evaluate_folders("preds/", "labelsTs/", "eval/", num_classes=16)  # doctest: +SKIP
        >>> summary["overall"]["dice"]  # doctest: +SKIP

    Args:
        pred_dir: folder of predictions (NIfTI or ``.mha``; searched recursively).
        label_dir: folder of labels.
        output_dir: where the outputs go (created if needed).
        num_classes: number of classes including background. Defaults to ``None`` (max label value
            over all files + 1, or ``len(class_names)``).
        class_names: names of classes ``0..num_classes-1`` (sequence or ``{index: name}``).
            Defaults to ``None``: the ``labels`` of the dataset's ``dataset.json`` in ``label_dir`` or
            its parent (:func:`dataset_label_names`), else ``class_<i>``.
        spacing_aware: distances in physical units from the label header spacing (the prediction's
            spacing must match). Defaults to ``True``.
        pattern: glob pattern selecting files in both folders. Defaults to ``None`` (all supported,
            paired by case id).
        include_background: also score class 0. Defaults to ``False``.
        regions: score label unions instead of classes, e.g. BraTS ``{"TC": [1, 4], "WT": [1, 2,
            4], "ET": [4]}``. Defaults to ``None``.
        label_remap: map the labels (not the predictions) first: ``"pengwin"`` turns raw PENGWIN
            fragment labels (0-30) into the 15 classes the PENGWIN bundle predicts
            (:class:`~monai_cwcd.data.PengwinLabelRemap`). Defaults to ``None``.

    Returns:
        the summary dict also written to ``summary.json``.

    Raises:
        ValueError: empty or missing folder, a prediction without label, an unreadable file, a
            prediction/label shape or spacing mismatch, a label value >= ``num_classes``, an
            unknown ``label_remap``; the message names the file(s).
    """
    remaps = {"pengwin": "PengwinLabelRemap"}
    if label_remap is not None and label_remap not in remaps:
        raise ValueError(f"label_remap={label_remap!r} is not known; expected one of {sorted(remaps)} or None.")
    remap = None
    if label_remap is not None:
        import monai_cwcd.data as data

        remap = getattr(data, remaps[label_remap])()
    pairs, unpredicted = pair_cases(pred_dir, label_dir, pattern)
    preds = {case: p for case, (p, _) in pairs.items()}
    labels = {case: g for case, (_, g) in pairs.items()}
    if class_names is None and not regions:  # the dataset's own structure names, else class_<i>
        class_names = dataset_label_names(label_dir)
        if class_names is not None and num_classes is None:
            num_classes = max(class_names) + 1
    if num_classes is None and class_names is not None and not isinstance(class_names, Mapping):
        num_classes = len(class_names)
    loaded = {}
    for case in sorted(labels):
        p, p_sp = load_label_map(preds[case])
        g, g_sp = load_label_map(labels[case])
        if remap is not None:
            g = remap(g)
        if p.shape != g.shape:
            raise ValueError(
                f"shape mismatch for case {case!r}: prediction {str(preds[case])!r} has {tuple(p.shape)},"
                f" label {str(labels[case])!r} has {tuple(g.shape)}."
            )
        if spacing_aware and not np.allclose(p_sp, g_sp, rtol=1e-3, atol=1e-4):
            raise ValueError(
                f"spacing mismatch for case {case!r}: prediction {str(preds[case])!r} has {p_sp},"
                f" label {str(labels[case])!r} has {g_sp} (pass spacing_aware=False to use voxel units)."
            )
        for arr, f in ((p, preds[case]), (g, labels[case])):
            if int(arr.min()) < 0 or (num_classes is not None and not regions and int(arr.max()) >= num_classes):
                hint = ""
                if f == labels[case] and remap is None and num_classes == 15 and int(arr.max()) <= 30:
                    hint = " (raw PENGWIN labels 0-30? --label_remap pengwin maps them to the bundle's 15 classes)"
                raise ValueError(
                    f"{str(f)!r} has label values in [{int(arr.min())}, {int(arr.max())}];"
                    f" expected 0..{num_classes - 1 if num_classes else 'n'}{hint}."
                )
        loaded[case] = (p, g, g_sp)
    if num_classes is None:
        num_classes = max(max(int(p.max()), int(g.max())) for p, g, _ in loaded.values()) + 1
    per_case = {
        case: segmentation_metrics(
            p,
            g,
            num_classes=num_classes,
            spacing=sp if spacing_aware else None,
            class_names=class_names,
            include_background=include_background,
            regions=regions,
        )
        for case, (p, g, sp) in loaded.items()
    }
    summary = summarize_cases(per_case)
    summary["settings"] = {
        "pred_dir": str(pred_dir),
        "label_dir": str(label_dir),
        "labels_without_prediction": len(unpredicted),
        "num_classes": int(num_classes),
        "spacing_aware": bool(spacing_aware),
        "include_background": bool(include_background),
        "regions": {k: list(v) for k, v in regions.items()} if regions else None,
        "label_remap": label_remap,
        "distance_unit": "mm (header spacing)" if spacing_aware else "voxels",
        "empty_rule": "both empty -> NaN (excluded from means); one empty -> DSC 0, HD95=ASSD=image diagonal",
    }
    out = Path(output_dir)
    rows = [
        [case, name, r["dice"], r["hd95"], r["assd"], int(r["label_voxels"]), int(r["pred_voxels"])]
        for case, recs in per_case.items()
        for name, r in recs.items()
    ]
    write_csv(out / "per_case.csv", ["case", "structure", "dice", "hd95", "assd", "label_voxels", "pred_voxels"], rows)
    write_json(out / "summary.json", summary)
    plot_per_class_bars(summary, out / "per_class.png", title=f"{len(per_case)} cases")
    return summary
