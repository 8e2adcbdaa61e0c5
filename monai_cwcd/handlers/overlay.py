"""Overlay PNG of a validation case: a few axial slices with the reference and the predicted
structure outlines, one colour per structure and a legend with the structure names."""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch
from ignite.engine import Engine, Events

from monai_cwcd.handlers.utils import is_rank0
from monai_cwcd.utils import atomic_output

__all__ = ["ValidationOverlay", "structure_masks", "render_overlay"]

# tab10 then the light tab20 shades, greys left out: distinct on a grey CT slice
_PALETTE = [
    "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#bcbd22", "#17becf",
    "#aec7e8", "#ffbb78", "#98df8a", "#ff9896", "#c5b0d5", "#f7b6d2", "#dbdb8d", "#9edae5", "#c49c94",
]


def _to_numpy(x: Any) -> np.ndarray:
    if isinstance(x, torch.Tensor):
        return x.detach().cpu().numpy()
    return np.asarray(x)


def structure_masks(x: Any, num_structures: int, include_background: bool = False) -> np.ndarray:
    """Binary masks ``(num_structures, *spatial)`` of the named structures of a label or prediction.

    Accepts the two layouts of MONAI's post-processing: a channel-first class-index map
    ``(1, *spatial)``, or one channel per class ``(C, *spatial)`` (one-hot after ``AsDiscrete`` or
    the overlapping regions of a multi-label task such as BraTS TC/WT/ET, thresholded at 0.5).

    Args:
        x: channel-first array or tensor.
        num_structures: number of named structures.
        include_background: whether channel 0 (class 0) is a named structure; False skips it,
            so a one-hot input must have ``num_structures + 1`` channels. Defaults to False.

    Raises:
        ValueError: when the channel count fits neither layout.
    """
    arr = _to_numpy(x)
    offset = 0 if include_background else 1
    channels = num_structures + offset
    if arr.ndim < 2:
        raise ValueError(f"expected a channel-first array (C, *spatial), got shape {tuple(arr.shape)}.")
    if arr.shape[0] == channels and channels > 1:
        return arr[offset:] > 0.5
    if arr.shape[0] == 1:
        idx = np.rint(arr[0]).astype(np.int64)
        return np.stack([idx == k + offset for k in range(num_structures)])
    raise ValueError(
        f"expected {channels} channels (one per class, include_background={include_background}) or 1 channel of "
        f"class indices, got shape {tuple(arr.shape)} for {num_structures} named structures."
    )


def _pick_slices(reference: np.ndarray, num_slices: int) -> list[int]:
    """Axial (last-axis) indices spread over the slices holding reference structures."""
    depth = reference.shape[-1]
    present = np.flatnonzero(reference.reshape(-1, depth).any(axis=0)) if reference.size else np.array([], int)
    lo, hi = (int(present[0]), int(present[-1])) if present.size else (0, depth - 1)
    n = max(1, min(int(num_slices), hi - lo + 1))
    return sorted({int(round(lo + (hi - lo) * (i + 1) / (n + 1))) for i in range(n)})


def _window(img: np.ndarray, structures: np.ndarray) -> tuple[float, float]:
    """Grey-level window: the structures' 1st-99th percentiles, widened by half their range."""
    values = img[structures & np.isfinite(img)]
    if values.size:
        lo, hi = np.percentile(values, [1, 99])
        pad = max(0.5 * (hi - lo), 1e-6)
        return float(lo - pad), float(hi + pad)
    finite = img[np.isfinite(img)]
    if not finite.size:
        return 0.0, 1.0
    lo, hi = np.percentile(finite, [1, 99.9])
    return float(lo), float(max(hi, lo + 1e-6))


def render_overlay(
    image: Any,
    reference: Any,
    prediction: Any,
    class_names: Sequence[str],
    num_slices: int = 4,
    pixdim: Sequence[float] | None = None,
    title: str | None = None,
) -> Any:
    """Matplotlib figure: ``num_slices`` axial slices (columns) of ``image`` with the reference
    outlines (top row) and the predicted outlines (bottom row), one colour per structure, and a
    legend naming the structures visible in those slices.

    Slices are spread over the axial range that holds reference structures. Arrays are in
    MONAI's axis order after ``Orientationd("RAS")`` (x, y, z); overlapping structures (nested
    regions such as BraTS TC/WT/ET) are drawn from thick to thin so that shared outlines show
    every colour; a slice is shown in the
    radiological convention (patient's right on the left, anterior at the top), with the
    in-plane aspect ratio of ``pixdim``. The grey-level window is centred on the reference
    structures: their 1st-99th intensity percentiles widened by half their range on each side
    (the whole image's 1st-99.9th percentiles when there is no reference structure).

    Args:
        image: ``(*spatial)`` image, 3D (or 2D for a single slice).
        reference: ``(K, *spatial)`` boolean masks of the K structures (see :func:`structure_masks`).
        prediction: ``(K, *spatial)`` boolean masks, same shape as ``reference``.
        class_names: the K structure names (underscores shown as spaces).
        num_slices: number of axial slices. Defaults to 4.
        pixdim: voxel spacing in mm (x, y[, z]). Defaults to None (isotropic).
        title: figure title. Defaults to None.

    Raises:
        ValueError: when the shapes of image, reference, prediction and names disagree.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.lines import Line2D

    img, ref, pred = _to_numpy(image).astype(np.float32), _to_numpy(reference) > 0, _to_numpy(prediction) > 0
    if img.ndim == 2:
        img, ref, pred = img[..., None], ref[..., None], pred[..., None]
    if ref.shape != pred.shape or ref.shape[1:] != img.shape or ref.shape[0] != len(class_names) or img.ndim != 3:
        raise ValueError(
            f"overlay needs image (*spatial), reference and prediction (K, *spatial) with K = {len(class_names)} "
            f"names; got image {tuple(img.shape)}, reference {tuple(ref.shape)}, prediction {tuple(pred.shape)}."
        )
    slices = _pick_slices(ref.any(axis=0), num_slices)
    vmin, vmax = _window(img, ref.any(axis=0))
    aspect = float(pixdim[1]) / float(pixdim[0]) if pixdim is not None and len(pixdim) >= 2 and pixdim[0] else 1.0

    def view(a: np.ndarray) -> np.ndarray:  # (x, y) -> rows anterior..posterior, columns right..left
        return a.T[::-1, ::-1]

    cols = len(slices)
    panel = 2.8
    fig = Figure(figsize=(panel * cols + 2.6, panel * 2 + (0.6 if title else 0.2)), dpi=120)
    FigureCanvasAgg(fig)
    axes = fig.subplots(2, cols, squeeze=False)
    colours = [_PALETTE[k % len(_PALETTE)] for k in range(len(class_names))]
    # overlapping structures (e.g. BraTS TC inside WT) can share outlines: draw them thick to thin
    nested = bool((ref.sum(axis=0) > 1).any() or (pred.sum(axis=0) > 1).any())
    widths = [3.4 - 2.2 * k / max(len(class_names) - 1, 1) if nested else 1.6 for k in range(len(class_names))]
    visible: set[int] = set()
    for c, z in enumerate(slices):
        for r, (masks, row_name) in enumerate(((ref, "reference"), (pred, "prediction"))):
            ax = axes[r][c]
            ax.imshow(view(img[..., z]), cmap="gray", vmin=vmin, vmax=vmax, aspect=aspect, interpolation="nearest")
            for k in range(len(class_names)):
                m = view(masks[k, ..., z])
                if m.any():
                    visible.add(k)
                    ax.contour(m.astype(np.float32), levels=[0.5], colors=[colours[k]], linewidths=widths[k])
            ax.set_xticks([])
            ax.set_yticks([])
            if r == 0:
                ax.set_title(f"axial slice {z}", fontsize=10)
            if c == 0:
                ax.set_ylabel(row_name, fontsize=11)
    handles = [Line2D([], [], color=colours[k], linewidth=3, label=str(class_names[k]).replace("_", " ")) for k in sorted(visible)]
    right = (panel * cols) / (panel * cols + 2.6)
    if title:
        fig.suptitle(title, fontsize=11)
    fig.tight_layout(rect=(0, 0, right, 1))
    if handles:
        fig.legend(handles=handles, loc="center left", bbox_to_anchor=(right, 0.5), fontsize=9, frameon=False,
                   title="outlines", title_fontsize=10, alignment="left")
    return fig


class ValidationOverlay:
    """Write an overlay PNG of one validation case, reference vs prediction, each time the
    validator's key metric improves (so the picture shows the model saved as the best checkpoint),
    or after every validation with ``only_best=False``. Rank 0 only, written atomically.

    Attach it to a MONAI ``SupervisedEvaluator`` (``validate#handlers`` of a bundle). It reads
    ``engine.state.output`` after the evaluator's post-processing (decollated or batched), so the
    prediction and the label are in the layout the metrics see: one channel per class (one-hot
    after ``AsDiscreted``, or overlapping regions for BraTS) or one channel of class indices.
    The picture is drawn by :func:`render_overlay`.

    Example:
        >>> overlay = ValidationOverlay("runs/amos_demo", class_names=["spleen", "right_kidney", ...])
        >>> # overlay.attach(evaluator) -> runs/amos_demo/validation_overlay.png

    Args:
        output_dir: folder of the PNG (created when missing).
        class_names: names of the structures, in channel order (background excluded when
            ``include_background=False``).
        include_background: whether channel 0 is a named structure. Defaults to False.
        filename: PNG file name. Defaults to ``"validation_overlay.png"``.
        case_index: which validation case (0-based, in loader order on this rank). Defaults to 0.
        num_slices: axial slices shown. Defaults to 4.
        image_channel: image channel drawn (e.g. 0 = FLAIR for BraTS). Defaults to 0.
        only_best: write only when the key metric improves; without a key metric, every time.
            Defaults to True.
        image_key: Defaults to ``"image"``.
        label_key: Defaults to ``"label"``.
        pred_key: Defaults to ``"pred"``.
        case_key: batch key of the case id shown in the title (falls back to the image file
            name). Defaults to ``"case_id"``.
        title: figure title prefix. Defaults to None.
        name: logger name; None uses the engine's logger. Defaults to None.

    Raises:
        ValueError: empty ``class_names``, negative ``case_index`` or ``num_slices < 1``; when the
            output's channels fit neither layout (see :func:`structure_masks`).
    """

    def __init__(
        self,
        output_dir: str,
        class_names: Sequence[str],
        include_background: bool = False,
        filename: str = "validation_overlay.png",
        case_index: int = 0,
        num_slices: int = 4,
        image_channel: int = 0,
        only_best: bool = True,
        image_key: str = "image",
        label_key: str = "label",
        pred_key: str = "pred",
        case_key: str = "case_id",
        title: str | None = None,
        name: str | None = None,
    ) -> None:
        if len(class_names) == 0:
            raise ValueError("ValidationOverlay needs at least one class name.")
        if int(case_index) < 0 or int(num_slices) < 1:
            raise ValueError(f"case_index must be >= 0 and num_slices >= 1, got {case_index} and {num_slices}.")
        self.output_dir = str(output_dir)
        self.class_names = [str(n) for n in class_names]
        self.include_background = bool(include_background)
        self.filename = filename
        self.case_index = int(case_index)
        self.num_slices = int(num_slices)
        self.image_channel = int(image_channel)
        self.only_best = only_best
        self.image_key, self.label_key, self.pred_key, self.case_key = image_key, label_key, pred_key, case_key
        self.title = title
        self.logger = logging.getLogger(name)
        self._name = name
        self._seen = 0
        self._case: dict[str, Any] | None = None

    @property
    def path(self) -> str:
        """The PNG's path, ``{output_dir}/{filename}``."""
        return os.path.join(self.output_dir, self.filename)

    def attach(self, engine: Engine) -> None:
        """Register on ``EPOCH_STARTED``, ``ITERATION_COMPLETED`` and ``EPOCH_COMPLETED``."""
        if self._name is None:
            self.logger = engine.logger
        engine.add_event_handler(Events.EPOCH_STARTED, self._reset)
        engine.add_event_handler(Events.ITERATION_COMPLETED, self.iteration_completed)
        engine.add_event_handler(Events.EPOCH_COMPLETED, self.epoch_completed)

    def _reset(self, engine: Engine) -> None:
        self._seen, self._case = 0, None

    @staticmethod
    def _items(output: Any, batch: Any) -> list[tuple[dict, Any]]:
        """Per-case ``(output dict, batch dict or None)`` pairs, decollated or batched."""
        if isinstance(output, Mapping):  # decollate=False: batched tensors
            n = len(next(iter(v for v in output.values() if isinstance(v, torch.Tensor))))
            outs = [{k: v[i] if isinstance(v, torch.Tensor) else v for k, v in output.items()} for i in range(n)]
            bats = [None] * n
            if isinstance(batch, Mapping):
                bats = [{k: (v[i] if isinstance(v, (torch.Tensor, list, tuple)) and len(v) == n else v) for k, v in batch.items()} for i in range(n)]
            return list(zip(outs, bats))
        outs = list(output or [])
        bats = list(batch) if isinstance(batch, (list, tuple)) and len(batch) == len(outs) else [None] * len(outs)
        return list(zip(outs, bats))

    def iteration_completed(self, engine: Engine) -> None:
        """Keep the chosen case (image channel, reference and predicted masks) on the CPU."""
        items = self._items(engine.state.output, engine.state.batch)
        if self._case is None and self._seen <= self.case_index < self._seen + len(items):
            out, bat = items[self.case_index - self._seen]
            for key in (self.image_key, self.label_key, self.pred_key):
                if key not in out:
                    raise KeyError(f"ValidationOverlay: engine.state.output has no {key!r} (keys {sorted(out)}).")
            image = out[self.image_key]
            n = len(self.class_names)
            meta = getattr(image, "meta", None) or {}
            case = bat.get(self.case_key) if isinstance(bat, Mapping) else None
            if case is None and meta.get("filename_or_obj"):
                case = os.path.basename(str(meta["filename_or_obj"]))
            pixdim = getattr(image, "pixdim", None)
            self._case = {
                "image": _to_numpy(image[self.image_channel]).astype(np.float32),
                "reference": structure_masks(out[self.label_key], n, self.include_background),
                "prediction": structure_masks(out[self.pred_key], n, self.include_background),
                "case": None if case is None else str(case),
                "pixdim": None if pixdim is None else [float(p) for p in _to_numpy(pixdim).ravel()],
            }
        self._seen += len(items)

    def epoch_completed(self, engine: Engine) -> None:
        """Write the PNG when the key metric improved this epoch (or always, see ``only_best``)."""
        if self._case is None or not is_rank0():
            return
        key = getattr(engine.state, "key_metric_name", None)
        epoch = int(engine.state.epoch)
        if self.only_best and key is not None and int(getattr(engine.state, "best_metric_epoch", -1)) != epoch:
            return
        self.write(engine)

    def write(self, engine: Engine | None = None) -> str:
        """Render the kept case and write the PNG atomically; returns its path."""
        if self._case is None:
            raise RuntimeError("ValidationOverlay.write: no validation case was seen yet.")
        parts = [self.title] if self.title else []
        parts.append(f"validation case {self._case['case'] or self.case_index}")
        if engine is not None:
            parts.append(f"epoch {int(engine.state.epoch)}")
            key = getattr(engine.state, "key_metric_name", None)
            value = engine.state.metrics.get(key) if key else None
            if isinstance(value, (int, float)) and not math.isnan(float(value)):
                parts.append(f"{key} {float(value):.3f}")
        fig = render_overlay(
            self._case["image"], self._case["reference"], self._case["prediction"], self.class_names,
            num_slices=self.num_slices, pixdim=self._case["pixdim"], title=" | ".join(parts),
        )
        with atomic_output(self.path) as tmp:
            fig.savefig(tmp, format="png")
        self.logger.info("ValidationOverlay: wrote %s", self.path)
        return self.path
