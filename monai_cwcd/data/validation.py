"""Label-set validation at load time: a transform that fails with the case, the file and the bad values."""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence

import torch
from monai.config import KeysCollection, NdarrayOrTensor
from monai.data.meta_tensor import MetaTensor
from monai.transforms import MapTransform, Transform
from monai.utils import TransformBackends, convert_to_tensor

from monai_cwcd.data._utils import DatasetError

__all__ = ["ValidateLabel", "ValidateLabeld", "ValidateLabelD", "ValidateLabelDict"]


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
