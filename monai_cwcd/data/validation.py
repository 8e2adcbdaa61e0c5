"""Load-time checks: label-set validation (fails with the case, the file and the bad values) and
padding of images smaller than the training patch (a logged policy)."""

from __future__ import annotations

import logging
from collections.abc import Hashable, Mapping, Sequence

import torch
from monai.config import KeysCollection, NdarrayOrTensor
from monai.data.meta_tensor import MetaTensor
from monai.transforms import MapTransform, SpatialPad, SpatialPadd, Transform
from monai.utils import TransformBackends, convert_to_tensor, fall_back_tuple

from monai_cwcd.data._utils import DatasetError

__all__ = [
    "ValidateLabel",
    "ValidateLabeld",
    "ValidateLabelD",
    "ValidateLabelDict",
    "PadToPatch",
    "PadToPatchd",
    "PadToPatchD",
    "PadToPatchDict",
]

logger = logging.getLogger("monai_cwcd.data")


def _log_padding(img: torch.Tensor, spatial_size: Sequence[int] | int, case_id: object = None, keys: Sequence = ()) -> None:
    """One warning when ``img`` (channel-first) is smaller than ``spatial_size`` along some axis."""
    shape = tuple(int(v) for v in img.shape[1:])
    target = fall_back_tuple(spatial_size, shape)
    axes = [i for i, (n, p) in enumerate(zip(shape, target)) if n < p]
    if axes:
        logger.warning(
            "%simage %s of spatial size %s is smaller than the patch %s along axis %s; padded to the patch%s "
            "before cropping (documented policy, docs/reliability.md).",
            f"case {case_id}: " if case_id is not None else "", _describe(img), shape, tuple(int(v) for v in target),
            axes, f" (keys {list(keys)})" if keys else "",
        )


def _describe(img: NdarrayOrTensor) -> str:
    return str(img.meta.get("filename_or_obj", "<unknown file>")) if isinstance(img, MetaTensor) else "<array>"


class ValidateLabel(Transform):
    """Check that a label map only holds values of ``labels``; returns the input unchanged.

    Place it right after ``LoadImaged`` (before any resampling) so the values are the file's own.

    Example:
        >>> import numpy as np
        >>> ValidateLabel(labels=(0, 1, 2, 4))(np.array([[0, 1, 4]]))
        array([[0, 1, 4]])

    Args:
        labels: the allowed label values, e.g. ``(0, 1, 2, 4)`` for BraTS.

    Raises:
        DatasetError: (a ``ValueError``) values outside ``labels``; the message names the case (dict
            version), the file (``MetaTensor`` meta ``"filename_or_obj"``) and up to 10 bad values.
    """

    backend = [TransformBackends.TORCH, TransformBackends.NUMPY]

    def __init__(self, labels: Sequence[int]) -> None:
        if len(labels) == 0:
            raise ValueError("labels must name at least one allowed value.")
        self.labels = tuple(sorted(float(v) for v in labels))

    def __call__(self, img: NdarrayOrTensor, case_id: str | None = None) -> NdarrayOrTensor:
        lab = convert_to_tensor(img, track_meta=False)
        values = torch.unique(lab)
        allowed = torch.as_tensor(self.labels, dtype=torch.float64, device=values.device)
        bad = values[~torch.isin(values.to(torch.float64), allowed)]
        if bad.numel():
            filename = img.meta.get("filename_or_obj", "<unknown file>") if isinstance(img, MetaTensor) else "<array>"
            shown = [int(v) if float(v).is_integer() else float(v) for v in bad[:10].tolist()]
            more = f" (and {bad.numel() - 10} more)" if bad.numel() > 10 else ""
            case = f"case {case_id}: " if case_id is not None else ""
            allowed_s = [int(v) for v in self.labels]
            raise DatasetError(f"{case}label file {filename} holds values {shown}{more} outside the label set {allowed_s}.")
        return img


class ValidateLabeld(MapTransform):
    """Dictionary twin of :class:`ValidateLabel`; the case id is read from ``data[case_key]``.

    Example:
        >>> import numpy as np
        >>> ValidateLabeld("label", labels=range(16))({"label": np.zeros((1, 2)), "case_id": "amos_0001"})["case_id"]
        'amos_0001'

    Args:
        keys: keys of the label maps to check.
        labels: the allowed label values.
        case_key: key of the case id named in the error. Defaults to ``"case_id"``.
        allow_missing_keys: do not raise for missing keys. Defaults to False.
    """

    backend = ValidateLabel.backend

    def __init__(self, keys: KeysCollection, labels: Sequence[int], case_key: str = "case_id", allow_missing_keys: bool = False) -> None:
        super().__init__(keys, allow_missing_keys)
        self.validate = ValidateLabel(labels)
        self.case_key = case_key

    def __call__(self, data: Mapping[Hashable, NdarrayOrTensor]) -> dict[Hashable, NdarrayOrTensor]:
        d = dict(data)
        for key in self.key_iterator(d):
            self.validate(d[key], case_id=d.get(self.case_key))
        return d


ValidateLabelD = ValidateLabelDict = ValidateLabeld


class PadToPatch(SpatialPad):
    """MONAI :py:class:`~monai.transforms.SpatialPad` that logs every image it has to pad.

    The bundles' policy for an image smaller than the training patch along some axis: pad it
    (symmetric, zeros by default: after z-score normalisation that is the mean intensity; the label
    and contour map get background) and train on, with one ``WARNING`` on the ``monai_cwcd.data``
    logger naming the file, its size and the patch size. In the deterministic, cached part of a
    pipeline the warning appears once per case. Same arguments, output and inverse as
    ``SpatialPad``.

    Example:
        >>> import torch
        >>> PadToPatch(spatial_size=(4, 4))(torch.zeros(1, 2, 4)).shape
        torch.Size([1, 4, 4])
    """

    def __call__(  # type: ignore[override]
        self, img: torch.Tensor, to_pad: tuple[tuple[int, int]] | None = None, mode: str | None = None,
        lazy: bool | None = None, **kwargs,
    ) -> torch.Tensor:
        if to_pad is None:
            _log_padding(img, self.spatial_size)
        return super().__call__(img, to_pad=to_pad, mode=mode, lazy=lazy, **kwargs)


class PadToPatchd(SpatialPadd):
    """Dictionary twin of :class:`PadToPatch`: MONAI ``SpatialPadd`` that logs (once per call, with
    the case id from ``data[case_key]`` and the file of the first key) every sample it pads.

    Example:
        >>> import torch
        >>> PadToPatchd(["image", "label"], spatial_size=(4, 4))({"image": torch.zeros(1, 2, 4), "label": torch.zeros(1, 2, 4)})["label"].shape
        torch.Size([1, 4, 4])

    Args:
        keys: keys to pad.
        spatial_size: the patch size; ``-1`` or ``None`` entries keep that axis.
        case_key: key of the case id named in the warning. Defaults to ``"case_id"``.
        kwargs: any other argument of MONAI's ``SpatialPadd`` (``method``, ``mode``, ...).
    """

    def __init__(self, keys: KeysCollection, spatial_size: Sequence[int] | int, case_key: str = "case_id", **kwargs) -> None:
        super().__init__(keys, spatial_size=spatial_size, **kwargs)
        self.case_key = case_key
        self.patch_size = spatial_size

    def __call__(self, data: Mapping[Hashable, torch.Tensor], lazy: bool | None = None) -> dict[Hashable, torch.Tensor]:
        d = dict(data)
        for key in self.key_iterator(d):  # one message per sample: the keys share the spatial size
            _log_padding(d[key], self.patch_size, d.get(self.case_key), list(self.keys))
            break
        return super().__call__(d, lazy=lazy)


PadToPatchD = PadToPatchDict = PadToPatchd
