from __future__ import annotations

import numpy as np
import pytest
import torch
from monai.data import MetaTensor
from scipy import ndimage

from monai_cwcd.transforms import (
    DistanceWeightMap,
    DistanceWeightMapd,
    DistanceWeightMapD,
    DistanceWeightMapDict,
    distance_weight_map,
)
from contour_reference import blob_labels, scipy_per_class

DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


def scipy_dwmap(label, num_classes, w0, sigma):
    contour = scipy_per_class(label, num_classes, 3, 1, False).any(0)
    d = ndimage.distance_transform_edt(~contour)
    return 1 + w0 * np.exp(-(d**2) / (2 * sigma**2))


@pytest.mark.parametrize("shape", [(24, 25), (12, 13, 11)])
@pytest.mark.parametrize("w0,sigma", [(10.0, 5.0), (3.0, 1.5)])
def test_against_scipy_reference(shape, w0, sigma):
    label = blob_labels(shape, 3, seed=8)
    label[: shape[0] // 2] = 0  # a boundary-free region, so the weights decay
    out = DistanceWeightMap(w0=w0, sigma=sigma)(label[None])
    assert out.shape == (1, *shape) and out.dtype == np.float32
    np.testing.assert_allclose(out[0], scipy_dwmap(label, 3, w0, sigma), rtol=1e-5)


def test_max_on_boundary_and_decreasing_with_distance():
    label = np.zeros((1, 40, 6, 6), dtype=np.int64)
    label[0, 20:] = 1  # a plane boundary between index 19 and 20
    w = DistanceWeightMap()(label)[0]
    assert w.max() == pytest.approx(11.0) and w.min() >= 1.0
    np.testing.assert_allclose(w[19], 11.0)
    np.testing.assert_allclose(w[20], 11.0)
    profile = w[:, 3, 3]
    assert np.all(np.diff(profile[:20]) > 0) and np.all(np.diff(profile[20:]) < 0)
    np.testing.assert_allclose(profile[19 - 5], 1 + 10 * np.exp(-25 / 50), rtol=1e-6)  # d = 5 = sigma


def test_no_boundary_gives_ones_and_binary_union():
    np.testing.assert_array_equal(DistanceWeightMap()(np.full((1, 5, 5), 2)), 1.0)
    masks = torch.zeros(2, 3, 12, 12)
    masks[0, 0, 2:6, 2:6] = 1
    masks[0, 1, 7:11, 7:11] = 1
    out = distance_weight_map(masks, spatial_dims=2)
    assert out.shape == (2, 1, 12, 12)
    torch.testing.assert_close(out[1], torch.ones(1, 12, 12))  # empty sample
    fg = masks[0].numpy() > 0
    contour = np.zeros((12, 12), dtype=bool)
    for m in fg:
        contour |= m & ~ndimage.binary_erosion(m, np.ones((3, 3)), border_value=1)
    d = ndimage.distance_transform_edt(~contour)
    np.testing.assert_allclose(out[0, 0].numpy(), 1 + 10 * np.exp(-(d**2) / 50), rtol=1e-5)


def test_functional_batched_equals_per_sample():
    labels = torch.as_tensor(np.stack([blob_labels((8, 9, 10), 3, seed=s) for s in range(3)]))[:, None]
    batched = distance_weight_map(labels, spatial_dims=3)
    for b in range(3):
        torch.testing.assert_close(batched[b], DistanceWeightMap()(labels[b]))


@pytest.mark.parametrize("device", DEVICES)
def test_types_meta_and_dictionary(device):
    label = blob_labels((10, 12), 3, seed=9)[None]
    ref = DistanceWeightMap()(label)
    t = DistanceWeightMap()(torch.as_tensor(label, device=device))
    assert type(t) is torch.Tensor and t.device.type == device and t.dtype == torch.float32
    np.testing.assert_allclose(t.cpu().numpy(), ref, rtol=1e-6)
    assert DistanceWeightMapD is DistanceWeightMapd and DistanceWeightMapDict is DistanceWeightMapd
    meta = MetaTensor(torch.as_tensor(label, device=device), affine=torch.diag(torch.tensor([2.0, 2.0, 1.0, 1.0])))
    out = DistanceWeightMapd(keys="label")({"label": meta})
    assert isinstance(out["dwmap_label"], MetaTensor) and out["dwmap_label"].shape == (1, 10, 12)
    torch.testing.assert_close(out["dwmap_label"].affine, meta.affine)


@pytest.mark.parametrize(
    "kwargs,match", [({"w0": -1.0}, "w0 must be >= 0, got -1.0"), ({"sigma": 0.0}, "sigma must be > 0, got 0.0")]
)
def test_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        DistanceWeightMap(**kwargs)
    with pytest.raises(ValueError, match=match):
        distance_weight_map(torch.zeros(1, 1, 4, 4), spatial_dims=2, **kwargs)


def test_bad_label():
    with pytest.raises(ValueError, match=r"non-integral value 0.25.*shape \(1, 2, 2\)"):
        DistanceWeightMap()(np.array([[[0.0, 0.25], [1.0, 1.0]]]))
