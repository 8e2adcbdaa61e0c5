"""Baselines: DistanceWeightedCELoss and RegionWiseLoss against their formulas, precomputed maps
(from monai_cwcd.transforms.functional) against on-the-fly maps."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from monai_cwcd.losses import DistanceWeightedCELoss, RegionWiseLoss
from monai_cwcd.transforms.functional import distance_weight_map, rrw_map


def _case(spatial, n_classes=3, batch=2, seed=0):
    g = torch.Generator().manual_seed(seed)
    label = torch.zeros(batch, 1, *spatial)
    label[:, :, 1:-1, 2:-2] = 1
    label[:, :, 3:5] = 2
    label[1, :, :, :2] = 0
    return torch.randn(batch, n_classes, *spatial, generator=g), label


@pytest.mark.parametrize("spatial", [(9, 10), (7, 8, 6)])
def test_dwce_matches_formula_and_precomputed_map(spatial):
    logits, label = _case(spatial)
    wmap = distance_weight_map(label, len(spatial), w0=4.0, sigma=2.0)
    ce = F.cross_entropy(logits, label[:, 0].long(), reduction="none").unsqueeze(1)
    expected = (wmap * ce).flatten(1).mean(1)
    loss = DistanceWeightedCELoss(w0=4.0, sigma=2.0, reduction="none")
    torch.testing.assert_close(loss(logits, label), expected)
    torch.testing.assert_close(loss(logits, label, wmap), expected)
    # w0 = 0: plain cross-entropy
    torch.testing.assert_close(DistanceWeightedCELoss(w0=0.0)(logits, label), F.cross_entropy(logits, label[:, 0].long()))


def test_dwce_sigmoid_multilabel():
    logits, label = _case((9, 10))
    target = torch.stack([label[:, 0] >= 1, label[:, 0] == 2], 1).float()
    wmap = distance_weight_map(target, 2)
    bce = F.binary_cross_entropy_with_logits(logits[:, :2], target, reduction="none")
    value = DistanceWeightedCELoss(sigmoid=True)(logits[:, :2], target)
    torch.testing.assert_close(value, (wmap * bce).mean())


def test_dwce_gradient_same_with_precomputed_map():
    logits, label = _case((8, 8))
    grads = []
    for wmap in (None, distance_weight_map(label, 2)):
        x = logits.clone().requires_grad_(True)
        DistanceWeightedCELoss()(x, label, wmap).backward()
        grads.append(x.grad)
    torch.testing.assert_close(grads[0], grads[1])


@pytest.mark.parametrize("spatial", [(9, 10), (7, 8, 6)])
@pytest.mark.parametrize("include_background", [True, False])
def test_region_wise_matches_formula_and_precomputed_map(spatial, include_background):
    logits, label = _case(spatial)
    rrw = rrw_map(label, len(spatial), num_classes=3)
    f = torch.softmax(logits, 1) * rrw
    if not include_background:
        f = f[:, 1:]
    expected = f.flatten(1).mean(1)
    loss = RegionWiseLoss(softmax=True, include_background=include_background, reduction="none")
    torch.testing.assert_close(loss(logits, label), expected)
    torch.testing.assert_close(loss(logits, label, rrw), expected)
    one_hot = F.one_hot(label[:, 0].long(), 3).movedim(-1, 1)
    torch.testing.assert_close(loss(logits, one_hot), expected)


def test_region_wise_bounds_and_optimum():
    logits, label = _case((10, 10))
    perfect = F.one_hot(label[:, 0].long(), 3).movedim(-1, 1).float() * 100.0
    value = RegionWiseLoss(softmax=True)(perfect, label)
    assert -1.0 <= value.item() < 0.0  # mass inside the right classes: negative
    worst = RegionWiseLoss(softmax=True)(-perfect, label)
    assert value < worst <= 1.0


def test_baseline_map_shape_errors():
    logits, label = _case((8, 9))
    with pytest.raises(ValueError, match=r"weight_map shape \(2, 3, 8, 9\) does not match input shape \(2, 3, 8, 9\); expected \(B, 1, \*spatial\)"):
        DistanceWeightedCELoss()(logits, label, torch.ones(2, 3, 8, 9))
    with pytest.raises(ValueError, match=r"weight_map shape \(2, 1, 8, 9\) does not match input shape \(2, 3, 8, 9\); expected \(B, 3, \*spatial\)"):
        RegionWiseLoss(softmax=True)(logits, label, torch.ones(2, 1, 8, 9))
    with pytest.raises(ValueError, match="sigma must be > 0, got 0"):
        DistanceWeightedCELoss(sigma=0)
    with pytest.raises(ValueError, match="w0 must be >= 0, got -1"):
        DistanceWeightedCELoss(w0=-1)
