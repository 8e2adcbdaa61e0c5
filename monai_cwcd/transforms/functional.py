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
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from monai.transforms.utils import distance_transform_edt

__all__ = [
    "erosion_window",
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


def window_extreme(x: torch.Tensor, dims: Sequence[int], before: int, after: int, mode: str) -> torch.Tensor:
    """Running minimum or maximum of ``x`` over the window ``[i - before, i + after]`` along each of
    ``dims`` in turn (a separable box filter). Voxels outside the tensor are ignored, which is the
    same as replicating the edge value.

    Args:
        x: tensor of any shape and a dtype that ``torch.maximum`` supports.
        dims: the axes to filter.
        before: window extent towards lower indices.
        after: window extent towards higher indices.
        mode: ``"min"`` or ``"max"``.

    Returns:
        a new tensor of the shape and dtype of ``x``.
    """
    # in-place clamp against a shifted view: max(dst, val) for "max", min(dst, val) for "min".
    # (``torch.maximum(dst, val, out=dst)`` on an aliased view corrupts the heap in torch 2.13.)
    if mode not in ("min", "max"):
        raise ValueError(f"mode must be 'min' or 'max', got {mode!r}.")
    out = x
    for dim in dims:
        src = out
        out = src.clone()
        n = src.shape[dim]
        for offset in range(-before, after + 1):
            if offset == 0 or abs(offset) >= n:
                continue
            if offset > 0:
                dst, val = out.narrow(dim, 0, n - offset), src.narrow(dim, offset, n - offset)
            else:
                dst, val = out.narrow(dim, -offset, n + offset), src.narrow(dim, 0, n + offset)
            if mode == "max":
                dst.clamp_(min=val)
            else:
                dst.clamp_(max=val)
    return out


def _border_band(shape: Sequence[int], dims: Sequence[int], before: int, after: int, device) -> torch.Tensor:
    """Boolean mask (broadcastable to ``shape``) of the voxels whose erosion window leaves the tensor."""
    band = torch.zeros([1] * len(shape), dtype=torch.bool, device=device)
    for dim in dims:
        n = shape[dim]
        idx = torch.arange(n, device=device)
        axis_band = (idx < before) | (idx > n - 1 - after)
        view = [1] * len(shape)
        view[dim] = n
        band = band | axis_band.view(view)
    return band


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


def label_contour(
    label: torch.Tensor,
    spatial_dims: int,
    kernel_size: int = 3,
    iterations: int = 1,
    edge_is_contour: bool = False,
) -> torch.Tensor:
    """Own-class contour of a class-index label map, in one pass over the map.

    A voxel is marked when it lies on the contour ``C_c = G_c - erode(G_c)`` of its own class ``c``;
    this is the union of the contours of all classes (background included).

    Args:
        label: class-index map with ``spatial_dims`` trailing spatial axes, e.g. ``(1, H, W, D)`` or
            ``(B, 1, H, W, D)``; integral values.
        spatial_dims: number of trailing axes that are spatial.
        kernel_size: side of the erosion box. Defaults to 3.
        iterations: number of erosions. Defaults to 1.
        edge_is_contour: if True, the outside of the tensor counts as background for every class
            (scipy's default ``border_value=0``), so the voxels along the edge are contour;
            if False the edge is not a boundary. Defaults to False.

    Returns:
        bool tensor of the shape of ``label``.
    """
    before, after = erosion_window(kernel_size, iterations)
    dims = list(range(label.ndim - spatial_dims, label.ndim))
    if before == 0 and after == 0:  # kernel_size == 1: erosion is the identity, the contour is empty
        return torch.zeros(label.shape, dtype=torch.bool, device=label.device)
    lab = compact_labels(label)
    contour = window_extreme(lab, dims, before, after, "max") != window_extreme(lab, dims, before, after, "min")
    if edge_is_contour:
        contour |= _border_band(label.shape, dims, before, after, label.device)
    return contour


def binary_contour(
    mask: torch.Tensor,
    spatial_dims: int,
    kernel_size: int = 3,
    iterations: int = 1,
    edge_is_contour: bool = False,
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

    Returns:
        bool tensor of the shape of ``mask``.
    """
    before, after = erosion_window(kernel_size, iterations)
    fg = mask > 0.5 if mask.is_floating_point() else mask != 0
    if before == 0 and after == 0:
        return torch.zeros(mask.shape, dtype=torch.bool, device=mask.device)
    dims = list(range(mask.ndim - spatial_dims, mask.ndim))
    eroded = window_extreme(fg.to(torch.uint8), dims, before, after, "min").bool()
    contour = fg & ~eroded
    if edge_is_contour:
        contour |= fg & _border_band(mask.shape, dims, before, after, mask.device)
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
