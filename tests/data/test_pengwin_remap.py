"""PENGWIN raw fragment labels -> the paper's 14 classes."""

from __future__ import annotations

import logging

import numpy as np
import pytest
import torch
from monai.data import MetaTensor

from monai_cwcd.data import PENGWIN_CLASSES, PENGWIN_REMAP_TABLE, PengwinLabelRemap, PengwinLabelRemapd

EXPECTED = {0: 0, 1: 1, 2: 2, 3: 3, 4: 4, 11: 5, 12: 6, 13: 7, 14: 8, 15: 9, 16: 10, 21: 11, 22: 12, 23: 13, 24: 14}
MERGED = {**{r: 4 for r in range(5, 11)}, **{r: 10 for r in range(17, 21)}, **{r: 14 for r in range(25, 31)}}


def test_table():
    assert {r: int(PENGWIN_REMAP_TABLE[r]) for r in range(31)} == {**EXPECTED, **MERGED}
    assert len(PENGWIN_CLASSES) == 15 and PENGWIN_CLASSES[5] == "left hipbone fragment 1"
    assert PENGWIN_CLASSES[14] == "right hipbone fragment 4"


@pytest.mark.parametrize("kind", ["numpy", "torch", "meta", "float"])
def test_types_and_values(kind):
    raw = np.arange(31).reshape(1, 31, 1)
    expected = PENGWIN_REMAP_TABLE[raw]
    if kind == "numpy":
        out = PengwinLabelRemap()(raw.astype(np.int16))
        assert isinstance(out, np.ndarray) and out.dtype == np.int16
    elif kind == "torch":
        out = PengwinLabelRemap()(torch.as_tensor(raw, dtype=torch.uint8))
        assert type(out) is torch.Tensor and out.dtype == torch.uint8
    elif kind == "meta":
        src = MetaTensor(torch.as_tensor(raw, dtype=torch.float32), meta={"filename_or_obj": "x.mha"})
        out = PengwinLabelRemap()(src)
        assert isinstance(out, MetaTensor) and out.meta["filename_or_obj"] == "x.mha"
    else:
        out = PengwinLabelRemap()(raw.astype(np.float32))
        assert out.dtype == np.float32
    np.testing.assert_array_equal(np.asarray(out), expected)


def test_dict_and_merge_is_logged(caplog):
    label = MetaTensor(torch.tensor([[[0, 1, 5, 17, 21, 30]]]), meta={"filename_or_obj": "/data/042.mha"})
    with caplog.at_level(logging.INFO, logger="monai_cwcd.data"):
        out = PengwinLabelRemapd("label")({"label": label, "image": 1})
    assert out["label"].tolist() == [[[0, 1, 4, 10, 11, 14]]] and out["image"] == 1
    assert "/data/042.mha" in caplog.text and "[5, 17, 30]" in caplog.text and "[4, 10, 14]" in caplog.text
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="monai_cwcd.data"):
        PengwinLabelRemap()(np.array([[0, 1, 11, 21]]))
    assert "merged" not in caplog.text


def test_bad_values():
    with pytest.raises(ValueError, match=r"PENGWIN label /d/7\.mha: values \[31, 40\] outside the raw label set 0-30"):
        PengwinLabelRemap()(MetaTensor(torch.tensor([[0, 31, 40]]), meta={"filename_or_obj": "/d/7.mha"}))
    with pytest.raises(ValueError, match="non-integer"):
        PengwinLabelRemap()(np.array([[0.5, 1.0]]))
    with pytest.raises(ValueError, match=r"values \[-1\]"):
        PengwinLabelRemap()(np.array([[-1, 1]]))
