"""Array transforms that derive contour and weight maps from a segmentation label.

All three are deterministic, so MONAI's ``CacheDataset`` / ``PersistentDataset`` cache their
output. They take a channel-first label without batch axis, ``(C, H, W)`` or ``(C, H, W, D)``, as
numpy array, torch tensor (CPU or CUDA) or ``MetaTensor`` and return the same kind (same device,
metadata kept).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
from monai.config.type_definitions import NdarrayOrTensor
from monai.data.meta_obj import get_track_meta
from monai.transforms.transform import Transform
from monai.utils import TransformBackends
from monai.utils.type_conversion import convert_to_dst_type, convert_to_tensor

from monai_cwcd.transforms.functional import (
    binary_contour,
    check_contour_width,
    check_spacing,
    compact_labels,
    distance_weight_map,
    erosion_window,
    label_contour,
    resolve_spacing,
    rrw_map,
)

__all__ = ["ContourWeightMap", "RRWMap", "DistanceWeightMap"]


def _check_num_classes(num_classes: int | None) -> None:
    if num_classes is None:
        return
    if isinstance(num_classes, bool) or int(num_classes) != num_classes or num_classes < 1:
        raise ValueError(f"num_classes must be None or an integer >= 1, got {num_classes!r}.")


def _as_label_tensor(img: NdarrayOrTensor, name: str) -> tuple[torch.Tensor, int]:
    """Plain tensor view of ``img`` (no copy for numpy/torch input) and its number of spatial dims."""
    img_t = convert_to_tensor(img, track_meta=get_track_meta())
    x = img_t.as_tensor() if hasattr(img_t, "as_tensor") else img_t
    if x.ndim not in (3, 4):
        raise ValueError(
            f"{name} expects a channel-first label (C, H, W) or (C, H, W, D) without batch axis, "
            f"got shape {tuple(x.shape)}."
        )
    return x, x.ndim - 1


def _is_index_map(x: torch.Tensor, multi_label: bool) -> bool:
    """A single-channel input is a class-index map unless ``multi_label`` says it is a binary mask."""
    return x.shape[0] == 1 and not multi_label


def _check_index_map(x: torch.Tensor, num_classes: int | None, name: str) -> torch.Tensor:
    """Validate a class-index map and return it in a compact integer dtype (``compact_labels``).

    Class indices must be integral, >= 0 and, when ``num_classes`` is given, < num_classes.
    """
    if x.numel() == 0:
        return compact_labels(x)
    if x.is_floating_point():
        # fast path (labels loaded from NIfTI are float): one uint8 round trip checks integral, >= 0
        # and < 256 at once, and gives the compact labels the kernels want
        lab = x.to(torch.uint8)
        if not bool((lab.to(x.dtype) == x).all()):
            bad = ~torch.isfinite(x) | (x != torch.round(x))
            if bool(bad.any()):
                raise ValueError(
                    f"{name} expects integral class indices, got non-integral value "
                    f"{x[bad].flatten()[0].item()} in a label of shape {tuple(x.shape)} (dtype {x.dtype}). "
                    "Use multi_label=True for a binary/probability mask."
                )
            lab = compact_labels(x)
    else:
        lab = compact_labels(x)
    lo = 0 if lab.dtype == torch.uint8 else int(lab.min())
    if lo < 0:
        raise ValueError(f"{name} expects class indices >= 0, got min {lo} in a label of shape {tuple(x.shape)}.")
    if num_classes is not None:
        hi = int(lab.max())
        if hi >= num_classes:
            raise ValueError(
                f"{name} expects class indices < num_classes={num_classes}, got max {hi} "
                f"in a label of shape {tuple(x.shape)}."
            )
    return lab


class ContourWeightMap(Transform):
    """Contour map of a segmentation label, ``C = G - erode(G)`` (journal paper ``000`` eq. 8,
    conference paper ``001`` eq. 1), for the CWCD loss.

    ``erode`` is binary erosion by a box of side ``kernel_size`` repeated ``iterations`` times. For
    every class ``c`` (background included) with mask ``G_c``, ``C_c`` equals, voxel for voxel::

        G_c - scipy.ndimage.binary_erosion(G_c, structure=np.ones((k,) * ndim), iterations=it,
                                           border_value=0 if edge_is_contour else 1)

    (for an even ``k`` the box sits at scipy's origin, offsets ``[-k // 2, k // 2 - 1]``, so
    ``k = 2`` marks only the faces towards lower indices). All classes are done in one pass over the
    label (a voxel is on its own-class contour when its window is not constant), never one erosion
    per class.

    Input and output, channel-first without batch axis (2D or 3D):

    - class-index map ``(1, *spatial)``, ``per_class=False``: ``(1, *spatial)``, 1 where a voxel lies
      on the contour of its own class (the union of all ``C_c``; both sides of a boundary are marked).
    - class-index map ``(1, *spatial)``, ``per_class=True``: ``(num_classes, *spatial)``, channel
      ``c`` is ``C_c``.
    - binary / multi-label masks ``(C, *spatial)`` with ``C > 1`` (e.g. BraTS TC/WT/ET, or one-hot):
      the contour of each channel, ``(C, *spatial)`` (``per_class`` and ``num_classes`` do not apply).
    - ``multi_label=True`` makes a single-channel input a binary mask (nonzero, or > 0.5 for floats,
      is foreground): only the foreground side of its boundary is marked, whereas a ``{0, 1}``
      class-index map also marks the background side.

    The output is uint8 (0/1), numpy in -> numpy out, torch in -> torch out on the same device, a
    ``MetaTensor`` keeps its metadata.

    Paper settings (both released implementations used scipy's default border, i.e.
    ``edge_is_contour=True``): journal ``kernel_size=2, iterations=1``; conference
    ``kernel_size=3, iterations=6``.

    Physical units (``contour_width_mm``, replaces ``kernel_size``/``iterations``): the contour is
    ``w_a`` mm thick on every axis ``a``, i.e. ``r_a = floor(w_a / s_a + 1/2)`` voxels, one erosion by
    the window ``[-r_a, r_a]`` (:func:`~monai_cwcd.transforms.functional.contour_radius`), with the
    voxel spacing ``s`` taken from the affine of a ``MetaTensor`` input (as ``Spacingd`` left it) or,
    for numpy / plain torch input, from ``spacing``. On an isotropic grid of spacing ``s``,
    ``contour_width_mm = it * (k - 1) / 2 * s`` is exactly the voxel setting ``(k, it)`` for an odd
    ``k`` (``(3, 1)`` is ``s`` mm). A mapping ``{class: width}`` gives every class its own thickness
    (for binary masks: every channel), still computed in one sweep over the label.

    Example:
        >>> import numpy as np
        >>> label = np.zeros((1, 6, 6), dtype=np.int64); label[0, 1:5, 1:5] = 1
        >>> ContourWeightMap(kernel_size=3, per_class=True)(label)[1]
        array([[0, 0, 0, 0, 0, 0],
               [0, 1, 1, 1, 1, 0],
               [0, 1, 0, 0, 1, 0],
               [0, 1, 0, 0, 1, 0],
               [0, 1, 1, 1, 1, 0],
               [0, 0, 0, 0, 0, 0]], dtype=uint8)
        >>> ContourWeightMap(kernel_size=3)(label).shape, ContourWeightMap(per_class=True)(label).shape
        ((1, 6, 6), (2, 6, 6))

    Args:
        kernel_size: side of the erosion box; 1 is legal and gives an empty contour. Defaults to 3.
        iterations: number of erosions (thicker contour). Defaults to 1.
        per_class: for a class-index map, return one channel per class instead of the own-class
            union. Defaults to False.
        num_classes: number of classes of a class-index map (output channels with ``per_class``);
            labels must be below it. Defaults to None (max label + 1).
        edge_is_contour: if True the outside of the image/patch is background for every class
            (scipy's default ``border_value=0``, the papers' released behaviour), so objects touching
            the edge get a contour there; if False the edge is not a boundary (a patch crop does not
            invent contours). Defaults to False.
        multi_label: treat a single-channel input as a binary mask instead of class indices.
            Defaults to False.
        contour_width_mm: contour thickness in millimetres instead of ``kernel_size``/``iterations``:
            a number, one per spatial axis, or a mapping ``{class index: number or per-axis}`` (one
            entry per class of the label, or per channel of binary masks; JSON string keys are
            accepted, see :func:`monai_cwcd.data.load_contour_widths`). Defaults to None (voxel
            setting).
        spacing: voxel spacing in mm (a number or one per spatial axis) for input without an affine
            (numpy, plain torch); a ``MetaTensor``'s affine takes precedence (a warning is issued if
            they differ). Defaults to None.

    Raises:
        ValueError: ``kernel_size < 1``, ``iterations < 1``, ``num_classes < 1``; the label is not
            ``(C, H, W[, D])``; class indices are negative, non-integral or ``>= num_classes``;
            a negative or non-finite width; ``contour_width_mm`` for input that is no ``MetaTensor``
            and no ``spacing``; a class (channel) of the label without a per-class width.
    """

    backend = [TransformBackends.TORCH, TransformBackends.NUMPY]

    def __init__(
        self,
        kernel_size: int = 3,
        iterations: int = 1,
        per_class: bool = False,
        num_classes: int | None = None,
        edge_is_contour: bool = False,
        multi_label: bool = False,
        contour_width_mm: float | Sequence[float] | Mapping[int, float | Sequence[float]] | None = None,
        spacing: float | Sequence[float] | None = None,
    ) -> None:
        erosion_window(kernel_size, iterations)  # validates both
        _check_num_classes(num_classes)
        self.contour_width_mm = check_contour_width(contour_width_mm)
        self.spacing = check_spacing(spacing)
        self.kernel_size = int(kernel_size)
        self.iterations = int(iterations)
        self.per_class = bool(per_class)
        self.num_classes = None if num_classes is None else int(num_classes)
        self.edge_is_contour = bool(edge_is_contour)
        self.multi_label = bool(multi_label)

    def __call__(self, img: NdarrayOrTensor) -> NdarrayOrTensor:
        """
        Args:
            img: channel-first label ``(C, H, W[, D])``, class indices when ``C == 1`` (unless
                ``multi_label``), binary masks otherwise.

        Returns:
            uint8 contour map of the same kind as ``img``, see the class docstring for the shape.
        """
        x, sdims = _as_label_tensor(img, type(self).__name__)
        args = (sdims, self.kernel_size, self.iterations, self.edge_is_contour)
        kwargs = {}
        if self.contour_width_mm is not None:
            found = resolve_spacing(img, sdims, self.spacing, type(self).__name__)
            kwargs = {"contour_width_mm": self.contour_width_mm, "spacing": found}
        if _is_index_map(x, self.multi_label):
            lab = _check_index_map(x, self.num_classes, type(self).__name__)
            contour = label_contour(lab, *args, **kwargs)
            if self.per_class:
                num_classes = self.num_classes if self.num_classes is not None else int(lab.max()) + 1
                classes = torch.arange(num_classes, device=x.device).view(-1, *([1] * sdims))
                contour = contour & (lab == classes)
        else:
            contour = binary_contour(x, *args, **kwargs)
        return convert_to_dst_type(contour.to(torch.uint8), dst=img, dtype=torch.uint8)[0]


class RRWMap(Transform):
    """Rectified region-wise (RRW) map of Valverde et al., "Region-wise loss for biomedical image
    segmentation" (paper ``004``), the map of the ``RegionWiseLoss`` baseline.

    For every class ``c`` with mask ``G_c`` and ``d`` the Euclidean distance (voxel units) of each
    voxel of ``G_c`` to the nearest voxel outside ``G_c``::

        RRW_c = -d / max(d)  inside G_c,        RRW_c = 1  elsewhere.

    An absent class gives all ones; a class filling the whole image gives all ``-1``. Distances come
    from MONAI's ``distance_transform_edt`` (scipy on CPU, cuCIM on CUDA when installed).

    Input: class-index map ``(1, *spatial)`` -> ``(num_classes, *spatial)``; binary/multi-label masks
    ``(C, *spatial)`` (or one channel with ``multi_label=True``) -> ``(C, *spatial)``. Output float32,
    same kind as the input, metadata kept.

    Example:
        >>> import numpy as np
        >>> RRWMap(num_classes=2)(np.array([[[0, 1, 1, 1, 0]]]))[1]
        array([[ 1. , -0.5, -1. , -0.5,  1. ]], dtype=float32)

    Args:
        num_classes: number of classes of a class-index map. Defaults to None (max label + 1).
        multi_label: treat a single-channel input as a binary mask instead of class indices.
            Defaults to False.

    Raises:
        ValueError: ``num_classes < 1``; the label is not ``(C, H, W[, D])``; class indices are
            negative, non-integral or ``>= num_classes``.
    """

    backend = [TransformBackends.TORCH, TransformBackends.NUMPY]

    def __init__(self, num_classes: int | None = None, multi_label: bool = False) -> None:
        _check_num_classes(num_classes)
        self.num_classes = None if num_classes is None else int(num_classes)
        self.multi_label = bool(multi_label)

    def __call__(self, img: NdarrayOrTensor) -> NdarrayOrTensor:
        """
        Args:
            img: channel-first label ``(C, H, W[, D])``.

        Returns:
            float32 RRW map ``(num_classes or C, H, W[, D])`` of the same kind as ``img``.
        """
        x, sdims = _as_label_tensor(img, type(self).__name__)
        if _is_index_map(x, self.multi_label):
            x = _check_index_map(x, self.num_classes, type(self).__name__)
        out = rrw_map(x, sdims, num_classes=self.num_classes, multi_label=self.multi_label)
        return convert_to_dst_type(out, dst=img, dtype=torch.float32)[0]


class DistanceWeightMap(Transform):
    """Boundary distance weight map for the distance-weighted cross-entropy (DWCE) baseline::

        w = 1 + w0 * exp(-d^2 / (2 * sigma^2)),

    ``d`` the Euclidean distance (voxel units) to the nearest own-class contour voxel (the contour
    of ``ContourWeightMap(kernel_size=3)``: both sides of every class boundary, the image edge is not
    a boundary), so ``w = 1 + w0`` on the boundary and decays to 1 away from it; an image without a
    boundary gets ``w = 1``. ``w0 = 10`` and ``sigma = 5`` are the constants of the weight map of
    Ronneberger et al. (U-Net, MICCAI 2015), which the conference paper ``001`` cites for DWCE (the
    journal paper ``000`` cites Caliva et al., arXiv:1908.03679, for it).

    Input: class-index map ``(1, *spatial)`` or binary/multi-label masks ``(C, *spatial)`` (the union
    of the channels' contours is used). Output ``(1, *spatial)`` float32, same kind as the input.

    Example:
        >>> import numpy as np
        >>> DistanceWeightMap(w0=1.0, sigma=1.0)(np.array([[[0, 0, 1, 1, 1, 1]]]))
        array([[[1.6065307, 2.       , 2.       , 1.6065307, 1.1353353,
                 1.011109 ]]], dtype=float32)

    Args:
        w0: weight added on the boundary. Defaults to 10.0.
        sigma: decay length in voxels. Defaults to 5.0.
        multi_label: treat a single-channel input as a binary mask instead of class indices.
            Defaults to False.

    Raises:
        ValueError: ``w0 < 0``, ``sigma <= 0``; the label is not ``(C, H, W[, D])``; class indices
            are negative or non-integral.
    """

    backend = [TransformBackends.TORCH, TransformBackends.NUMPY]

    def __init__(self, w0: float = 10.0, sigma: float = 5.0, multi_label: bool = False) -> None:
        if not float(w0) >= 0:
            raise ValueError(f"w0 must be >= 0, got {w0}.")
        if not float(sigma) > 0:
            raise ValueError(f"sigma must be > 0, got {sigma}.")
        self.w0 = float(w0)
        self.sigma = float(sigma)
        self.multi_label = bool(multi_label)

    def __call__(self, img: NdarrayOrTensor) -> NdarrayOrTensor:
        """
        Args:
            img: channel-first label ``(C, H, W[, D])``.

        Returns:
            float32 weight map ``(1, H, W[, D])`` of the same kind as ``img``.
        """
        x, sdims = _as_label_tensor(img, type(self).__name__)
        if _is_index_map(x, self.multi_label):
            x = _check_index_map(x, None, type(self).__name__)
        out = distance_weight_map(x, sdims, w0=self.w0, sigma=self.sigma, multi_label=self.multi_label)
        return convert_to_dst_type(out, dst=img, dtype=torch.float32)[0]
