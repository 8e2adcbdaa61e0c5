"""ValidateLabel(d): labels outside the dataset's label set fail at load time, naming case, file, values."""

from __future__ import annotations

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
