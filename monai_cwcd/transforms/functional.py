"""Pure torch kernels shared by the transforms and the losses.

Everything here works on plain ``torch.Tensor`` objects on any device (CPU or CUDA) and never
leaves torch, so the array transforms, the dictionary transforms and the losses' on-the-fly
path all run the same code.

The contour of a binary object ``G`` is ``C = G - erode(G)`` (journal paper eq. 8, conference
paper eq. 1), with ``erode`` the binary erosion by a box of side ``kernel_size`` repeated
``iterations`` times. ``iterations`` erosions by a box of side ``k`` equal one erosion by a box
spanning the offsets ``[-it * (k // 2), it * ((k - 1) // 2)]`` on every axis (the origin
convention of ``scipy.ndimage``: the centre of an even box sits at index ``k // 2``), and a box
erosion is separable, so one erosion is a running minimum along each spatial axis in turn.

For a class-index label map a voxel of class ``c`` survives the erosion of ``G_c`` exactly when
every voxel of its window has class ``c``, i.e. when the window minimum equals the window maximum.
That gives the contours of *all* classes in a single pass over the label map, instead of one
erosion per class.

Physical units and per-structure widths (issue 12): ``contour_width_mm`` gives the contour thickness
in millimetres instead of ``kernel_size``/``iterations``; it becomes a per-axis window through the
voxel spacing (:func:`contour_radius`). A mapping ``{class: width}`` gives every class its own
window; the nested windows of all classes are still done in one sweep over the label map
(:func:`label_contour`).
"""

from __future__ import annotations

import functools
import math
import sys
import warnings
from collections.abc import Mapping, Sequence

import numpy as np
import torch
from monai.transforms.utils import distance_transform_edt

__all__ = [
    "erosion_window",
    "check_contour_width",
    "check_spacing",
    "contour_radius",
    "image_spacing",
    "resolve_spacing",
    "contour_windows",
    "window_extreme",
    "label_contour",
    "binary_contour",
    "compact_labels",
    "rrw_map",
    "distance_weight_map",
]


def erosion_window(kernel_size: int, iterations: int) -> tuple[int, int]:
    """Offsets ``(before, after)`` of the box equivalent to ``iterations`` erosions by a box of side
    ``kernel_size`` (scipy's origin convention: the centre of an even box is at index ``k // 2``).

    Example:
        >>> erosion_window(3, 1), erosion_window(2, 1), erosion_window(3, 2)
        ((1, 1), (1, 0), (2, 2))
    """
    if int(kernel_size) < 1:
        raise ValueError(f"kernel_size must be >= 1, got {kernel_size}.")
    if int(iterations) < 1:
        raise ValueError(f"iterations must be >= 1, got {iterations}.")
    return int(iterations) * (int(kernel_size) // 2), int(iterations) * ((int(kernel_size) - 1) // 2)


Window = tuple[tuple[int, int], ...]
"""Erosion window per spatial axis: ``((before, after), ...)`` offsets towards lower / higher indices."""

def _check_widths(value, where: str) -> tuple[float, ...]:
    """One width or one per axis, as a tuple of floats >= 0 (``ValueError`` naming ``where``)."""
    vals = value.tolist() if isinstance(value, (torch.Tensor, np.ndarray)) else value
    vals = [vals] if isinstance(vals, (int, float)) else vals
    if isinstance(vals, (str, bytes)) or not isinstance(vals, Sequence) or len(vals) == 0:
        raise ValueError(f"{where} must be a number or one number per spatial axis, got {value!r}.")
    out = []
    for v in vals:
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or v < 0:
            raise ValueError(f"{where} must hold finite numbers >= 0 (millimetres), got {value!r}.")
        out.append(float(v))
    return tuple(out)


def check_contour_width(
    contour_width_mm: float | Sequence[float] | Mapping[int, float | Sequence[float]] | None,
) -> tuple[float, ...] | dict[int, tuple[float, ...]] | None:
    """Validate and normalise a ``contour_width_mm`` setting.

    Returns:
        None; a tuple (one width, or one per spatial axis) for a uniform width; or a dict
        ``{class index: tuple}`` for per-class widths (string keys such as JSON's ``"3"`` are turned
        into integers).

    Raises:
        ValueError: a width that is negative, not finite or not a number; an empty sequence; a class
            key that is not an integer >= 0.
    """
    if contour_width_mm is None:
        return None
    if isinstance(contour_width_mm, Mapping):
        if not contour_width_mm:
            raise ValueError("contour_width_mm: the per-class mapping {class: width_mm} is empty.")
        out: dict[int, tuple[float, ...]] = {}
        for key, value in contour_width_mm.items():
            try:
                cls = int(key)
            except (TypeError, ValueError):
                cls = -1
            if isinstance(key, bool) or cls < 0 or str(cls) != str(key).strip():
                raise ValueError(f"contour_width_mm: class keys must be integers >= 0, got {key!r}.")
            out[cls] = _check_widths(value, f"contour_width_mm[{key!r}]")
        return out
    return _check_widths(contour_width_mm, "contour_width_mm")


def check_spacing(spacing: float | Sequence[float] | None) -> tuple[float, ...] | None:
    """Voxel spacing (mm) as a tuple of floats > 0 (one value, or one per spatial axis), or None.

    Raises:
        ValueError: a value that is not a finite number > 0, or an empty sequence.
    """
    if spacing is None:
        return None
    sp = _check_widths(spacing, "spacing")
    if any(v <= 0 for v in sp):
        raise ValueError(f"spacing must be > 0 mm on every axis, got {spacing!r}.")
    return sp


def contour_radius(contour_width_mm: float | Sequence[float], spacing: float | Sequence[float]) -> tuple[int, ...]:
    """Half-width in voxels, per axis, of the erosion window that gives a contour ``contour_width_mm``
    millimetres thick on a grid of voxel ``spacing`` (mm)::

        r_a = floor(w_a / s_a + 1/2),          window offsets [-r_a, r_a] on axis a

    i.e. a box of side ``2 r_a + 1`` on axis ``a``, one erosion. Derivation: the boundary of a region
    lies on the faces between voxels, and the ``j``-th voxel layer inside a face (``j = 0, 1, ...``)
    has its centre ``(j + 1/2) s_a`` mm from it; the contour is the layers whose centre lies within
    ``w_a`` mm of the face, ``(j + 1/2) s_a <= w_a``, which are ``floor(w_a / s_a + 1/2)`` layers (the
    whole number of voxels nearest to ``w_a / s_a``; 0 when the width is below half a voxel: that axis
    marks no contour).

    Voxel settings: an odd ``kernel_size`` ``k`` with ``iterations`` ``it`` is the window
    ``r = it * (k - 1) / 2`` on every axis, so on an isotropic grid of spacing ``s`` the width
    ``contour_width_mm = it * (k - 1) / 2 * s`` gives exactly the voxel setting (``(3, 1)`` is ``s``
    mm, the conference paper's ``(3, 6)`` is ``6 s``). An even ``k`` (the journal's ``k = 2``) is a
    one-sided window and has no millimetre equivalent.

    Example:
        >>> contour_radius(2.0, (0.8, 0.8, 5.0)), contour_radius(1.0, 1.0), contour_radius((1.5, 1.5, 5.0), (0.7, 0.7, 5.0))
        ((3, 3, 0), (1,), (2, 2, 1))

    Args:
        contour_width_mm: one width (every axis) or one per axis, mm, >= 0.
        spacing: voxel spacing, one number or one per axis, mm, > 0.

    Returns:
        one radius per axis (the longer of the two arguments).

    Raises:
        ValueError: negative or non-finite widths, non-positive spacing, or lengths that differ and
            are not 1.
    """
    w = _check_widths(contour_width_mm, "contour_width_mm")
    s = check_spacing(spacing)
    n = max(len(w), len(s))
    if len(w) not in (1, n) or len(s) not in (1, n):
        raise ValueError(
            f"contour_width_mm {w} and spacing {s} must have one value or one per spatial axis each, "
            "with the same number of axes."
        )
    w, s = w * n if len(w) == 1 else w, s * n if len(s) == 1 else s
    # the small tolerance keeps w = r * s (e.g. 3 * 0.7 mm) on r despite binary rounding
    return tuple(int(math.floor(wa / sa + 0.5 + 1e-9)) for wa, sa in zip(w, s))


def image_spacing(img, spatial_dims: int) -> tuple[float, ...] | list[tuple[float, ...]] | None:
    """Voxel spacing (mm) of a ``MetaTensor`` from its affine (the norms of the affine's spatial
    columns, as ``monai.data.utils.affine_to_spacing``), None for any other input.

    Returns:
        ``spatial_dims`` floats; for a batched ``MetaTensor`` (affine ``(B, 4, 4)``) a list with one
        tuple per sample.
    """
    affine = getattr(img, "affine", None)
    if affine is None or not hasattr(img, "meta"):
        return None
    a = torch.as_tensor(affine, dtype=torch.float64).cpu()
    if a.ndim not in (2, 3) or a.shape[-1] < spatial_dims + 1:
        return None
    cols = a[..., :-1, :spatial_dims]
    sp = cols.square().sum(-2).sqrt()
    if sp.ndim == 1:
        return tuple(sp.tolist())
    return [tuple(row) for row in sp.tolist()]


def resolve_spacing(
    img, spatial_dims: int, spacing: float | Sequence[float] | None, owner: str
) -> tuple[float, ...] | list[tuple[float, ...]]:
    """The voxel spacing a ``contour_width_mm`` setting uses for ``img``: the affine of a
    ``MetaTensor`` (:func:`image_spacing`; it is what ``Spacingd`` and the loaders keep up to date),
    else the explicit ``spacing``. A warning is issued when both are known and differ by more than
    0.1%.

    Raises:
        ValueError: neither is known (the message names ``owner``, the input and what to pass).
    """
    found = image_spacing(img, spatial_dims)
    given = check_spacing(spacing)
    if found is None:
        if given is None:
            raise ValueError(
                f"{owner}: contour_width_mm needs the voxel spacing, but the label ({type(img).__name__}, shape "
                f"{tuple(img.shape)}) carries no affine and no `spacing` argument was given; pass spacing=(mm per "
                "voxel, one per spatial axis) or a MetaTensor label (e.g. from LoadImaged)."
            )
        return given
    if given is not None:
        g = given * spatial_dims if len(given) == 1 else given
        rows = found if isinstance(found, list) else [found]
        if len(g) == spatial_dims and any(abs(a - b) > 1e-3 * b for row in rows for a, b in zip(g, row)):
            warnings.warn(
                f"{owner}: the label's affine gives spacing {[tuple(round(v, 4) for v in r) for r in rows]} mm; "
                f"the spacing={tuple(g)} argument is ignored.",
                stacklevel=3,
            )
    return found


def _one_window(kernel_size: int, iterations: int, spatial_dims: int) -> Window:
    return (erosion_window(kernel_size, iterations),) * spatial_dims


def contour_windows(
    spatial_dims: int,
    kernel_size: int = 3,
    iterations: int = 1,
    contour_width_mm: float | Sequence[float] | Mapping[int, float | Sequence[float]] | None = None,
    spacing: float | Sequence[float] | None = None,
    owner: str = "contour",
) -> Window | dict[int, Window]:
    """The erosion window(s) of a contour setting.

    Without ``contour_width_mm`` this is the voxel setting, ``erosion_window(kernel_size,
    iterations)`` on every axis. With it, ``kernel_size``/``iterations`` are ignored and every axis
    gets ``[-r_a, r_a]``, ``r_a`` from :func:`contour_radius`; a mapping gives one window per class.

    Args:
        spatial_dims: number of spatial axes.
        kernel_size: side of the erosion box. Defaults to 3.
        iterations: number of erosions. Defaults to 1.
        contour_width_mm: contour thickness in mm: a number, one per spatial axis, or a mapping
            ``{class index: number or per-axis}``. Defaults to None (voxel setting).
        spacing: voxel spacing in mm (number or per axis), needed with ``contour_width_mm``.
            Defaults to None.
        owner: name used in error messages. Defaults to ``"contour"``.

    Returns:
        one window ``((before, after), ...)`` per spatial axis, or ``{class: window}``.

    Raises:
        ValueError: invalid settings, or ``contour_width_mm`` without ``spacing``.
    """
    width = check_contour_width(contour_width_mm)
    if width is None:
        return _one_window(kernel_size, iterations, spatial_dims)
    if spacing is None:
        raise ValueError(
            f"{owner}: contour_width_mm={contour_width_mm!r} needs the voxel spacing, but the label carries no "
            "affine (numpy array or plain torch tensor) and no `spacing` argument was given; pass "
            "spacing=(mm per voxel, one per spatial axis) or a MetaTensor label (e.g. from LoadImaged)."
        )
    sp = check_spacing(spacing)
    if len(sp) not in (1, spatial_dims):
        raise ValueError(f"{owner}: spacing {spacing!r} must have 1 or {spatial_dims} values (one per spatial axis).")

    def window(w: tuple[float, ...], where: str) -> Window:
        if len(w) not in (1, spatial_dims):
            raise ValueError(
                f"{owner}: {where}={w} must have 1 or {spatial_dims} values (one per spatial axis)."
            )
        r = contour_radius(w * spatial_dims if len(w) == 1 else w, sp * spatial_dims if len(sp) == 1 else sp)
        return tuple((ra, ra) for ra in r)

    if isinstance(width, dict):
        return {c: window(w, f"contour_width_mm[{c}]") for c, w in width.items()}
    return window(width, "contour_width_mm")


def window_extreme(
    x: torch.Tensor, dims: Sequence[int], before: int | Sequence[int], after: int | Sequence[int], mode: str
) -> torch.Tensor:
    """Running minimum or maximum of ``x`` over the window ``[i - before, i + after]`` along each of
    ``dims`` in turn (a separable box filter). Voxels outside the tensor are ignored, which is the
    same as replicating the edge value.

    Args:
        x: tensor of any shape and a dtype that ``torch.maximum`` supports.
        dims: the axes to filter.
        before: window extent towards lower indices, one number or one per axis of ``dims``.
        after: window extent towards higher indices, one number or one per axis of ``dims``.
        mode: ``"min"`` or ``"max"``.

    Returns:
        a new tensor of the shape and dtype of ``x``.
    """
    if mode not in ("min", "max"):
        raise ValueError(f"mode must be 'min' or 'max', got {mode!r}.")
    out, _ = _window_extreme_(x, None, dims, before, after, mode, x_is_scratch=False)
    return out if out is not x else x.clone()


def _window_extreme_(
    x: torch.Tensor,
    work: torch.Tensor | None,
    dims: Sequence[int],
    before: int | Sequence[int],
    after: int | Sequence[int],
    mode: str,
    x_is_scratch: bool = True,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """:func:`window_extreme` with two rotating buffers: returns ``(result, spare)``, where ``result``
    and ``spare`` are ``x`` and ``work`` in some order (``work`` is allocated when None and needed;
    with ``x_is_scratch=False`` ``x`` is never written and the buffers are new tensors).

    Each axis writes ``extreme(src, src shifted by the first offset)`` into the other buffer (the
    edge slab the shift leaves out is copied), then clamps it against the remaining shifts: one pass
    per offset and no copy of the whole tensor, no allocation once the two buffers exist (fresh
    multi-megabyte buffers and full copies cost more than the filter itself on CPU).
    """
    # clamp against shifted views of the *other* buffer: max(dst, val) for "max", min(dst, val) for
    # "min" (``torch.maximum(dst, val, out=dst)`` on an aliased view corrupts the heap in torch 2.13).
    befores = [int(before)] * len(dims) if isinstance(before, int) else [int(b) for b in before]
    afters = [int(after)] * len(dims) if isinstance(after, int) else [int(a) for a in after]
    extreme = torch.maximum if mode == "max" else torch.minimum
    src, spare, spare_is_x = x, work, False
    for dim, bef, aft in zip(dims, befores, afters):
        n = src.shape[dim]
        offsets = [o for o in range(-bef, aft + 1) if o != 0 and abs(o) < n]
        if not offsets:
            continue
        if spare is None or (spare_is_x and not x_is_scratch):
            spare = torch.empty_like(src)
        dst = spare
        first = offsets[0]
        if first > 0:
            dst.narrow(dim, n - first, first).copy_(src.narrow(dim, n - first, first))
            extreme(src.narrow(dim, 0, n - first), src.narrow(dim, first, n - first), out=dst.narrow(dim, 0, n - first))
        else:
            dst.narrow(dim, 0, -first).copy_(src.narrow(dim, 0, -first))
            extreme(src.narrow(dim, -first, n + first), src.narrow(dim, 0, n + first), out=dst.narrow(dim, -first, n + first))
        for offset in offsets[1:]:
            if offset > 0:
                d, val = dst.narrow(dim, 0, n - offset), src.narrow(dim, offset, n - offset)
            else:
                d, val = dst.narrow(dim, -offset, n + offset), src.narrow(dim, 0, n + offset)
            if mode == "max":
                d.clamp_(min=val)
            else:
                d.clamp_(max=val)
        spare_is_x = src is x
        src, spare = dst, src
    if spare_is_x and not x_is_scratch:
        spare = None
    return src, spare


def _border_slabs(
    shape: Sequence[int], dims: Sequence[int], before: int | Sequence[int], after: int | Sequence[int]
) -> list[tuple[int, int, int]]:
    """``(dim, start, length)`` of the slabs of voxels whose erosion window leaves the tensor (the
    first ``before`` and last ``after`` indices of each axis of ``dims``; they may overlap).
    ``before``/``after``: one number or one per axis of ``dims``. Working on these slabs instead of a
    full-size band mask keeps the border rule at a few percent of one pass over the volume."""
    befores = [int(before)] * len(dims) if isinstance(before, int) else [int(b) for b in before]
    afters = [int(after)] * len(dims) if isinstance(after, int) else [int(a) for a in after]
    slabs = []
    for dim, bef, aft in zip(dims, befores, afters):
        n = shape[dim]
        if bef > 0:
            slabs.append((dim, 0, min(bef, n)))
        if aft > 0:
            slabs.append((dim, max(n - aft, 0), min(aft, n)))
    return slabs


def compact_labels(label: torch.Tensor) -> torch.Tensor:
    """The label map in the narrowest integer dtype that holds its values (uint8 for up to 256
    classes), so the window filters move as few bytes as possible. Values must be integral."""
    if label.dtype in (torch.uint8, torch.int16, torch.int32, torch.int64):
        if label.dtype != torch.uint8 and label.numel() and int(label.min()) >= 0 and int(label.max()) < 256:
            return label.to(torch.uint8)
        return label
    if label.dtype == torch.bool:
        return label.to(torch.uint8)
    if label.numel() == 0:
        return label.to(torch.uint8)
    lo, hi = int(label.min()), int(label.max())
    if lo >= 0 and hi < 256:
        return label.to(torch.uint8)
    if -(2**15) <= lo and hi < 2**15:
        return label.to(torch.int16)
    return label.to(torch.int64)


def _spacing_rows(spacing, batch: int | None) -> list | None:
    """One spacing per sample when ``spacing`` is a per-sample list (batched ``MetaTensor``) whose rows
    differ, else None (one spacing serves the whole tensor)."""
    if spacing is None or isinstance(spacing, (int, float)):
        return None
    rows = spacing.tolist() if isinstance(spacing, (torch.Tensor, np.ndarray)) else spacing
    if not isinstance(rows, Sequence) or not rows or not isinstance(rows[0], (Sequence, torch.Tensor, np.ndarray)):
        return None
    rows = [tuple(float(v) for v in (r.tolist() if hasattr(r, "tolist") else r)) for r in rows]
    if batch is None or len(rows) != batch:
        raise ValueError(f"spacing holds {len(rows)} per-sample rows but the batch has {batch} samples.")
    return rows


def _common_spacing(spacing):
    """``spacing`` with a per-sample list of identical rows reduced to one row."""
    if spacing is None or isinstance(spacing, (int, float)):
        return spacing
    rows = spacing.tolist() if isinstance(spacing, (torch.Tensor, np.ndarray)) else spacing
    if isinstance(rows, Sequence) and rows and isinstance(rows[0], (Sequence, torch.Tensor, np.ndarray)):
        return tuple(float(v) for v in (rows[0].tolist() if hasattr(rows[0], "tolist") else rows[0]))
    return spacing


def _per_sample(fn, x: torch.Tensor, spatial_dims: int, contour_width_mm, spacing, **kwargs) -> torch.Tensor | None:
    """Run ``fn`` sample by sample when a batch carries different spacings (None otherwise)."""
    if contour_width_mm is None or x.ndim <= spatial_dims + 1:
        return None
    rows = _spacing_rows(spacing, x.shape[0])
    if rows is None or all(r == rows[0] for r in rows):
        return None
    return torch.stack(
        [fn(x[i], spatial_dims, contour_width_mm=contour_width_mm, spacing=rows[i], **kwargs) for i in range(x.shape[0])]
    )


def _window_contour(lab: torch.Tensor, dims: list[int], window: Window, edge_is_contour: bool) -> torch.Tensor:
    """Own-class contour of a compact label map for one window shared by every class."""
    before, after = [b for b, _ in window], [a for _, a in window]
    if not any(before) and not any(after):  # kernel_size == 1 / zero width: erosion is the identity
        return torch.zeros(lab.shape, dtype=torch.bool, device=lab.device)
    contour = window_extreme(lab, dims, before, after, "max") != window_extreme(lab, dims, before, after, "min")
    if edge_is_contour:
        for dim, start, length in _border_slabs(lab.shape, dims, before, after):
            contour.narrow(dim, start, length).fill_(True)
    return contour


def _contains(big: Window, small: Window) -> bool:
    return all(bb >= sb and ba >= sa for (bb, ba), (sb, sa) in zip(big, small))


def _window_chains(windows: Sequence[Window]) -> list[list[Window]]:
    """Group distinct non-empty windows into chains of nested windows (each contains the previous),
    smallest first; windows from one width per class on one grid are always nested: one chain."""
    chains: list[list[Window]] = []
    for w in sorted(set(windows), key=lambda w: (sum(b + a for b, a in w), w)):
        if not any(b or a for b, a in w):
            continue
        for chain in chains:
            if _contains(w, chain[-1]):
                chain.append(w)
                break
        else:
            chains.append([w])
    return chains


def _level_pair_table(levels: Mapping[int, int], default: int = 0) -> np.ndarray:
    """65536-entry uint16 table: two uint8 class indices read as one uint16 -> their two levels (same
    byte order), ``default`` for classes without a level. Read-only; cached, since a transform makes
    the same table for every label."""
    return _pair_table(tuple(sorted((int(c), int(v)) for c, v in levels.items())), int(default))


@functools.lru_cache(maxsize=32)
def _pair_table(levels: tuple[tuple[int, int], ...], default: int) -> np.ndarray:
    table = np.full(256, default, dtype=np.uint16)
    for c, v in levels:
        table[c] = v
    idx = np.arange(65536)
    low, high = (idx & 255, idx >> 8) if sys.byteorder == "little" else (idx >> 8, idx & 255)
    pairs = table[low] | (table[high] << 8)
    pairs.flags.writeable = False
    return pairs


def _class_levels(lab: torch.Tensor, levels: Mapping[int, int], out: torch.Tensor, hit: torch.Tensor) -> torch.Tensor:
    """``levels[lab]`` written into the uint8 tensor ``out`` (same shape as ``lab``), for a compact
    label map whose classes all have an entry; ``hit`` is a bool scratch tensor of that shape.

    On CPU with a contiguous uint8 map of even size this is one table lookup over pairs of voxels
    (``numpy.take`` with the map read as uint16 and a 65536-entry table of level pairs: one pass, a
    table that fits in cache, no index copy). Otherwise ``out`` starts at the most common level and
    every other class ``c`` adds ``(level - common) * (lab == c)`` (modulo 256): two passes per
    class, in place. The class is compared with a row filled with ``c`` broadcast over the map (a
    Python scalar, a 0-dim tensor, ``masked_fill_`` or ``where`` run up to 50x slower on uint8 in
    torch 2.13's CPU kernels, and a torch table lookup needs an int64 copy of the map); beyond 32
    such classes an int64 lookup is used."""
    values = list(levels.values())
    common = max(set(values), key=values.count)
    off = {c: v for c, v in levels.items() if v != common}
    if not off:
        return out.fill_(common)
    pairs = (
        len(off) > 2 and lab.device.type == "cpu" and lab.dtype == torch.uint8 and lab.is_contiguous()
        and out.is_contiguous() and lab.numel() % 2 == 0
    )
    if pairs:
        np.take(_level_pair_table(levels, common), lab.numpy().reshape(-1).view(np.uint16),
                out=out.numpy().reshape(-1).view(np.uint16), mode="wrap")
        return out
    if len(off) <= 32:
        out.fill_(common)
        row = torch.empty([1] * (lab.ndim - 1) + [lab.shape[-1]], dtype=lab.dtype, device=lab.device)
        for c, v in off.items():
            torch.eq(lab, row.fill_(c), out=hit)
            out.add_(hit.view(torch.uint8), alpha=(v - common) % 256)
        return out
    table = torch.zeros(max(levels) + 1, dtype=torch.uint8)
    for c, v in levels.items():
        table[c] = v
    out.copy_(table.to(lab.device)[lab.long()])
    return out


def _erosion_base(w: Window, nxt: Window, last: Window) -> Window | None:
    """The window B from which the rest of a chain (``nxt`` ... ``last``, each containing ``w``) can be
    grown by boolean erosion: ``w`` widened to one voxel of extent (towards ``nxt``) on each axis where
    ``w`` has none and the chain still grows; None when such an axis does not grow at ``nxt`` yet."""
    base = []
    for (b, a), (nb, na), lw in zip(w, nxt, last):
        if b + a >= 1 or (b, a) == lw:
            base.append((b, a))
        elif nb >= 1:
            base.append((1, 0))
        elif na >= 1:
            base.append((0, 1))
        else:
            return None
    return tuple(base)


class _RowBits:
    """Boolean maps of one label's shape, packed eight voxels to a byte along the last axis (voxel
    ``x`` of a row is bit ``x % 8`` of byte ``x // 8``), with ``guard`` zero bytes closing every row.

    The guard lets a shift along the rows run over the whole flat buffer in a few contiguous passes:
    a shift by up to ``8 * guard - 1`` voxels only ever moves bits between a row and its own guard,
    and :meth:`clean` zeroes the guard (and the unused bits of the last byte) afterwards. On CPU the
    packing is numpy's ``packbits``/``unpackbits``; on other devices the same layout is built with
    torch, so the algorithm and its results do not depend on the device."""

    def __init__(self, shape: Sequence[int], dims: Sequence[int], max_shift: int, device, use_numpy: bool | None = None):
        self.shape, self.dims, self.device = tuple(shape), list(dims), device
        self.use_numpy = device.type == "cpu" if use_numpy is None else use_numpy
        self.n = self.shape[-1]
        self.nb = (self.n + 7) // 8
        self.guard = max_shift // 8 + 1
        self.row = self.nb + self.guard
        self.pshape = self.shape[:-1] + (self.row,)
        self.last_bits = self.n - 8 * (self.nb - 1)  # voxels in the last byte of a row (1-8)
        self.tmp = self.new()

    def new(self) -> torch.Tensor:
        return torch.empty(self.pshape, dtype=torch.uint8, device=self.device)

    def pack(self, wide: torch.Tensor) -> torch.Tensor:
        """bool ``(..., 8 * k)`` -> uint8 ``(..., k)``, e.g. a map padded with False to whole packed rows."""
        if self.use_numpy:  # whole bytes per row: the flat packing (2-3x faster than along an axis) is the same
            flat = np.packbits(np.ascontiguousarray(wide.numpy()).reshape(-1), bitorder="little")
            return torch.from_numpy(flat.reshape(tuple(wide.shape[:-1]) + (wide.shape[-1] // 8,)))
        bits = wide.to(torch.uint8).view(*wide.shape[:-1], wide.shape[-1] // 8, 8)
        weights = torch.tensor([1 << i for i in range(8)], dtype=torch.uint8, device=self.device)
        return (bits * weights).sum(-1, dtype=torch.uint8)

    def unpack(self, p: torch.Tensor) -> torch.Tensor:
        """Packed -> uint8 0/1 of ``shape``."""
        if self.use_numpy:
            return torch.from_numpy(np.unpackbits(p.numpy(), axis=-1, count=self.n, bitorder="little"))
        shifts = torch.arange(8, dtype=torch.uint8, device=self.device)
        return ((p.unsqueeze(-1) >> shifts) & 1).flatten(-2).narrow(-1, 0, self.n).contiguous()

    def clean(self, p: torch.Tensor) -> None:
        """Zero every bit past the last voxel of each row."""
        if self.last_bits < 8:
            p.narrow(-1, self.nb - 1, 1).bitwise_and_((1 << self.last_bits) - 1)
        p.narrow(-1, self.nb, self.guard).zero_()

    def _or_row_shift(self, dst: torch.Tensor, src: torch.Tensor, o: int, union: bool = False) -> None:
        """``dst[..., x] |= src[..., x + o]`` along the rows, over the flat buffers (then :meth:`clean`);
        with ``union``, ``dst = src | src[..., x + o]`` (no separate copy of ``src``)."""
        q, r = divmod(abs(o), 8)
        d, t, s = dst.view(-1), self.tmp.view(-1), src.view(-1)
        m = d.numel() - q
        if self.use_numpy:  # on CPU: numpy's uint8 right shift and a multiplication by 2^s (a left shift
            # modulo 256; numpy's own uint8 left shift is 10x slower) beat torch 2.13's shifts by 1.4-1.9x
            f, tn = s.numpy(), t.numpy()
            right = np.right_shift

            def left(a, k, out):
                return np.multiply(a, np.uint8(1 << k), out=out)
        else:
            f, tn, right, left = s, t, torch.bitwise_right_shift, torch.bitwise_left_shift
        # o > 0: dst[i] gets src[i + q] (the low bits) and src[i + q + 1] (the high bits); o < 0: dst[i + q]
        # gets src[i] and dst[i + q + 1] gets src[i]
        near, rest = (d[:m], d[m:]) if o > 0 else (d[q:], d[:q])
        if r == 0:
            shifted = s[q:] if o > 0 else s[:m]
        else:
            (right if o > 0 else left)(f[q:] if o > 0 else f[:m], r, out=tn[:m])
            shifted = t[:m]
        if union:
            torch.bitwise_or(s[:m] if o > 0 else s[q:], shifted, out=near)
            rest.copy_(s[m:] if o > 0 else s[:q])
        else:
            near.bitwise_or_(shifted)
        if r:
            (left if o > 0 else right)(f[q + 1 :] if o > 0 else f[: m - 1], 8 - r, out=tn[: m - 1])
            (d[: m - 1] if o > 0 else d[q + 1 :]).bitwise_or_(t[: m - 1])

    def dilate(
        self, src: torch.Tensor, spare: torch.Tensor | None, lows: Sequence[int], highs: Sequence[int]
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """OR of ``src`` over the offsets ``[lows[k], highs[k]]`` along ``dims[k]`` in turn (a separable
        box; an interval need not contain 0). Returns ``(result, spare)``: the two buffers rotate, so
        ``src`` is overwritten when more than one axis is dilated."""
        last = len(self.shape) - 1
        for dim, lo, hi in zip(self.dims, lows, highs):
            n = self.shape[dim]
            offsets = [o for o in range(lo, hi + 1) if o and abs(o) < n]
            if lo <= 0 <= hi and not offsets:
                continue
            if spare is None:
                spare = self.new()
            if lo <= 0 <= hi and dim != last:  # src | (the first shift) in one pass, the slab it leaves out copied
                o, offsets = offsets[0], offsets[1:]
                a, b = (0, o) if o > 0 else (-o, 0)
                torch.bitwise_or(src.narrow(dim, a, n - abs(o)), src.narrow(dim, b, n - abs(o)), out=spare.narrow(dim, a, n - abs(o)))
                edge = n - o if o > 0 else 0
                spare.narrow(dim, edge, abs(o)).copy_(src.narrow(dim, edge, abs(o)))
            elif lo <= 0 <= hi:  # src | (the first shift along the rows) in one pass
                self._or_row_shift(spare, src, offsets[0], union=True)
                offsets = offsets[1:]
            else:
                spare.zero_()
            for o in offsets:
                if dim == last:
                    self._or_row_shift(spare, src, o)
                elif o > 0:
                    spare.narrow(dim, 0, n - o).bitwise_or_(src.narrow(dim, o, n - o))
                else:
                    spare.narrow(dim, -o, n + o).bitwise_or_(src.narrow(dim, 0, n + o))
            if dim == last:
                self.clean(spare)
            src, spare = spare, src
        return src, spare

    def set_border(self, p: torch.Tensor, window: Window) -> None:
        """Set the voxels whose window leaves the tensor (the edge rule)."""
        last = len(self.shape) - 1
        for dim, (b, a) in zip(self.dims, window):
            n = self.shape[dim]
            for start, stop in ((0, min(b, n)), (max(n - a, 0), n if a > 0 else 0)):
                if stop <= start:
                    continue
                if dim == last:
                    self._set_columns(p, start, stop)
                else:
                    self._set_columns(p.narrow(dim, start, stop - start), 0, self.n)

    def _set_columns(self, p: torch.Tensor, start: int, stop: int) -> None:
        first, last = start // 8, (stop - 1) // 8
        for byte in (first, last) if last > first else (first,):
            lo, hi = max(start, 8 * byte) - 8 * byte, min(stop, 8 * byte + 8) - 8 * byte
            p.narrow(-1, byte, 1).bitwise_or_(((1 << hi) - 1) & ~((1 << lo) - 1))
        if last - first > 1:
            p.narrow(-1, first + 1, last - first - 1).fill_(255)


def _per_class_contour(
    lab: torch.Tensor,
    dims: list[int],
    windows: Mapping[int, Window],
    edge_is_contour: bool,
    use_numpy: bool | None = None,
) -> torch.Tensor:
    """Own-class contour with one window per class: a voxel of class ``c`` is marked when the window
    of ``c`` around it is not constant (``C_c = G_c - erode(G_c, window_c)`` for every class at once).

    One sweep per chain of nested windows (:func:`_window_chains`) on bit-packed maps
    (:class:`_RowBits`, eight voxels to a byte):

    - the label is read three times, once per axis ``a``, for the map ``D_a`` of neighbours that differ
      along ``a`` (``lab[v] != lab[v + e_a]``). A window ``W`` is not constant around ``v`` exactly when
      some such pair lies inside it, so its "varies" map is the OR over the axes of ``D_a`` dilated by
      ``W`` (shortened by one voxel along ``a``); this serves the first windows of the chain;
    - from the first window ``B`` (:func:`_erosion_base`) with one voxel of extent on every axis along
      which the chain still grows, the "varies" map of ``W = B + D`` is the map of ``B`` dilated by
      ``D`` (overlapping constant windows share their label): one boolean dilation per window;
    - a voxel whose class has the chain's ``k``-th window is contour exactly when that window varies
      around it: each window's map is ANDed with the packed mask ``M_k`` of those voxels
      (:func:`_packed_rank_masks`) and ORed into the contour.

    ``use_numpy`` picks numpy's bit packing (default on CPU) or torch's (any device; tests use it to
    check that both give the same map).
    """
    if lab.numel() == 0:
        return torch.zeros(lab.shape, dtype=torch.bool, device=lab.device)
    if lab.dtype == torch.uint8:
        lo, hi = 0, int(lab.max())
    else:
        lo, hi = (int(v) for v in torch.aminmax(lab))
    if lo < 0:
        raise ValueError(f"per-class contour widths need class indices >= 0, got {lo}.")
    missing = [c for c in range(hi + 1) if c not in windows]
    if missing:
        present = torch.isin(lab, torch.tensor(missing, device=lab.device, dtype=lab.dtype))
        if bool(present.any()):
            bad = int(lab[present].flatten()[0])
            raise ValueError(
                f"contour_width_mm gives widths for classes {sorted(windows)} but the label holds class {bad}; "
                "give one width per class."
            )
    windows = {c: w for c, w in windows.items() if c <= hi}
    chains = _window_chains(list(windows.values()))
    if len(chains) == 1 and len(chains[0]) == 1 and all(w == chains[0][0] for w in windows.values()):
        return _window_contour(lab, dims, chains[0][0], edge_is_contour)
    if not chains:  # every class has a zero width
        return torch.zeros(lab.shape, dtype=torch.bool, device=lab.device)
    bits = _RowBits(lab.shape, dims, max(max(w[-1]) for w in windows.values()), lab.device, use_numpy)
    # the neighbour-difference map of each axis, packed (a bool buffer padded to whole packed rows)
    wide = torch.zeros(lab.shape[:-1] + (8 * bits.row,), dtype=torch.bool, device=lab.device)
    scratch = wide.narrow(-1, 0, bits.n)
    differs: dict[int, torch.Tensor] = {}
    for d in dims:
        n = lab.shape[d]
        if n > 1:
            torch.ne(lab.narrow(d, 1, n - 1), lab.narrow(d, 0, n - 1), out=scratch.narrow(d, 0, n - 1))
            scratch.narrow(d, n - 1, 1).fill_(False)
            differs[d] = bits.pack(wide)
    last = dims[-1]
    # bytes that a class boundary crosses (a differing pair inside the byte: bits 0-6 of the x map)
    mixed = (
        differs[last].narrow(-1, 0, bits.nb) & 0x7F if last in differs
        else torch.zeros(bits.pshape[:-1] + (bits.nb,), dtype=torch.uint8, device=lab.device)
    ).bool()
    contour: torch.Tensor | None = None
    tmp = bits.new()
    for chain in chains:
        # M_k: the voxels whose class has the chain's k-th window (packed)
        rank = {w: k for k, w in enumerate(chain)}
        masks = _packed_rank_masks(lab, {c: rank.get(w, len(chain)) for c, w in windows.items()}, len(chain), mixed, bits)
        grown: dict[int, tuple[torch.Tensor, torch.Tensor | None, list[tuple[int, int]]]] = {}
        level = bits.new()

        def mark(varies: torch.Tensor, k: int) -> None:
            """contour |= varies & M_k: the voxels of the classes with window k whose window varies."""
            nonlocal contour
            if contour is None:
                contour = torch.bitwise_and(varies, masks[k])
            else:
                torch.bitwise_and(varies, masks[k], out=tmp)
                contour.bitwise_or_(tmp)

        def pair_level(w: Window) -> None:
            """``level`` = the "varies" map of ``w`` from the neighbour-difference maps."""
            first = True
            for d, diff in differs.items():
                k = dims.index(d)
                if w[k][0] + w[k][1] < 1:
                    continue
                box = [(-b, a - 1) if dd == d else (-b, a) for dd, (b, a) in zip(dims, w)]
                if d not in grown:
                    # the map is dilated in place (kept for the next chain when there is one)
                    m, spare = bits.dilate(diff.clone() if len(chains) > 1 else diff, None, [b for b, _ in box], [a for _, a in box])
                else:
                    m, spare, old = grown[d]
                    m, spare = bits.dilate(
                        m, spare, [b - ob for (b, _), (ob, _) in zip(box, old)], [a - oa for (_, a), (_, oa) in zip(box, old)]
                    )
                grown[d] = (m, spare, box)
                if first:
                    level.copy_(m)
                    first = False
                else:
                    level.bitwise_or_(m)
            if first:
                level.zero_()
            if edge_is_contour:
                bits.set_border(level, w)

        prev, k, base = None, 0, None
        while base is None:
            w = chain[k]
            pair_level(w)
            mark(level, k)
            prev, k = w, k + 1
            if k == len(chain):
                break
            base = _erosion_base(w, chain[k], chain[-1])
            if base is not None and base != w:  # one more step to B (not a window of the chain)
                pair_level(base)
                prev = base
        varies, spare = level, None
        for j in range(k, len(chain)):
            w = chain[j]
            varies, spare = bits.dilate(
                varies, spare, [pb - b for (b, _), (pb, _) in zip(w, prev)], [a - pa for (_, a), (_, pa) in zip(w, prev)]
            )
            if edge_is_contour:
                bits.set_border(varies, w)
            mark(varies, j)
            prev = w
    return bits.unpack(contour).view(torch.bool)


def _packed_rank_masks(
    lab: torch.Tensor, ranks: Mapping[int, int], n: int, mixed: torch.Tensor, bits: _RowBits
) -> list[torch.Tensor]:
    """Packed masks (laid out like ``bits``) ``M_k``, ``k < n``, of the voxels whose class ``c`` has
    ``ranks[c] == k``; ``ranks`` covers every class of ``lab`` (a rank of ``n`` or more: in no mask).
    A byte whose eight voxels hold one class (``mixed`` False) takes its first voxel's rank, so one
    lookup serves eight voxels; only the voxels of the bytes that a class boundary crosses are looked
    up one by one."""
    # numpy on a little-endian CPU, uint8 classes, rows of whole voxel pairs; else the torch path
    fast = bits.use_numpy and lab.dtype == torch.uint8 and bits.n % 2 == 0 and sys.byteorder == "little"
    masks = [torch.zeros(bits.pshape, dtype=torch.uint8, device=lab.device) for _ in range(n)]
    if fast:
        table = _level_pair_table(ranks, default=n)  # two voxels (a uint16) -> their two ranks
        flat_lab = np.ascontiguousarray(lab.numpy()).reshape(-1)
        if bits.n % 8 == 0:  # the first voxel of every byte is the low byte of every fourth voxel pair
            first = np.take(table.view(np.uint8)[::2], flat_lab.view(np.uint16)[::4], mode="wrap")
        else:
            first = np.take(table.view(np.uint8)[:512:2], lab.numpy()[..., ::8], mode="wrap")  # [c] -> rank of c
        first = first.reshape(bits.pshape[:-1] + (bits.nb,))
        for k, mask in enumerate(masks):
            np.multiply(first == k, np.uint8(255), out=mask.numpy()[..., : bits.nb])  # every bit of the byte
        where = np.flatnonzero(mixed.numpy().reshape(-1))
        if not where.size:
            return masks
        row = where // bits.nb
        if bits.n % 8 == 0:  # the byte's eight voxels are one aligned uint64 of the label: four pairs
            pairs = flat_lab.view(np.uint64)[where].view(np.uint16)
        else:  # its four voxel pairs one by one (pairs never straddle rows; past the row's end the last
            # pair repeats, its bits are never read)
            half = bits.n // 2
            pair_index = (row * half + 4 * (where - row * bits.nb))[:, None] + np.arange(4)
            np.minimum(pair_index, (row * half + half - 1)[:, None], out=pair_index)
            pairs = flat_lab.view(np.uint16)[pair_index]
        voxel_ranks = np.take(table, pairs, mode="wrap").view(np.uint8).reshape(-1, 8)  # (M, 8)
        flat = where + row * bits.guard  # the byte in the packed layout (rows of nb + guard bytes)
        # the eight 0/1 bytes of a voxel group read as one little-endian uint64 are packed into one byte by
        # one multiplication: byte k (bit 8k) lands on bit 56 + k, no two partial products collide
        for k, mask in enumerate(masks):
            words = (voxel_ranks == k).view(np.uint64).reshape(-1)
            mask.numpy().reshape(-1)[flat] = ((words * np.uint64(0x0102040810204080)) >> np.uint64(56)).astype(np.uint8)
        return masks
    first = lab[..., ::8].contiguous()  # the first voxel of every byte: (..., nb)
    first_rank = _class_levels(first, ranks, torch.empty(first.shape, dtype=torch.uint8, device=lab.device),
                               torch.empty(first.shape, dtype=torch.bool, device=lab.device))
    for k, mask in enumerate(masks):
        mask.narrow(-1, 0, bits.nb).copy_(first_rank == k).neg_()  # 1 -> 255: every bit of the byte
    where = mixed.reshape(-1).nonzero().squeeze(1)
    if where.numel():
        row, byte = where // bits.nb, where % bits.nb
        x = (8 * byte).unsqueeze(1) + torch.arange(8, device=lab.device)
        x.clamp_(max=bits.n - 1)  # the bits past the row's end repeat its last voxel (never read)
        values = torch.take(lab if lab.is_contiguous() else lab.contiguous(), x.add_((row * bits.n).unsqueeze(1)))
        voxel_ranks = _class_levels(values, ranks, torch.empty(values.shape, dtype=torch.uint8, device=lab.device),
                                    torch.empty(values.shape, dtype=torch.bool, device=lab.device))
        weights = torch.tensor([1 << j for j in range(8)], dtype=torch.uint8, device=lab.device)
        flat = row * bits.row + byte
        for k, mask in enumerate(masks):
            mask.view(-1)[flat] = ((voxel_ranks == k) * weights).sum(1, dtype=torch.uint8)
    return masks


def label_contour(
    label: torch.Tensor,
    spatial_dims: int,
    kernel_size: int = 3,
    iterations: int = 1,
    edge_is_contour: bool = False,
    contour_width_mm: float | Sequence[float] | Mapping[int, float | Sequence[float]] | None = None,
    spacing: float | Sequence[float] | None = None,
) -> torch.Tensor:
    """Own-class contour of a class-index label map, in one pass over the map.

    A voxel is marked when it lies on the contour ``C_c = G_c - erode(G_c)`` of its own class ``c``;
    this is the union of the contours of all classes (background included).

    With ``contour_width_mm`` the erosion window comes from the width in millimetres and the voxel
    ``spacing`` (:func:`contour_radius`: ``r_a = floor(w_a / s_a + 1/2)`` voxels on axis ``a``,
    window ``[-r_a, r_a]``) instead of ``kernel_size``/``iterations``. A mapping ``{class: width}``
    gives every class its own window: the voxels of class ``c`` are eroded with the window of ``c``
    (its contour ``C_c`` has the thickness of ``c``; the other side of the boundary has the thickness
    of the class found there). Nested windows (always the case for one width per class on one grid)
    are still done in one sweep: the filters grow from the smallest window to the largest.

    Args:
        label: class-index map with ``spatial_dims`` trailing spatial axes, e.g. ``(1, H, W, D)`` or
            ``(B, 1, H, W, D)``; integral values.
        spatial_dims: number of trailing axes that are spatial.
        kernel_size: side of the erosion box. Defaults to 3.
        iterations: number of erosions. Defaults to 1.
        edge_is_contour: if True, the outside of the tensor counts as background for every class
            (scipy's default ``border_value=0``), so the voxels along the edge are contour;
            if False the edge is not a boundary. Defaults to False.
        contour_width_mm: contour thickness in mm, a number, one per spatial axis, or a mapping
            ``{class index: number or per-axis}`` (every class in ``label`` needs an entry); replaces
            ``kernel_size``/``iterations``. Defaults to None.
        spacing: voxel spacing in mm, a number or one per spatial axis; for a batch, a list with one
            row per sample (as :func:`image_spacing` gives for a batched ``MetaTensor``). Needed with
            ``contour_width_mm``. Defaults to None.

    Returns:
        bool tensor of the shape of ``label``.

    Raises:
        ValueError: invalid window settings; ``contour_width_mm`` without ``spacing``; a class of
            ``label`` without a per-class width.
    """
    split = _per_sample(
        label_contour, label, spatial_dims, contour_width_mm, spacing,
        kernel_size=kernel_size, iterations=iterations, edge_is_contour=edge_is_contour,
    )
    if split is not None:
        return split
    windows = contour_windows(
        spatial_dims, kernel_size, iterations, contour_width_mm, _common_spacing(spacing), owner="label_contour"
    )
    dims = list(range(label.ndim - spatial_dims, label.ndim))
    lab = compact_labels(label)
    if isinstance(windows, dict):
        return _per_class_contour(lab, dims, windows, edge_is_contour)
    return _window_contour(lab, dims, windows, edge_is_contour)


def binary_contour(
    mask: torch.Tensor,
    spatial_dims: int,
    kernel_size: int = 3,
    iterations: int = 1,
    edge_is_contour: bool = False,
    contour_width_mm: float | Sequence[float] | Mapping[int, float | Sequence[float]] | None = None,
    spacing: float | Sequence[float] | None = None,
) -> torch.Tensor:
    """Contour ``G - erode(G)`` of each channel of a binary (or multi-label) mask.

    Args:
        mask: binary mask, nonzero (or > 0.5 for floating dtypes) means foreground; any leading
            axes are independent channels, the last ``spatial_dims`` axes are spatial.
        spatial_dims: number of trailing axes that are spatial.
        kernel_size: side of the erosion box. Defaults to 3.
        iterations: number of erosions. Defaults to 1.
        edge_is_contour: if True the outside of the tensor is background (scipy's default border),
            otherwise the edge is not a boundary. Defaults to False.
        contour_width_mm: contour thickness in mm (see :func:`label_contour`); a mapping is keyed by
            the channel index (axis ``-spatial_dims - 1``), one entry per channel. Defaults to None.
        spacing: voxel spacing in mm, a number, one per spatial axis, or one row per sample of a
            batch. Needed with ``contour_width_mm``. Defaults to None.

    Returns:
        bool tensor of the shape of ``mask``.

    Raises:
        ValueError: invalid window settings; ``contour_width_mm`` without ``spacing``; a channel
            without a per-channel width.
    """
    split = _per_sample(
        binary_contour, mask, spatial_dims, contour_width_mm, spacing,
        kernel_size=kernel_size, iterations=iterations, edge_is_contour=edge_is_contour,
    )
    if split is not None:
        return split
    windows = contour_windows(
        spatial_dims, kernel_size, iterations, contour_width_mm, _common_spacing(spacing), owner="binary_contour"
    )
    fg = mask > 0.5 if mask.is_floating_point() else mask != 0
    dims = list(range(mask.ndim - spatial_dims, mask.ndim))

    def one(sub: torch.Tensor, window: Window) -> torch.Tensor:
        before, after = [b for b, _ in window], [a for _, a in window]
        if not any(before) and not any(after):
            return torch.zeros(sub.shape, dtype=torch.bool, device=sub.device)
        eroded = window_extreme(sub.to(torch.uint8), dims, before, after, "min").bool()
        out = sub & ~eroded
        if edge_is_contour:
            for dim, start, length in _border_slabs(sub.shape, dims, before, after):
                out.narrow(dim, start, length).copy_(sub.narrow(dim, start, length))
        return out

    if not isinstance(windows, dict):
        return one(fg, windows)
    if mask.ndim < spatial_dims + 1:
        raise ValueError(f"per-channel contour widths need a channel axis, got mask shape {tuple(mask.shape)}.")
    ch_axis = mask.ndim - spatial_dims - 1
    n_ch = mask.shape[ch_axis]
    missing = [c for c in range(n_ch) if c not in windows]
    if missing:
        raise ValueError(
            f"contour_width_mm gives widths for channels {sorted(windows)} but the mask of shape "
            f"{tuple(mask.shape)} has channel {missing[0]} too; give one width per channel."
        )
    contour = torch.zeros(fg.shape, dtype=torch.bool, device=fg.device)
    groups: dict[Window, list[int]] = {}
    for c in range(n_ch):
        groups.setdefault(windows[c], []).append(c)
    for window, chans in groups.items():
        idx = torch.tensor(chans, device=fg.device)
        contour.index_copy_(ch_axis, idx, one(fg.index_select(ch_axis, idx), window))
    return contour


def _foreground(mask: torch.Tensor) -> torch.Tensor:
    """Boolean foreground of a binary mask: nonzero, or > 0.5 for floating dtypes (as ``binary_contour``)."""
    return mask > 0.5 if mask.is_floating_point() else mask != 0


def _class_masks(label: torch.Tensor, spatial_dims: int, num_classes: int | None, multi_label: bool) -> torch.Tensor:
    """One boolean mask per class: ``(..., num_classes, *spatial)`` for a class-index map (one channel,
    ``multi_label=False``), the foreground of every channel otherwise."""
    if label.ndim < spatial_dims + 1:
        raise ValueError(
            f"expected a channel axis before the {spatial_dims} spatial axes, got shape {tuple(label.shape)}."
        )
    if label.shape[-spatial_dims - 1] != 1 or multi_label:
        return _foreground(label)
    if num_classes is None:
        num_classes = int(label.max()) + 1 if label.numel() else 1
    classes = torch.arange(num_classes, device=label.device).view(-1, *([1] * spatial_dims))
    return compact_labels(label) == classes


def _edt(mask: torch.Tensor, spatial_dims: int) -> torch.Tensor:
    """Euclidean distance of every voxel of ``mask`` to the nearest voxel outside it (0 outside), per
    channel, for any leading axes, as float32 on the device of ``mask``. Runs MONAI's
    ``distance_transform_edt`` (scipy on CPU, cuCIM on CUDA when installed)."""
    if spatial_dims not in (2, 3):
        raise ValueError(f"distance maps support 2 or 3 spatial dims, got spatial_dims={spatial_dims}.")
    spatial = mask.shape[mask.ndim - spatial_dims :]
    flat = mask.reshape(-1, *spatial)
    if flat.shape[0] == 0:
        return torch.zeros(mask.shape, dtype=torch.float32, device=mask.device)
    dist = distance_transform_edt(flat)
    return torch.as_tensor(dist, device=mask.device).to(torch.float32).reshape(mask.shape)


def rrw_map(
    label: torch.Tensor, spatial_dims: int, num_classes: int | None = None, multi_label: bool = False
) -> torch.Tensor:
    """Rectified region-wise (RRW) map of Valverde et al. (region-wise loss, paper ``004``).

    For every class ``c`` with mask ``G_c`` and ``d(x)`` the Euclidean distance (in voxels) of a voxel
    ``x`` of ``G_c`` to the nearest voxel outside ``G_c``::

        RRW_c(x) = -d(x) / max_{y in G_c} d(y)   if x in G_c,      RRW_c(x) = 1   otherwise.

    A class absent from a sample gives an all-ones channel; a class that fills the whole sample (no
    voxel outside it, so ``d`` is undefined) gives an all ``-1`` channel.

    Example:
        >>> rrw_map(torch.tensor([[[0, 1, 1, 1, 0]]]), spatial_dims=2)
        tensor([[[-1.0000,  1.0000,  1.0000,  1.0000, -1.0000]],
        <BLANKLINE>
                [[ 1.0000, -0.5000, -1.0000, -0.5000,  1.0000]]])

    Args:
        label: ``(..., 1, *spatial)`` class-index map, or ``(..., C, *spatial)`` binary masks (one-hot or
            multi-label; nonzero, or > 0.5 for floats, is foreground). Any leading axes (e.g. batch).
        spatial_dims: number of trailing spatial axes (2 or 3).
        num_classes: number of classes of a class-index map. Defaults to None (max label + 1).
        multi_label: treat a single-channel input as a binary mask instead of class indices.
            Defaults to False.

    Returns:
        float32 tensor ``(..., num_classes or C, *spatial)`` on the device of ``label``.
    """
    masks = _class_masks(label, spatial_dims, num_classes, multi_label)
    dist = _edt(masks, spatial_dims)
    sdims = tuple(range(masks.ndim - spatial_dims, masks.ndim))
    dmax = dist.amax(dim=sdims, keepdim=True)
    full = masks.all(dim=sdims, keepdim=True)
    inside = torch.where(full, torch.ones_like(dist), dist / dmax.clamp_min(1.0))
    return torch.where(masks, -inside, torch.ones_like(dist))


def distance_weight_map(
    label: torch.Tensor,
    spatial_dims: int,
    w0: float = 10.0,
    sigma: float = 5.0,
    multi_label: bool = False,
) -> torch.Tensor:
    """Boundary distance weight map for distance-weighted cross-entropy (DWCE)::

        w(x) = 1 + w0 * exp(-d(x)^2 / (2 * sigma^2)),

    with ``d(x)`` the Euclidean distance (in voxels) of ``x`` to the nearest contour voxel. The contour
    is the own-class contour of ``label_contour`` (kernel 3, one iteration, the patch edge is not a
    boundary), i.e. the voxels on both sides of every class boundary, so ``w = 1 + w0`` there and
    decays towards 1 away from it. For binary / multi-label input it is the union of the channels'
    contours. A sample without any boundary gets ``w = 1``. ``w0 = 10``, ``sigma = 5`` are the
    constants of Ronneberger et al.'s U-Net weight map (cited for DWCE by the conference paper).

    Example:
        >>> distance_weight_map(torch.tensor([[[0, 0, 1, 1, 1, 1]]]), spatial_dims=2, w0=1.0, sigma=1.0)
        tensor([[[1.6065, 2.0000, 2.0000, 1.6065, 1.1353, 1.0111]]])

    Args:
        label: ``(..., 1, *spatial)`` class-index map or ``(..., C, *spatial)`` binary masks; any
            leading axes (e.g. batch).
        spatial_dims: number of trailing spatial axes (2 or 3).
        w0: weight added at the boundary. Defaults to 10.0.
        sigma: decay length in voxels. Defaults to 5.0.
        multi_label: treat a single-channel input as a binary mask instead of class indices.
            Defaults to False.

    Returns:
        float32 tensor ``(..., 1, *spatial)`` on the device of ``label``.

    Raises:
        ValueError: ``w0 < 0`` or ``sigma <= 0``.
    """
    if not float(w0) >= 0:
        raise ValueError(f"w0 must be >= 0, got {w0}.")
    if not float(sigma) > 0:
        raise ValueError(f"sigma must be > 0, got {sigma}.")
    if label.ndim < spatial_dims + 1:
        raise ValueError(
            f"expected a channel axis before the {spatial_dims} spatial axes, got shape {tuple(label.shape)}."
        )
    if label.shape[-spatial_dims - 1] == 1 and not multi_label:
        contour = label_contour(label, spatial_dims, kernel_size=3, iterations=1)
    else:
        contour = binary_contour(label, spatial_dims, kernel_size=3, iterations=1)
        contour = contour.any(dim=-spatial_dims - 1, keepdim=True)
    dist = _edt(~contour, spatial_dims)
    sdims = tuple(range(contour.ndim - spatial_dims, contour.ndim))
    weight = 1.0 + float(w0) * torch.exp(-dist.square() / (2.0 * float(sigma) ** 2))
    # no contour voxel: scipy's distance is meaningless there, the boundary is infinitely far away
    return torch.where(contour.any(dim=sdims, keepdim=True), weight, torch.ones_like(weight))
