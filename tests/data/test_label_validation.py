"""ValidateLabel(d): labels outside the label set fail at load time, naming case, file, values; PadToPatch(d) logs what it pads."""

from __future__ import annotations

import logging

import nibabel as nib
import numpy as np
import pytest
import torch
from monai.transforms import Compose, EnsureChannelFirstd, LoadImaged

from monai_cwcd.data import BRATS_LABEL_IDS, DatasetError, ValidateLabel, ValidateLabeld, brats_datalist


def test_out_of_set_label_file(dataset_copy):
    root = dataset_copy("brats")
    entry = brats_datalist(root, "val")[0]
    img = nib.load(entry["label"])
    data = np.asarray(img.dataobj).copy()
    data[0, 0, 0], data[0, 0, 1] = 3, 7
    nib.save(nib.Nifti1Image(data, img.affine), entry["label"])
    load = Compose([LoadImaged(["image", "label"]), EnsureChannelFirstd(["image", "label"])])
    with pytest.raises(DatasetError, match=rf"case {entry['case_id']}: label file .*{entry['case_id']}_seg\.nii\.gz holds values \[3, 7\] outside the label set \[0, 1, 2, 4\]"):
        ValidateLabeld("label", labels=BRATS_LABEL_IDS)(load(entry))


def test_valid_passes_through_unchanged(pristine):
    entry = brats_datalist(pristine["brats"], "val")[0]
    d = LoadImaged(["label"])(entry)
    out = ValidateLabeld("label", labels=BRATS_LABEL_IDS)(d)
    assert out["label"] is d["label"]


def test_array_version():
    x = np.array([[0, 1, 2]])
    assert ValidateLabel(labels=(0, 1, 2))(x) is x
    with pytest.raises(DatasetError, match=r"label file <array> holds values \[0\.5\]"):
        ValidateLabel(labels=(0, 1))(torch.tensor([[0.0, 0.5]]))
    with pytest.raises(DatasetError, match=r"values \[20, 21, 22, 23, 24, 25, 26, 27, 28, 29\] \(and 2 more\)"):
        ValidateLabel(labels=range(20))(np.arange(32))
    with pytest.raises(ValueError, match="at least one"):
        ValidateLabel(labels=())


def test_pad_to_patch_logs_and_pads(caplog):
    from monai.data import MetaTensor

    from monai_cwcd.data import PadToPatch, PadToPatchd

    img = MetaTensor(torch.ones(1, 6, 8, 3), meta={"filename_or_obj": "/data/case_7.nii.gz"})
    with caplog.at_level(logging.WARNING, logger="monai_cwcd.data"):
        out = PadToPatchd(["image", "label"], spatial_size=(4, 8, 5))(
            {"image": img, "label": img.clone(), "case_id": "case_7"}
        )
    assert out["image"].shape == (1, 6, 8, 5) and out["label"].shape == (1, 6, 8, 5)
    assert out["image"][0, 0, 0].tolist() == [0.0, 1.0, 1.0, 1.0, 0.0]  # symmetric zero padding, like SpatialPadd
    assert len(caplog.records) == 1  # one message per sample, not per key
    msg = caplog.records[0].getMessage()
    assert "case case_7: image /data/case_7.nii.gz of spatial size (6, 8, 3)" in msg
    assert "smaller than the patch (4, 8, 5) along axis [2]" in msg and "keys ['image', 'label']" in msg
    # invertible like SpatialPadd
    inv = PadToPatchd(["image"], spatial_size=(4, 8, 5))
    assert inv.inverse(inv({"image": img.clone()}))["image"].shape == (1, 6, 8, 3)

    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="monai_cwcd.data"):
        assert PadToPatch(spatial_size=(2, 2, 2))(img).shape == img.shape  # large enough: no padding, no log
        assert PadToPatch(spatial_size=(-1, 10, -1))(img).shape == (1, 6, 10, 3)
    assert len(caplog.records) == 1 and "along axis [1]" in caplog.records[0].getMessage()
