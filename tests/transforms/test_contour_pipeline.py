"""ContourWeightMapd inside a real MONAI pipeline: NIfTI loading, PersistentDataset caching, and the
contour key travelling through spatial transforms (nearest interpolation) aligned with the label."""

from __future__ import annotations

import nibabel as nib
import numpy as np
import pytest
import torch
from monai.data import MetaTensor, PersistentDataset
from monai.transforms import (
    Compose,
    EnsureChannelFirstd,
    LoadImaged,
    RandFlipd,
    RandRotated,
    RandSpatialCropd,
    Spacingd,
)

from contour_reference import blob_labels
from monai_cwcd.transforms import ContourWeightMap, ContourWeightMapd

SHAPE = (20, 22, 14)
SPACING = (1.5, 1.5, 2.0)


def write_case(root):
    label = blob_labels(SHAPE, 4, seed=11).astype(np.float32)
    image = label * 10 + np.random.default_rng(0).normal(size=SHAPE).astype(np.float32)
    index = np.arange(1, label.size + 1, dtype=np.float32).reshape(SHAPE)  # source voxel id, 0 = padding
    affine = np.diag([*SPACING, 1.0])
    affine[:3, 3] = (-12.0, 7.0, 3.0)
    paths = {}
    for name, arr in {"image": image, "label": label, "index": index}.items():
        paths[name] = str(root / f"case0_{name}.nii.gz")
        nib.save(nib.Nifti1Image(arr, affine), paths[name])
    return paths, label


def load():
    return [
        LoadImaged(keys=["image", "label", "index"], image_only=True),
        EnsureChannelFirstd(keys=["image", "label", "index"]),
    ]


def augment(keys, mode):
    return [
        RandRotated(keys=keys, range_x=0.4, range_z=0.3, prob=1.0, mode=mode, padding_mode="zeros"),
        RandFlipd(keys=keys, prob=1.0, spatial_axis=(0, 2)),
        RandSpatialCropd(keys=keys, roi_size=(20, 20, 12), random_size=False),
    ]


def pipeline():
    # the contour is computed on the native grid and resampled with the label ("contour_{key}": a key
    # "label_*" would be taken for a meta dict by Spacingd, see the next test)
    keys = ["image", "label", "contour_label", "index"]
    nearest = ("bilinear", "nearest", "nearest", "nearest")
    return Compose(
        [
            *load(),
            ContourWeightMapd(keys="label", kernel_size=3, iterations=1, contour_key="contour_{key}"),
            Spacingd(keys=keys, pixdim=(1.0, 1.0, 1.5), mode=nearest),
            *augment(keys, nearest),
        ]
    )


def test_persistent_cache_and_spatial_alignment(tmp_path):
    paths, label_src = write_case(tmp_path)
    contour_src = ContourWeightMap()(label_src[None])[0]
    cache_dir = tmp_path / "cache"
    ds = PersistentDataset(data=[paths], transform=pipeline(), cache_dir=cache_dir)

    ds.transform.set_random_state(seed=3)
    first = ds[0]
    cache_files = list(cache_dir.glob("*.pt"))
    assert len(cache_files) == 1
    cached = torch.load(cache_files[0], weights_only=False)
    assert "contour_label" in cached  # the contour is cached (resampling by Spacingd made it float 0/1)

    for p in paths.values():  # the second epoch must come from the cache, not from the files
        (tmp_path / p).unlink()
    ds.transform.set_random_state(seed=3)
    second = ds[0]
    for key in ("label", "contour_label", "index"):
        torch.testing.assert_close(second[key], first[key])

    label, contour, index = first["label"], first["contour_label"], first["index"]
    assert contour.shape == label.shape == (1, 20, 20, 12)
    assert isinstance(contour, MetaTensor)
    torch.testing.assert_close(contour.affine, label.affine)
    assert set(torch.unique(contour).tolist()) <= {0, 1} and contour.sum() > 0  # still binary
    # aligned: every output voxel carries the contour value of the source voxel its label came from
    idx = index.as_tensor().round().long()[0]
    valid = idx > 0
    src = idx.clamp_min(1) - 1
    label_from_src = torch.as_tensor(label_src.reshape(-1))[src]
    contour_from_src = torch.as_tensor(contour_src.reshape(-1)).float()[src]
    assert valid.float().mean() > 0.5
    torch.testing.assert_close(label[0][valid].float(), label_from_src[valid])
    torch.testing.assert_close(contour[0][valid].float(), contour_from_src[valid])
    assert not contour[0][~valid].any() and not label[0][~valid].any()


def test_default_key_after_spacing_then_augmentation(tmp_path):
    """The recommended order: resample, then compute the contour in the training grid, then augment
    with the contour key listed (nearest). MONAI's Spacingd treats every key "label_*" as a meta dict
    of "label" for NIfTI input, so the default "label_contour" must come after Spacingd."""
    paths, _ = write_case(tmp_path)
    contour_first = Compose([*load(), ContourWeightMapd(keys="label"), Spacingd(keys="label", pixdim=(1.0, 1.0, 1.5))])
    with pytest.raises(RuntimeError, match="Spacingd"):
        contour_first(paths)

    keys = ["label", "label_contour", "index"]
    spaced = Compose([*load(), Spacingd(keys=keys[::2], pixdim=(1.0, 1.0, 1.5), mode="nearest"),
                      ContourWeightMapd(keys="label")])(paths)
    np.testing.assert_array_equal(spaced["label_contour"].numpy(), ContourWeightMap()(spaced["label"].numpy()))
    torch.testing.assert_close(spaced["label_contour"].affine, spaced["label"].affine)
    # spaced voxel id, so the augmented output can be traced back to the spaced grid
    spaced["index"] = MetaTensor(
        torch.arange(1, spaced["label"].numel() + 1, dtype=torch.float32).reshape(spaced["label"].shape),
        meta=dict(spaced["label"].meta),
    )
    aug = Compose(augment(keys, "nearest"))
    aug.set_random_state(seed=5)
    out = aug(spaced)
    idx = out["index"].as_tensor().round().long()[0]
    valid = idx > 0
    src = (idx.clamp_min(1) - 1)[valid]
    assert set(torch.unique(out["label_contour"]).tolist()) <= {0, 1}
    torch.testing.assert_close(out["label_contour"].affine, out["label"].affine)
    torch.testing.assert_close(out["label"][0][valid], spaced["label"].as_tensor().reshape(-1)[src])
    np.testing.assert_array_equal(
        out["label_contour"][0][valid].numpy(), spaced["label_contour"].as_tensor().reshape(-1)[src].numpy()
    )
