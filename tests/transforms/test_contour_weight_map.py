from __future__ import annotations

import numpy as np
import pytest
import torch
from monai.data import MetaTensor

from monai_cwcd.transforms import (
    ContourWeightMap,
    ContourWeightMapd,
    ContourWeightMapD,
    ContourWeightMapDict,
)

from contour_reference import blob_labels, scipy_contour, scipy_per_class

DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
SHAPES = {2: (17, 19), 3: (9, 10, 11)}


@pytest.mark.parametrize("ndim", [2, 3])
@pytest.mark.parametrize("k", [1, 2, 3, 4, 5])
@pytest.mark.parametrize("it", [1, 2, 3])
@pytest.mark.parametrize("edge", [False, True])
def test_equals_scipy_erosion_per_class(ndim, k, it, edge):
    label = blob_labels(SHAPES[ndim], 4, seed=k * 10 + it)
    ref = scipy_per_class(label, 4, k, it, edge)
    per_class = ContourWeightMap(k, it, per_class=True, num_classes=4, edge_is_contour=edge)(label[None])
    np.testing.assert_array_equal(per_class, ref.astype(np.uint8))
    own = ContourWeightMap(k, it, per_class=False, edge_is_contour=edge)(label[None])
    assert own.shape == (1, *SHAPES[ndim]) and own.dtype == np.uint8
    np.testing.assert_array_equal(own[0], ref.any(0).astype(np.uint8))
    if k == 1:
        assert not own.any() and not per_class.any()


@pytest.mark.parametrize("ndim", [2, 3])
@pytest.mark.parametrize("k,it", [(2, 1), (3, 1), (3, 2), (5, 1)])
@pytest.mark.parametrize("edge", [False, True])
def test_multi_channel_is_per_channel(ndim, k, it, edge):
    # overlapping regions, like BraTS TC/WT/ET
    masks = np.stack([blob_labels(SHAPES[ndim], 2, seed=s) > 0 for s in range(3)])
    masks[1] |= masks[0]
    out = ContourWeightMap(k, it, edge_is_contour=edge)(torch.as_tensor(masks.astype(np.float32)))
    assert out.shape == masks.shape and out.dtype == torch.uint8
    ref = np.stack([scipy_contour(m, k, it, edge) for m in masks])
    np.testing.assert_array_equal(out.numpy(), ref.astype(np.uint8))


def test_multi_label_switch_on_single_channel():
    mask = np.zeros((1, 8, 8), dtype=np.uint8)
    mask[0, 2:6, 2:6] = 1
    binary = ContourWeightMap(multi_label=True)(mask)
    np.testing.assert_array_equal(binary[0], scipy_contour(mask[0] > 0, 3, 1, False).astype(np.uint8))
    index = ContourWeightMap(multi_label=False)(mask)
    # as a {0, 1} class-index map the background side of the boundary is a contour too
    np.testing.assert_array_equal(index[0], scipy_per_class(mask[0], 2, 3, 1, False).any(0).astype(np.uint8))
    assert index.sum() > binary.sum() and np.all(index >= binary)


def test_journal_kernel_two_marks_low_index_faces_of_cube():
    label = np.zeros((1, 8, 8, 8), dtype=np.int64)
    label[0, 2:6, 2:6, 2:6] = 1
    out = ContourWeightMap(kernel_size=2, iterations=1, per_class=True)(label)[1]
    cube = np.zeros((8, 8, 8), dtype=bool)
    cube[2:6, 2:6, 2:6] = True
    low_faces = cube.copy()
    low_faces[3:6, 3:6, 3:6] = False  # everything but the faces at index 2 on each axis
    np.testing.assert_array_equal(out, low_faces.astype(np.uint8))
    assert not out[5, 3:6, 3:6].any() and out[2, 3:6, 3:6].all()


def test_conference_setting_three_by_three_six_iterations():
    label = blob_labels((30, 31, 12), 3, seed=3)
    label[5:25, 5:25, :] = 1
    out = ContourWeightMap(kernel_size=3, iterations=6, per_class=True, edge_is_contour=True)(label[None])
    np.testing.assert_array_equal(out, scipy_per_class(label, 3, 3, 6, True).astype(np.uint8))


def test_num_classes_and_extra_channels():
    label = np.zeros((1, 5, 5), dtype=np.int64)
    label[0, 1:4, 1:4] = 1
    assert ContourWeightMap(per_class=True)(label).shape == (2, 5, 5)
    out = ContourWeightMap(per_class=True, num_classes=4)(label)
    assert out.shape == (4, 5, 5) and not out[2:].any()


@pytest.mark.parametrize("offset", [0, 290])  # uint8 fast path and labels beyond 255
def test_float_label_from_loader_is_accepted(offset):
    label = blob_labels((12, 13), 3, seed=1) + offset
    out_f = ContourWeightMap()(label[None].astype(np.float32))
    out_i = ContourWeightMap()(label[None])
    np.testing.assert_array_equal(out_f, out_i)
    assert out_f.dtype == np.uint8


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("ndim", [2, 3])
def test_types_devices_and_meta(device, ndim):
    label = blob_labels(SHAPES[ndim], 3, seed=2)[None]
    ref = ContourWeightMap(per_class=True)(label)
    t = ContourWeightMap(per_class=True)(torch.as_tensor(label, device=device))
    assert type(t) is torch.Tensor and t.device.type == device and t.dtype == torch.uint8
    np.testing.assert_array_equal(t.cpu().numpy(), ref)
    affine = torch.diag(torch.tensor([2.0, 3.0, 4.0, 1.0]))
    affine[:3, 3] = torch.tensor([10.0, -5.0, 1.0])
    meta = MetaTensor(torch.as_tensor(label, dtype=torch.float32, device=device), affine=affine,
                      meta={"filename_or_obj": "case_7.nii.gz"})
    m = ContourWeightMap(per_class=True)(meta)
    assert isinstance(m, MetaTensor) and m.dtype == torch.uint8 and m.device.type == device
    torch.testing.assert_close(m.affine, meta.affine)
    assert m.meta["filename_or_obj"] == "case_7.nii.gz"
    np.testing.assert_array_equal(m.as_tensor().cpu().numpy(), ref)


@pytest.mark.parametrize(
    "kwargs,label,match",
    [
        ({}, np.array([[[0, -1], [1, 2]]]), r"min -1.*shape \(1, 2, 2\)"),
        ({}, np.array([[[0.0, 1.5], [1.0, 2.0]]]), r"non-integral value 1.5.*shape \(1, 2, 2\)"),
        ({}, np.array([[[0.0, -3.0], [1.0, 2.0]]], dtype=np.float32), r"min -3"),
        ({}, np.array([[[0.0, np.nan], [1.0, 2.0]]]), r"non-integral value nan"),
        ({"num_classes": 2}, np.array([[[0, 1], [1, 2]]]), r"num_classes=2.*max 2.*shape \(1, 2, 2\)"),
        ({}, np.zeros((1, 1, 4, 4, 4)), r"\(C, H, W\) or \(C, H, W, D\).*\(1, 1, 4, 4, 4\)"),
        ({}, np.zeros((4,)), r"got shape \(4,\)"),
    ],
)
def test_bad_labels(kwargs, label, match):
    with pytest.raises(ValueError, match=match):
        ContourWeightMap(**kwargs)(label)


@pytest.mark.parametrize(
    "kwargs,match",
    [
        ({"kernel_size": 0}, "kernel_size must be >= 1, got 0"),
        ({"iterations": 0}, "iterations must be >= 1, got 0"),
        ({"num_classes": 0}, "num_classes must be None or an integer >= 1, got 0"),
    ],
)
def test_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        ContourWeightMap(**kwargs)
    with pytest.raises(ValueError, match=match):
        ContourWeightMapd(keys="label", **kwargs)


def test_dictionary_version():
    assert ContourWeightMapD is ContourWeightMapd and ContourWeightMapDict is ContourWeightMapd
    label = blob_labels((10, 11, 12), 3, seed=4)[None].astype(np.float32)
    affine = torch.diag(torch.tensor([1.5, 1.5, 2.0, 1.0]))
    data = {"label": MetaTensor(label, affine=affine), "pred": MetaTensor(label.copy(), affine=affine),
            "image": np.zeros(3)}
    out = ContourWeightMapd(keys=["label", "pred"], kernel_size=2, iterations=1, edge_is_contour=True)(data)
    assert set(out) == {"label", "pred", "image", "contour_label", "contour_pred"}
    assert out["label"] is data["label"]
    expected = ContourWeightMap(2, 1, edge_is_contour=True)(label)
    np.testing.assert_array_equal(out["contour_label"].numpy(), expected)
    assert out["contour_label"].dtype == torch.uint8
    torch.testing.assert_close(out["contour_label"].affine, affine.double())
    # an independent copy of the metadata
    out["label"].affine[0, 0] = 9.0
    assert out["contour_label"].affine[0, 0] == 1.5
    custom = ContourWeightMapd(keys="label", contour_key="w_{key}")({"label": label})
    assert isinstance(custom["w_label"], np.ndarray)
    missing = ContourWeightMapd(keys=["label", "other"], allow_missing_keys=True)({"label": label})
    assert "contour_other" not in missing and "contour_label" in missing
    with pytest.raises(KeyError):
        ContourWeightMapd(keys=["label", "other"])({"label": label})


def test_dictionary_output_key_errors():
    with pytest.raises(ValueError, match=r"contour_key='contour' maps the keys \['a', 'b'\]"):
        ContourWeightMapd(keys=["a", "b"], contour_key="contour")
    with pytest.raises(ValueError, match="would overwrite an input key"):
        ContourWeightMapd(keys="label", contour_key="{key}")
