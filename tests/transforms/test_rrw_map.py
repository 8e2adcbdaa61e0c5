from __future__ import annotations

import numpy as np
import pytest
import torch
from monai.data import MetaTensor
from scipy import ndimage

from monai_cwcd.transforms import RRWMap, RRWMapd, RRWMapD, RRWMapDict, rrw_map
from contour_reference import blob_labels

DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


def scipy_rrw(mask):
    """Reference RRW channel: -d/max(d) inside, 1 outside, d = EDT to the nearest outside voxel."""
    if not mask.any():
        return np.ones(mask.shape)
    if mask.all():
        return -np.ones(mask.shape)
    d = ndimage.distance_transform_edt(mask)
    return np.where(mask, -d / d.max(), 1.0)


@pytest.mark.parametrize("shape", [(23, 21), (11, 12, 13)])
def test_class_index_map_against_scipy(shape):
    label = blob_labels(shape, 3, seed=5)
    out = RRWMap(num_classes=4)(label[None])  # class 3 is absent
    assert out.shape == (4, *shape) and out.dtype == np.float32
    for c in range(4):
        np.testing.assert_allclose(out[c], scipy_rrw(label == c), rtol=1e-6, atol=1e-6)
    np.testing.assert_array_equal(out[3], 1.0)  # absent class: all ones, no 0/0
    for c in range(3):
        inside = out[c][label == c]
        assert inside.min() == -1.0 and inside.max() < 0


def test_num_classes_default_is_max_plus_one_and_full_class():
    label = np.zeros((1, 6, 7), dtype=np.int64)
    label[0, 2:5, 2:6] = 2
    out = RRWMap()(label)
    assert out.shape == (3, 6, 7)
    np.testing.assert_array_equal(out[1], 1.0)
    full = RRWMap(num_classes=2)(np.ones((1, 4, 4), dtype=np.int64))
    np.testing.assert_array_equal(full[0], 1.0)
    np.testing.assert_array_equal(full[1], -1.0)  # no voxel outside: defined as -1


def test_multi_channel_and_multi_label():
    masks = np.stack([blob_labels((14, 15, 9), 2, seed=s) > 0 for s in range(3)])
    out = RRWMap()(torch.as_tensor(masks))
    assert out.shape == masks.shape and out.dtype == torch.float32
    for c in range(3):
        np.testing.assert_allclose(out[c].numpy(), scipy_rrw(masks[c]), rtol=1e-6, atol=1e-6)
    single = RRWMap(multi_label=True)(masks[:1].astype(np.float32))
    np.testing.assert_allclose(single[0], scipy_rrw(masks[0]), rtol=1e-6, atol=1e-6)


def test_functional_with_batch_axis():
    labels = np.stack([blob_labels((16, 17), 3, seed=s) for s in range(2)])[:, None]
    batched = rrw_map(torch.as_tensor(labels), spatial_dims=2, num_classes=3)
    assert batched.shape == (2, 3, 16, 17)
    for b in range(2):
        torch.testing.assert_close(batched[b], RRWMap(num_classes=3)(torch.as_tensor(labels[b])))
    onehot = torch.nn.functional.one_hot(torch.as_tensor(labels[:, 0]), 3).permute(0, 3, 1, 2)
    torch.testing.assert_close(rrw_map(onehot, spatial_dims=2), batched)


@pytest.mark.parametrize("device", DEVICES)
def test_types_and_meta(device):
    label = blob_labels((10, 11, 12), 3, seed=6)[None]
    ref = RRWMap(num_classes=3)(label)
    t = RRWMap(num_classes=3)(torch.as_tensor(label, device=device))
    assert type(t) is torch.Tensor and t.device.type == device and t.dtype == torch.float32
    np.testing.assert_allclose(t.cpu().numpy(), ref)
    affine = torch.diag(torch.tensor([0.8, 0.8, 3.0, 1.0]))
    m = RRWMap(num_classes=3)(MetaTensor(torch.as_tensor(label, device=device), affine=affine))
    assert isinstance(m, MetaTensor) and m.dtype == torch.float32
    torch.testing.assert_close(m.affine, affine.double())


def test_errors_and_dictionary():
    with pytest.raises(ValueError, match=r"min -2.*shape \(1, 2, 2\)"):
        RRWMap()(np.array([[[0, -2], [1, 1]]]))
    with pytest.raises(ValueError, match=r"num_classes=2.*max 3"):
        RRWMap(num_classes=2)(np.array([[[0, 3], [1, 1]]]))
    with pytest.raises(ValueError, match="num_classes must be None or an integer >= 1, got -1"):
        RRWMapd(keys="label", num_classes=-1)
    assert RRWMapD is RRWMapd and RRWMapDict is RRWMapd
    label = MetaTensor(blob_labels((9, 10), 2, seed=7)[None].astype(np.float32), affine=torch.eye(4) * 2)
    out = RRWMapd(keys="label", num_classes=2)({"label": label})
    assert out["rrw_label"].shape == (2, 9, 10)
    torch.testing.assert_close(out["rrw_label"].affine, label.affine)
    np.testing.assert_allclose(out["rrw_label"].numpy(), RRWMap(2)(label.numpy()))
    assert "m" in RRWMapd(keys="label", rrw_key="m")({"label": label})
