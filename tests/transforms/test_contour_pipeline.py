"""ContourWeightMapd inside real MONAI pipelines: NIfTI loading, PersistentDataset caching, the contour
key travelling through MONAI's spatial transforms (before or after each of them), Invertd, and where a
cached contour equals the contour recomputed on the transformed label.

A voxel-id image ("index", source voxel number + 1, 0 = padding) goes through the same transforms with
nearest interpolation, so every output voxel can be traced back to the source voxel it came from."""

from __future__ import annotations

import nibabel as nib
import numpy as np
import pytest
import torch
from monai.data import MetaTensor, PersistentDataset
from monai.transforms import (
    Compose,
    EnsureChannelFirstd,
    Invertd,
    LoadImaged,
    Orientationd,
    RandAffined,
    RandCropByPosNegLabeld,
    RandFlipd,
    RandRotate90d,
    RandRotated,
    RandSpatialCropd,
    Resized,
    Spacingd,
)

from contour_reference import blob_labels
from monai_cwcd.transforms import ContourWeightMap, ContourWeightMapd

SHAPE = (20, 22, 14)
SPACING = (1.5, 1.5, 2.0)
LOADED = ["image", "label", "index"]


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
    return [LoadImaged(keys=LOADED, image_only=True), EnsureChannelFirstd(keys=LOADED)]


# every spatial transform of issue 9 item 8, on the label, its tracer and (when listed) the contour;
# "exact": the transform only moves voxels (no interpolation, no crop), "crop": it crops, else it resamples
SPATIAL = {
    "Spacingd": ("resample", lambda keys: Spacingd(keys=keys, pixdim=(1.0, 1.25, 1.5), mode="nearest")),
    "Orientationd": ("exact", lambda keys: Orientationd(keys=keys, axcodes="PLI", labels=None)),
    "RandCropByPosNegLabeld": ("crop", lambda keys: RandCropByPosNegLabeld(
        keys=keys, label_key="label", spatial_size=(12, 12, 8), pos=1, neg=1, num_samples=2)),
    "RandFlipd": ("exact", lambda keys: RandFlipd(keys=keys, prob=1.0, spatial_axis=(0, 2))),
    "RandRotate90d": ("exact", lambda keys: RandRotate90d(keys=keys, prob=1.0, max_k=3, spatial_axes=(0, 1))),
    "RandAffined": ("resample", lambda keys: RandAffined(
        keys=keys, prob=1.0, rotate_range=(0.0, 0.0, 0.4), scale_range=0.1, mode="nearest", padding_mode="zeros")),
    "Resized": ("resample", lambda keys: Resized(keys=keys, spatial_size=(16, 26, 10), mode="nearest")),
}


def _items(out):
    return out if isinstance(out, list) else [out]


def _run(transforms, paths, seed=7):
    pipeline = Compose(transforms)
    pipeline.set_random_state(seed=seed)
    return _items(pipeline(dict(paths)))


def _interior(shape, k, it):
    """Voxels whose whole erosion window (``it`` erosions by a box of side ``k``) lies inside ``shape``."""
    lo, hi = (k // 2) * it, ((k - 1) // 2) * it
    inside = np.zeros(shape, bool)
    inside[tuple(slice(lo, s - hi) for s in shape)] = True
    return inside


@pytest.mark.parametrize("name", list(SPATIAL))
@pytest.mark.parametrize("k", [2, 3])
def test_contour_before_each_spatial_transform(tmp_path, name, k):
    """ContourWeightMapd on the loaded label, then the MONAI transform with the contour key listed. The
    cached contour stays aligned with the label everywhere (voxel-id trace); it equals the contour
    recomputed on the transformed label: everywhere for voxel moves with an odd kernel, inside the crop
    away from its border for crops; not in general for even kernels under flips (the one-sided contour
    changes side) nor for interpolating transforms (nearest resampling changes the contour thickness)."""
    paths, label_src = write_case(tmp_path)
    kind, make = SPATIAL[name]
    contour_src = ContourWeightMap(kernel_size=k)(label_src[None])[0]
    keys = ["label", "contour_label", "index"]
    items = _run([*load(), ContourWeightMapd(keys="label", kernel_size=k), make(keys)], paths)
    for item in items:
        label, cached, index = item["label"], item["contour_label"], item["index"]
        assert isinstance(cached, MetaTensor) and cached.shape == label.shape
        torch.testing.assert_close(cached.affine, label.affine)
        cached = cached.as_tensor().numpy()[0].astype(np.uint8)
        assert set(np.unique(cached)) <= {0, 1}
        # aligned: each voxel carries the cached contour of the source voxel its label came from
        idx = index.as_tensor().numpy()[0].round().astype(np.int64)
        valid = idx > 0
        assert valid.mean() > 0.5
        np.testing.assert_array_equal(label.as_tensor().numpy()[0][valid], label_src.reshape(-1)[idx[valid] - 1])
        np.testing.assert_array_equal(cached[valid], contour_src.reshape(-1)[idx[valid] - 1])
        assert not cached[~valid].any()

        recomputed = ContourWeightMap(kernel_size=k)(label.as_tensor().numpy())[0]
        if kind == "exact" and k % 2:
            np.testing.assert_array_equal(cached, recomputed)
        elif kind == "exact" and name != "RandRotate90d":
            # every seed used here flips an axis: k = 2 marks the low-index faces, the flipped map the high ones
            assert (cached != recomputed).any()
        elif kind == "crop":
            inside = _interior(cached.shape, k, 1)
            np.testing.assert_array_equal(cached[inside], recomputed[inside])
        elif kind == "resample":
            assert (cached != recomputed).any()  # documented: nearest resampling changes the contour


@pytest.mark.parametrize("name", list(SPATIAL))
def test_contour_after_each_spatial_transform(tmp_path, name):
    """ContourWeightMapd after the MONAI transform: the contour of the transformed label, exactly."""
    paths, _ = write_case(tmp_path)
    _, make = SPATIAL[name]
    items = _run([*load(), make(["label", "index"]), ContourWeightMapd(keys="label", kernel_size=2)], paths)
    for item in items:
        expected = ContourWeightMap(kernel_size=2)(item["label"].numpy())
        np.testing.assert_array_equal(item["contour_label"].numpy(), expected)
        torch.testing.assert_close(item["contour_label"].affine, item["label"].affine)


def test_readme_snippet_followed_by_spacing(tmp_path):
    """Issue 9 item 8: the README's pipeline with Spacingd appended (keys named "label_*" are taken for
    metadata dicts by MONAI's Spacingd, so the default key is "contour_label")."""
    paths, _ = write_case(tmp_path)
    keys = ["image", "label", "contour_label"]
    out = _run([
        LoadImaged(keys=["image", "label"]), EnsureChannelFirstd(keys=["image", "label"]),
        ContourWeightMapd(keys="label", kernel_size=3, iterations=1),
        RandFlipd(keys=keys, prob=1.0, spatial_axis=0),
        Spacingd(keys=keys, pixdim=(1.0, 1.0, 1.0), mode=("bilinear", "nearest", "nearest")),
    ], {"image": paths["image"], "label": paths["label"]})[0]
    assert out["contour_label"].shape == out["label"].shape == (1, 30, 32, 27)
    with pytest.raises(RuntimeError, match="Spacingd"):  # MONAI's behaviour with a "label_*" image key
        _run([*load(), ContourWeightMapd(keys="label", contour_key="{key}_contour"),
              Spacingd(keys="label", pixdim=(1.0, 1.0, 1.5))], paths)


def test_invertd_with_the_contour_key(tmp_path):
    """Invertd undoes the whole pipeline on the contour key as on a prediction (``orig_keys="label"``:
    the contour carries a copy of the label's applied operations, like MONAI's CopyItemsd), and the
    extra key never breaks inverting a prediction. Voxel moves and crops invert exactly; resampling
    inverts onto the source grid."""
    paths, label_src = write_case(tmp_path)
    contour_src = ContourWeightMap(kernel_size=3)(label_src[None])
    keys = ["label", "contour_label"]
    exact = Compose([
        *load(), Orientationd(keys=keys[:1], axcodes="PLI", labels=None), ContourWeightMapd(keys="label"),
        RandFlipd(keys=keys, prob=1.0, spatial_axis=(0, 1)), RandRotate90d(keys=keys, prob=1.0, max_k=3),
        RandSpatialCropd(keys=keys, roi_size=(14, 12, 10), random_size=False),
    ])
    resampled = Compose([
        *load(), ContourWeightMapd(keys="label"), Spacingd(keys=keys, pixdim=(1.0, 1.0, 1.5), mode="nearest"),
        RandAffined(keys=keys, prob=1.0, rotate_range=(0.0, 0.0, 0.3), mode="nearest", padding_mode="zeros"),
        Resized(keys=keys, spatial_size=(24, 24, 16), mode="nearest"),
    ])
    for pipeline, is_exact in ((exact, True), (resampled, False)):
        pipeline.set_random_state(seed=2)
        item = pipeline(dict(paths))
        item["pred"] = item["label"].clone()
        inverted = Invertd(keys=["pred", "contour_label"], transform=pipeline, orig_keys="label",
                           nearest_interp=True)(item)
        for key in ("pred", "contour_label"):
            assert inverted[key].shape == (1, *SHAPE)
            torch.testing.assert_close(inverted[key].affine, inverted["pred"].affine)
        np.testing.assert_allclose(inverted["pred"].affine[:3, :3].numpy(), np.diag(SPACING), atol=1e-6)
        pred, contour = inverted["pred"].numpy(), inverted["contour_label"].numpy()
        if is_exact:  # the crop keeps a part (its foreground checked here); the rest is zero padding
            kept = pred != 0
            assert kept.sum() > 0.15 * pred.size
            np.testing.assert_array_equal(pred[kept], label_src[None][kept])
            np.testing.assert_array_equal(contour[kept], contour_src[kept])
        else:
            assert set(np.unique(contour)) <= {0, 1} and contour.sum() > 0


def test_persistent_cache_and_spatial_alignment(tmp_path):
    """The contour computed on the native grid is cached by PersistentDataset (read back with the source
    files deleted) and resampled, rotated, flipped and cropped with the label."""
    paths, label_src = write_case(tmp_path)
    contour_src = ContourWeightMap()(label_src[None])[0]
    keys = ["image", "label", "contour_label", "index"]
    nearest = ("bilinear", "nearest", "nearest", "nearest")
    pipeline = Compose([
        *load(), ContourWeightMapd(keys="label", kernel_size=3, iterations=1),
        Spacingd(keys=keys, pixdim=(1.0, 1.0, 1.5), mode=nearest),
        RandRotated(keys=keys, range_x=0.4, range_z=0.3, prob=1.0, mode=nearest, padding_mode="zeros"),
        RandFlipd(keys=keys, prob=1.0, spatial_axis=(0, 2)),
        RandSpatialCropd(keys=keys, roi_size=(20, 20, 12), random_size=False),
    ])
    cache_dir = tmp_path / "cache"
    ds = PersistentDataset(data=[paths], transform=pipeline, cache_dir=cache_dir)

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
    torch.testing.assert_close(contour.affine, label.affine)
    assert set(torch.unique(contour).tolist()) <= {0, 1} and contour.sum() > 0  # still binary
    idx = index.as_tensor().round().long()[0]
    valid = idx > 0
    src = idx.clamp_min(1) - 1
    assert valid.float().mean() > 0.5
    torch.testing.assert_close(label[0][valid].float(), torch.as_tensor(label_src.reshape(-1))[src][valid])
    torch.testing.assert_close(contour[0][valid].float(), torch.as_tensor(contour_src.reshape(-1)).float()[src][valid])
    assert not contour[0][~valid].any() and not label[0][~valid].any()
