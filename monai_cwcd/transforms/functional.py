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
        table = np.full(256, common, dtype=np.uint16)
        for c, v in levels.items():
            table[c] = v
        idx = np.arange(65536)
        low, high = (idx & 255, idx >> 8) if sys.byteorder == "little" else (idx >> 8, idx & 255)
        pair_table = table[low] | (table[high] << 8)
        np.take(pair_table, lab.numpy().reshape(-1).view(np.uint16), out=out.numpy().reshape(-1).view(np.uint16))
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


def _per_class_contour(
    lab: torch.Tensor, dims: list[int], windows: Mapping[int, Window], edge_is_contour: bool
) -> torch.Tensor:
    """Own-class contour with one window per class: a voxel of class ``c`` is marked when the window
    of ``c`` around it is not constant (``C_c = G_c - erode(G_c, window_c)`` for every class at once).

    One sweep per chain of nested windows (:func:`_window_chains`): the running max/min filters grow
    from one window to the next (a box filter over ``W_k`` is the filter over ``W_{k-1}`` followed by
    the filter over the difference), ``J`` counts the windows that are constant around each voxel,
    and a voxel whose class has the ``L``-th window of the chain is contour exactly when ``J < L``.
    From the first window ``B`` (:func:`_erosion_base`) with one voxel of extent on every axis along
    which the chain still grows, the "constant" map of ``W = B + D`` is the boolean erosion by ``D``
    of the map of ``B``: one filter per window instead of two filters and a comparison.
    """
    if lab.numel() == 0:
        return torch.zeros(lab.shape, dtype=torch.bool, device=lab.device)
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
    contour = None
    work = torch.empty_like(lab)
    count = torch.empty(lab.shape, dtype=torch.uint8, device=lab.device)  # J
    const = torch.empty(lab.shape, dtype=torch.bool, device=lab.device)
    hi_f, lo_f = torch.empty_like(lab), torch.empty_like(lab)
    spare = None  # a uint8 buffer for the erosion phase when the labels are wider than uint8

    def clear_border(target: torch.Tensor, w: Window) -> None:
        if edge_is_contour:
            for dim, start, length in _border_slabs(lab.shape, dims, [b for b, _ in w], [a for _, a in w]):
                target.narrow(dim, start, length).fill_(False)

    def grow(prev: Window, w: Window) -> tuple[list[int], list[int]]:
        return [b - pb for (b, _), (pb, _) in zip(w, prev)], [a - pa for (_, a), (_, pa) in zip(w, prev)]

    for chain in chains:
        # label phase: running max/min of the labels, "constant" = (max == min), until a window B
        # reaches at least one voxel of extent along every axis on which the chain still grows
        hi_f.copy_(lab)
        lo_f.copy_(lab)
        prev = tuple((0, 0) for _ in dims)
        k, base = 0, None
        while base is None:
            w = chain[k]
            hi_f, work = _window_extreme_(hi_f, work, dims, *grow(prev, w), "max")
            lo_f, work = _window_extreme_(lo_f, work, dims, *grow(prev, w), "min")
            target = count.view(torch.bool) if k == 0 else const  # J starts as the first level's 0/1
            torch.eq(hi_f, lo_f, out=target)
            clear_border(target, w)
            if k > 0:
                count += const.view(torch.uint8)
            prev, k = w, k + 1
            if k == len(chain):
                break
            base = _erosion_base(w, chain[k], chain[-1])
            if base is not None and base != w:  # one more label step to B (not a level of the chain)
                hi_f, work = _window_extreme_(hi_f, work, dims, *grow(w, base), "max")
                lo_f, work = _window_extreme_(lo_f, work, dims, *grow(w, base), "min")
                torch.eq(hi_f, lo_f, out=const)
                prev = base
            elif base is not None and k == 1:
                const.copy_(count.view(torch.bool))
        # erosion phase: with B of extent >= 1 on every axis that still grows, the window W_j is
        # constant around v exactly when W_{j-1} (or B) is constant around every voxel of the
        # increment box around v (overlapping constant windows share their label), so one boolean
        # min filter per level replaces the two label filters and the comparison
        if k < len(chain):
            c8 = const.view(torch.uint8)
            if hi_f.dtype != torch.uint8 and spare is None:
                spare = torch.empty(lab.shape, dtype=torch.uint8, device=lab.device)
            buf = hi_f if hi_f.dtype == torch.uint8 else spare
            for w in chain[k:]:
                c8, buf = _window_extreme_(c8, buf, dims, *grow(prev, w), "min")
                clear_border(c8.view(torch.bool), w)
                count += c8
                prev = w
            if c8.data_ptr() != const.data_ptr():  # keep `const` as the bool scratch of the class levels
                const = c8.view(torch.bool)
                if hi_f.dtype == torch.uint8:
                    hi_f = buf
                else:
                    spare = buf
        # L: the class's window in this chain (1-based), 0 = the class is not in this chain; the
        # filter buffers are free now and hold it (fresh multi-megabyte buffers are slow on CPU)
        level = {w: j + 1 for j, w in enumerate(chain)}
        need = lo_f if lo_f.dtype == torch.uint8 else torch.empty(lab.shape, dtype=torch.uint8, device=lab.device)
        _class_levels(lab, {c: level.get(w, 0) for c, w in windows.items()}, need, const)
        if len(chains) == 1:
            contour = torch.lt(count, need, out=const)
        elif contour is None:
            contour = count < need
        else:
            contour |= count < need
    if contour is None:  # every class has a zero width
        return torch.zeros(lab.shape, dtype=torch.bool, device=lab.device)
    return contour


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
