"""AMOS 2022 (abdominal multi-organ CT): label map, CT-only case discovery and the 180/20/21 split.

Layout (as released, MSD style)::

    dataset_dir/
      dataset.json          # keys "labels", "training", "validation", "test", ...
      imagesTr/amos_0001.nii.gz   labelsTr/amos_0001.nii.gz
      imagesVa/amos_0008.nii.gz   labelsVa/amos_0008.nii.gz   (the "validation" entries)

Cases with an AMOS id <= 500 are CT, ids > 500 are MRI and are excluded (journal paper ``000``
Sec. II-D1 uses the CT scans only). Entries of both the "training" and the "validation" lists that
have a label are pooled, then split 180/20/21 (train/val/test).
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Sequence

from monai_cwcd.data._utils import DatasetError, check_pair, check_unique_ids, logger, resolve_inside, split_cases

__all__ = ["AMOS_LABELS", "AMOS_ABBREVIATIONS", "AMOS_LABEL_IDS", "AMOS_SPLIT", "AMOS_MAX_CT_ID", "amos_cases", "amos_datalist"]

AMOS_LABELS: dict[int, str] = {
    0: "background",
    1: "spleen",
    2: "right kidney",
    3: "left kidney",
    4: "gallbladder",
    5: "esophagus",
    6: "liver",
    7: "stomach",
    8: "aorta",
    9: "postcava",
    10: "pancreas",
    11: "right adrenal gland",
    12: "left adrenal gland",
    13: "duodenum",
    14: "bladder",
    15: "prostate/uterus",
}
"""AMOS label id -> organ name (journal paper ``000`` Sec. II-D1; ids as in the AMOS22 ``dataset.json``)."""

AMOS_ABBREVIATIONS: dict[int, str] = {
    1: "Sp", 2: "RK", 3: "LK", 4: "Ga", 5: "Es", 6: "Li", 7: "St", 8: "Ao",
    9: "Po", 10: "Pa", 11: "RAG", 12: "LAG", 13: "Du", 14: "Bl", 15: "P/U",
}
"""The paper's abbreviations of the 15 organs (tables of paper ``000``)."""

AMOS_LABEL_IDS: tuple[int, ...] = tuple(AMOS_LABELS)
AMOS_SPLIT: tuple[int, int, int] = (180, 20, 21)
AMOS_MAX_CT_ID = 500
_EXPECTED_IMAGE = "a single-channel 3D CT volume"

_ID_RE = re.compile(r"(\d+)$")


def _case_id(path: str) -> str:
    name = os.path.basename(path)
    for suffix in (".nii.gz", ".nii"):
        if name.endswith(suffix):
            return name[: -len(suffix)]
    return name


def amos_cases(dataset_dir: str | os.PathLike, validate: bool = False) -> list[dict]:
    """All usable AMOS cases (CT, labelled), sorted by case id, as datalist dicts.

    Args:
        dataset_dir: folder holding ``dataset.json``.
        validate: also check every image/label header (readable, complete, same shape and
            affine). Defaults to False.

    Raises:
        DatasetError: missing or malformed ``dataset.json``, entries pointing outside
            ``dataset_dir``, duplicate case ids, or (with ``validate``) a bad file.
    """
    root = os.fspath(dataset_dir)
    meta_path = os.path.join(root, "dataset.json")
    if not os.path.isfile(meta_path):
        raise DatasetError(
            f"AMOS: no dataset.json in {root!r}. Pass the folder of the AMOS22 release (with dataset.json, "
            "imagesTr/ and labelsTr/) as dataset_dir (bundles: --dataset_dir /path/to/amos22), or use the "
            "synthetic demo: `monai-cwcd demo-data amos`, or the bundle's demo.json overlay."
        )
    try:
        with open(meta_path) as f:
            meta = json.load(f)
    except (OSError, json.JSONDecodeError) as e:
        raise DatasetError(f"AMOS: cannot parse {meta_path}: {e}") from e
    if not isinstance(meta, dict) or not isinstance(meta.get("training", []), list):
        raise DatasetError(f"AMOS: {meta_path} must hold an object with a 'training' list.")
    cases, seen, excluded = [], [], 0
    for source in ("training", "validation"):
        for entry in meta.get(source, []) or []:
            if not isinstance(entry, dict) or "image" not in entry:
                raise DatasetError(f"AMOS: malformed {source!r} entry {entry!r} in {meta_path}.")
            if not entry.get("label"):
                continue
            case_id = _case_id(entry["image"])
            m = _ID_RE.search(case_id)
            if m is not None and int(m.group(1)) > AMOS_MAX_CT_ID:
                excluded += 1
                continue
            image = resolve_inside(root, entry["image"], case_id, f"dataset.json {source!r}")
            label = resolve_inside(root, entry["label"], case_id, f"dataset.json {source!r}")
            seen.append((case_id, image))
            cases.append({"image": image, "label": label, "case_id": case_id})
    check_unique_ids(seen, "AMOS")
    if excluded:
        logger.info("AMOS: %d MRI case(s) (id > %d) excluded; %d CT case(s) kept.", excluded, AMOS_MAX_CT_ID, len(cases))
    if validate:
        for c in cases:
            check_pair(c["image"], c["label"], c["case_id"], expected=_EXPECTED_IMAGE)
    return sorted(cases, key=lambda c: c["case_id"])


def amos_datalist(
    dataset_dir: str | os.PathLike,
    split: str,
    split_counts: Sequence[int] | None = None,
    validate: bool = True,
) -> list[dict]:
    """AMOS datalist of one split: ``[{"image": path, "label": path, "case_id": str}, ...]``.

    The CT cases are sorted, shuffled with a fixed seed and split 180/20/21 (scaled proportionally,
    at least one case per split, when the dataset has another size than the paper's 221).

    Example:
        >>> from monai_cwcd.data import amos_datalist, ensure_demo_dataset  # doctest: +SKIP
        >>> train = amos_datalist(ensure_demo_dataset("amos"), "train")  # doctest: +SKIP

    Args:
        dataset_dir: folder holding ``dataset.json``.
        split: ``"train"``, ``"val"`` or ``"test"``.
        split_counts: explicit (train, val, test) counts. Defaults to None (the paper's).
        validate: check the headers of this split's files. Defaults to True.

    Raises:
        DatasetError: see :func:`amos_cases`; too few cases for the split.
    """
    cases = {c["case_id"]: c for c in amos_cases(dataset_dir)}
    ids = split_cases(list(cases), split, AMOS_SPLIT, split_counts, dataset="AMOS")
    out = [cases[i] for i in ids]
    if validate:
        for c in out:
            check_pair(c["image"], c["label"], c["case_id"], expected=_EXPECTED_IMAGE)
    return out
