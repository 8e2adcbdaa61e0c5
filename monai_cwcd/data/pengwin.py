"""PENGWIN task 1 (pelvic fracture fragments, CT): label remap to 14 classes, case discovery and the
70/10/20 split.

Layout (as released; ``*`` matches e.g. ``_part1`` / ``_part2``)::

    dataset_dir/PENGWIN_CT_train_images*/001.mha
    dataset_dir/PENGWIN_CT_train_labels*/001.mha

Raw labels: 0 background, 1-10 sacrum fragments, 11-20 left hipbone fragments, 21-30 right hipbone
fragments (fragment 1 of a bone is its main piece). Journal paper ``000`` Sec. II-D3 keeps 4 sacrum,
6 left-hip and 4 right-hip fragments, renamed to 14 classes: 1-4 sacrum, 5-10 left hip, 11-14 right
hip. The paper does not say what happens to the rare fragments beyond those counts; here they are
merged into the last kept class of the same bone (sacrum raw 5-10 -> 4, left hip raw 17-20 -> 10,
right hip raw 25-30 -> 14), and every merge is logged with the file name.
"""

from __future__ import annotations

import glob
import os
from collections.abc import Hashable, Mapping, Sequence

import numpy as np
import torch
from monai.config import KeysCollection, NdarrayOrTensor
from monai.data.meta_tensor import MetaTensor
from monai.transforms import MapTransform, Transform
from monai.utils import TransformBackends, convert_to_dst_type, convert_to_tensor

from monai_cwcd.data._utils import DatasetError, check_pair, check_unique_ids, logger, split_cases

__all__ = [
    "PENGWIN_BONES",
    "PENGWIN_KEPT_FRAGMENTS",
    "PENGWIN_CLASSES",
    "PENGWIN_RAW_LABEL_IDS",
    "PENGWIN_LABEL_IDS",
    "PENGWIN_REMAP_TABLE",
    "PENGWIN_SPLIT",
    "PengwinLabelRemap",
    "PengwinLabelRemapd",
    "PengwinLabelRemapD",
    "PengwinLabelRemapDict",
    "pengwin_cases",
    "pengwin_datalist",
]

PENGWIN_BONES: tuple[str, ...] = ("sacrum", "left hipbone", "right hipbone")
PENGWIN_KEPT_FRAGMENTS: tuple[int, ...] = (4, 6, 4)
"""Fragments kept per bone (paper ``000`` Sec. II-D3); raw label ``10 * bone + f`` is fragment ``f``."""
PENGWIN_RAW_LABEL_IDS: tuple[int, ...] = tuple(range(31))
PENGWIN_SPLIT: tuple[int, int, int] = (70, 10, 20)
_EXPECTED_IMAGE = "a single-channel 3D CT volume"


def _remap_table() -> np.ndarray:
    table = np.zeros(31, dtype=np.int64)
    first = 1
    for bone, kept in enumerate(PENGWIN_KEPT_FRAGMENTS):
        for fragment in range(1, 11):
            table[10 * bone + fragment] = first + min(fragment, kept) - 1
        first += kept
    return table


PENGWIN_REMAP_TABLE: np.ndarray = _remap_table()
"""Lookup table raw label (0-30) -> class (0-14)."""
PENGWIN_CLASSES: dict[int, str] = {0: "background"}
for _bone, _kept in zip(PENGWIN_BONES, PENGWIN_KEPT_FRAGMENTS):
    for _f in range(1, _kept + 1):
        PENGWIN_CLASSES[len(PENGWIN_CLASSES)] = f"{_bone} fragment {_f}"
PENGWIN_LABEL_IDS: tuple[int, ...] = tuple(PENGWIN_CLASSES)


class PengwinLabelRemap(Transform):
    """Remap raw PENGWIN fragment labels (0-30) to the paper's 14 classes (0-14) with one table lookup.

    ``1-4 -> 1-4`` (sacrum), ``11-16 -> 5-10`` (left hip), ``21-24 -> 11-14`` (right hip); rarer
    fragments beyond those counts are merged into their bone's last kept class (``5-10 -> 4``,
    ``17-20 -> 10``, ``25-30 -> 14``) and the merge is logged (INFO, logger ``monai_cwcd.data``) with
    the file name from the ``MetaTensor`` metadata.

    Any shape; numpy in -> numpy out, torch -> torch (same device), a ``MetaTensor`` keeps its
    metadata; the dtype is kept.

    Example:
        >>> PengwinLabelRemap()(np.array([[0, 1, 5, 11, 17, 21, 30]]))
        array([[ 0,  1,  4,  5, 10, 11, 14]])

    Raises:
        ValueError: values that are not integers in 0-30 (the message names the file and values).
    """

    backend = [TransformBackends.TORCH, TransformBackends.NUMPY]

    def __call__(self, img: NdarrayOrTensor) -> NdarrayOrTensor:
        lab = convert_to_tensor(img, track_meta=False)
        filename = img.meta.get("filename_or_obj", "<array>") if isinstance(img, MetaTensor) else "<array>"
        idx = lab.round().long() if lab.is_floating_point() else lab.long()
        if lab.is_floating_point() and not torch.equal(idx.to(lab.dtype), lab):
            raise ValueError(f"PENGWIN label {filename}: non-integer values, e.g. {lab[idx.to(lab.dtype) != lab][:5].tolist()}.")
        if idx.numel() and (int(idx.min()) < 0 or int(idx.max()) > 30):
            bad = torch.unique(idx[(idx < 0) | (idx > 30)])[:10].tolist()
            raise ValueError(f"PENGWIN label {filename}: values {bad} outside the raw label set 0-30.")
        counts = torch.bincount(idx.flatten(), minlength=31)
        table = torch.as_tensor(PENGWIN_REMAP_TABLE, device=idx.device)
        merged = [r for r in range(31) if counts[r] > 0 and _is_merged(r)]
        if merged:
            logger.info(
                "PENGWIN label %s: rare fragment label(s) %s merged into class(es) %s (the bone's last kept class).",
                filename, merged, [int(PENGWIN_REMAP_TABLE[r]) for r in merged],
            )
        out = table[idx]
        return convert_to_dst_type(out, dst=img, dtype=img.dtype)[0]


def _is_merged(raw: int) -> bool:
    if raw == 0:
        return False
    bone, fragment = (raw - 1) // 10, (raw - 1) % 10 + 1
    return fragment > PENGWIN_KEPT_FRAGMENTS[bone]


class PengwinLabelRemapd(MapTransform):
    """Dictionary twin of :class:`PengwinLabelRemap`.

    Example:
        >>> PengwinLabelRemapd("label")({"label": np.array([[0, 25]])})["label"]
        array([[ 0, 14]])

    Args:
        keys: keys of the label maps to remap.
        allow_missing_keys: do not raise for missing keys. Defaults to False.
    """

    backend = PengwinLabelRemap.backend

    def __init__(self, keys: KeysCollection, allow_missing_keys: bool = False) -> None:
        super().__init__(keys, allow_missing_keys)
        self.remap = PengwinLabelRemap()

    def __call__(self, data: Mapping[Hashable, NdarrayOrTensor]) -> dict[Hashable, NdarrayOrTensor]:
        d = dict(data)
        for key in self.key_iterator(d):
            d[key] = self.remap(d[key])
        return d


PengwinLabelRemapD = PengwinLabelRemapDict = PengwinLabelRemapd


def _mha_files(root: str, pattern: str) -> list[str]:
    return sorted(
        p for p in glob.glob(os.path.join(glob.escape(root), pattern, "*.mha"))
        if not os.path.basename(p).startswith(".") and not p.endswith("_contour.mha")
    )


def pengwin_cases(dataset_dir: str | os.PathLike, validate: bool = False) -> list[dict]:
    """All PENGWIN cases with an image and a label, sorted by case id (the file stem, e.g. ``"001"``).

    Args:
        dataset_dir: folder holding ``PENGWIN_CT_train_images*`` and ``PENGWIN_CT_train_labels*``.
        validate: check every image/label header (readable, complete, same shape, spacing, origin
            and direction). Defaults to False.

    Raises:
        DatasetError: no image folder, an image without label, duplicate case ids, or (with
            ``validate``) a bad file.
    """
    root = os.fspath(dataset_dir)
    images = _mha_files(root, "PENGWIN_CT_train_images*")
    labels = _mha_files(root, "PENGWIN_CT_train_labels*")
    if not images:
        raise DatasetError(
            f"PENGWIN: no PENGWIN_CT_train_images*/*.mha in {root!r}. Pass the folder of the PENGWIN task 1 "
            "release as dataset_dir (bundles: --dataset_dir /path/to/pengwin), or use the synthetic demo: "
            "`monai-cwcd demo-data pengwin`, or the bundle's demo.json overlay."
        )
    stem = lambda p: os.path.basename(p)[: -len(".mha")]  # noqa: E731
    check_unique_ids([(stem(p), p) for p in images], "PENGWIN images")
    check_unique_ids([(stem(p), p) for p in labels], "PENGWIN labels")
    label_of = {stem(p): p for p in labels}
    cases = []
    for image in images:
        case_id = stem(image)
        if case_id not in label_of:
            raise DatasetError(f"case {case_id}: image {image} has no label {case_id}.mha in PENGWIN_CT_train_labels*.")
        cases.append({"image": image, "label": label_of[case_id], "case_id": case_id})
    if validate:
        for c in cases:
            check_pair(c["image"], c["label"], c["case_id"], expected=_EXPECTED_IMAGE)
    return cases


def pengwin_datalist(
    dataset_dir: str | os.PathLike,
    split: str,
    split_counts: Sequence[int] | None = None,
    validate: bool = True,
) -> list[dict]:
    """PENGWIN datalist of one split: ``[{"image": path, "label": path, "case_id": str}, ...]``; load
    with ``LoadImaged(reader="ITKReader")`` and remap with :class:`PengwinLabelRemapd`.

    Cases are sorted, shuffled with a fixed seed and split 70/10/20 (scaled proportionally, at least
    one case per split, when the dataset has another size than the paper's 100).

    Args:
        dataset_dir: folder holding the image and label folders.
        split: ``"train"``, ``"val"`` or ``"test"``.
        split_counts: explicit (train, val, test) counts. Defaults to None (the paper's).
        validate: check the headers of this split's files. Defaults to True.

    Raises:
        DatasetError: see :func:`pengwin_cases`; too few cases for the split.
    """
    cases = {c["case_id"]: c for c in pengwin_cases(dataset_dir)}
    ids = split_cases(list(cases), split, PENGWIN_SPLIT, split_counts, dataset="PENGWIN")
    out = [cases[i] for i in ids]
    if validate:
        for c in out:
            check_pair(c["image"], c["label"], c["case_id"], expected=_EXPECTED_IMAGE)
    return out
