"""Dictionary wrappers of :mod:`monai_cwcd.transforms.array`.

Each wrapper reads a label key and writes the derived map to a NEW key (``"{key}_contour"``,
``"{key}_rrw"``, ``"{key}_dwmap"`` by default), leaving the label untouched. When the label is a
``MetaTensor`` the new key gets a copy of its metadata (affine, spacing, applied operations), so
later spatial transforms treat it like the label: list the new key in every later spatial transform
with ``mode="nearest"`` (contours) so it stays aligned with the label.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence
from copy import deepcopy

from monai.config import KeysCollection
from monai.config.type_definitions import NdarrayOrTensor
from monai.data.meta_tensor import MetaTensor
from monai.transforms.transform import MapTransform, Transform

from monai_cwcd.transforms.array import ContourWeightMap, DistanceWeightMap, RRWMap

__all__ = [
    "ContourWeightMapd",
    "ContourWeightMapD",
    "ContourWeightMapDict",
    "RRWMapd",
    "RRWMapD",
    "RRWMapDict",
    "DistanceWeightMapd",
    "DistanceWeightMapD",
    "DistanceWeightMapDict",
]


class _DerivedMapd(MapTransform):
    """Writes ``transform(d[key])`` to ``output_key.format(key=key)`` for every key."""

    def __init__(
        self,
        keys: KeysCollection,
        transform: Transform,
        output_key: str,
        output_arg: str,
        allow_missing_keys: bool = False,
    ) -> None:
        super().__init__(keys, allow_missing_keys)
        if not isinstance(output_key, str):
            raise ValueError(f"{output_arg} must be a format string such as '{{key}}_map', got {output_key!r}.")
        out_keys = [output_key.format(key=key) for key in self.keys]
        if len(set(out_keys)) != len(out_keys):
            raise ValueError(
                f"{output_arg}={output_key!r} maps the keys {list(self.keys)} to the same output key(s) "
                f"{out_keys}; include '{{key}}' in it."
            )
        if set(out_keys) & set(self.keys):
            raise ValueError(f"{output_arg}={output_key!r} would overwrite an input key of {list(self.keys)}.")
        self.transform = transform
        self.output_key = output_key

    def __call__(self, data: Mapping[Hashable, NdarrayOrTensor]) -> dict[Hashable, NdarrayOrTensor]:
        d = dict(data)
        for key in self.key_iterator(d):
            src = d[key]
            out = self.transform(src)
            if isinstance(src, MetaTensor) and isinstance(out, MetaTensor):
                # an independent copy: a later transform that edits the label's meta must not edit ours
                out.meta = deepcopy(src.meta)
                out.applied_operations = deepcopy(src.applied_operations)
            d[self.output_key.format(key=key)] = out
        return d


class ContourWeightMapd(_DerivedMapd):
    """Dictionary-based wrapper of :py:class:`monai_cwcd.transforms.ContourWeightMap`: writes the
    uint8 contour map of ``d[key]`` to ``d[contour_key.format(key=key)]`` (``"label"`` ->
    ``"label_contour"``), with the label's metadata. Deterministic, so a ``CacheDataset`` /
    ``PersistentDataset`` caches it; list the contour key in later spatial transforms with
    ``mode="nearest"``.

    Example:
        >>> import torch
        >>> t = ContourWeightMapd(keys="label", kernel_size=2, edge_is_contour=True)
        >>> out = t({"label": torch.ones(1, 4, 4)})
        >>> out["label_contour"][0]
        tensor([[1, 1, 1, 1],
                [1, 0, 0, 0],
                [1, 0, 0, 0],
                [1, 0, 0, 0]], dtype=torch.uint8)

    Args:
        keys: keys of the labels to read.
        kernel_size: side of the erosion box. Defaults to 3.
        iterations: number of erosions. Defaults to 1.
        per_class: one channel per class for a class-index map. Defaults to False.
        num_classes: number of classes of a class-index map. Defaults to None (max label + 1).
        edge_is_contour: treat the image edge as a boundary (scipy's default, the papers' code).
            Defaults to False.
        multi_label: treat a single-channel input as a binary mask. Defaults to False.
        contour_width_mm: contour thickness in mm instead of ``kernel_size``/``iterations``: a number,
            one per spatial axis, or ``{class index: width}`` (see :py:class:`ContourWeightMap`).
            Defaults to None.
        spacing: voxel spacing in mm for labels without an affine (a ``MetaTensor`` label's affine
            takes precedence). Defaults to None.
        contour_key: output key, formatted with ``key``. Defaults to ``"{key}_contour"``.
        allow_missing_keys: don't raise if a key is missing. Defaults to False.

    Raises:
        ValueError: as :py:class:`ContourWeightMap`; ``contour_key`` maps two keys to the same output
            key or onto an input key.
    """

    backend = ContourWeightMap.backend

    def __init__(
        self,
        keys: KeysCollection,
        kernel_size: int = 3,
        iterations: int = 1,
        per_class: bool = False,
        num_classes: int | None = None,
        edge_is_contour: bool = False,
        multi_label: bool = False,
        contour_width_mm: float | Sequence[float] | Mapping[int, float | Sequence[float]] | None = None,
        spacing: float | Sequence[float] | None = None,
        contour_key: str = "{key}_contour",
        allow_missing_keys: bool = False,
    ) -> None:
        transform = ContourWeightMap(
            kernel_size, iterations, per_class, num_classes, edge_is_contour, multi_label, contour_width_mm, spacing
        )
        super().__init__(keys, transform, contour_key, "contour_key", allow_missing_keys)
        self.contour_key = contour_key


class RRWMapd(_DerivedMapd):
    """Dictionary-based wrapper of :py:class:`monai_cwcd.transforms.RRWMap`: writes the float32
    rectified region-wise map of ``d[key]`` to ``d[rrw_key.format(key=key)]`` (``"label"`` ->
    ``"label_rrw"``), with the label's metadata.

    Example:
        >>> import torch
        >>> RRWMapd(keys="label")({"label": torch.tensor([[[0, 1, 1, 1, 0]]])})["label_rrw"].shape
        torch.Size([2, 1, 5])

    Args:
        keys: keys of the labels to read.
        num_classes: number of classes of a class-index map. Defaults to None (max label + 1).
        multi_label: treat a single-channel input as a binary mask. Defaults to False.
        rrw_key: output key, formatted with ``key``. Defaults to ``"{key}_rrw"``.
        allow_missing_keys: don't raise if a key is missing. Defaults to False.

    Raises:
        ValueError: as :py:class:`RRWMap`; ``rrw_key`` maps two keys to the same output key or onto
            an input key.
    """

    backend = RRWMap.backend

    def __init__(
        self,
        keys: KeysCollection,
        num_classes: int | None = None,
        multi_label: bool = False,
        rrw_key: str = "{key}_rrw",
        allow_missing_keys: bool = False,
    ) -> None:
        super().__init__(keys, RRWMap(num_classes, multi_label), rrw_key, "rrw_key", allow_missing_keys)
        self.rrw_key = rrw_key


class DistanceWeightMapd(_DerivedMapd):
    """Dictionary-based wrapper of :py:class:`monai_cwcd.transforms.DistanceWeightMap`: writes the
    float32 DWCE weight map of ``d[key]`` to ``d[weight_key.format(key=key)]`` (``"label"`` ->
    ``"label_dwmap"``), with the label's metadata.

    Example:
        >>> import torch
        >>> out = DistanceWeightMapd(keys="label")({"label": torch.tensor([[[0, 0, 1, 1]]])})
        >>> out["label_dwmap"].max().item()
        11.0

    Args:
        keys: keys of the labels to read.
        w0: weight added on the boundary. Defaults to 10.0.
        sigma: decay length in voxels. Defaults to 5.0.
        multi_label: treat a single-channel input as a binary mask. Defaults to False.
        weight_key: output key, formatted with ``key``. Defaults to ``"{key}_dwmap"``.
        allow_missing_keys: don't raise if a key is missing. Defaults to False.

    Raises:
        ValueError: as :py:class:`DistanceWeightMap`; ``weight_key`` maps two keys to the same output
            key or onto an input key.
    """

    backend = DistanceWeightMap.backend

    def __init__(
        self,
        keys: KeysCollection,
        w0: float = 10.0,
        sigma: float = 5.0,
        multi_label: bool = False,
        weight_key: str = "{key}_dwmap",
        allow_missing_keys: bool = False,
    ) -> None:
        transform = DistanceWeightMap(w0, sigma, multi_label)
        super().__init__(keys, transform, weight_key, "weight_key", allow_missing_keys)
        self.weight_key = weight_key


ContourWeightMapD = ContourWeightMapDict = ContourWeightMapd
RRWMapD = RRWMapDict = RRWMapd
DistanceWeightMapD = DistanceWeightMapDict = DistanceWeightMapd
