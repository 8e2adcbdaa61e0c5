"""ContourWeightedCELoss: identities with torch's cross-entropy, a hand-computed value, the BCE path."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from monai_cwcd.losses import ContourWeightedCELoss
from monai_cwcd.transforms.functional import binary_contour, label_contour


def _random_case(spatial, n_classes=4, batch=2, seed=0):
    g = torch.Generator().manual_seed(seed)
    logits = torch.randn(batch, n_classes, *spatial, generator=g)
    label = torch.randint(0, n_classes, (batch, 1, *spatial), generator=g)
    return logits, label


def tiny_case():
    """5x5 image, class 1 = 2x2 block at rows/cols 1-2; logits 0 (class 0) and 1 (class 1) everywhere.

    With k=3, it=1, edge not a boundary: all 4 block voxels and the 12 background voxels of rows/cols
    0-3 are contour, the 9 voxels of row 4 / column 4 are not.
    """
    label = torch.zeros(1, 1, 5, 5, dtype=torch.long)
    label[..., 1:3, 1:3] = 1
    logits = torch.zeros(1, 2, 5, 5)
    logits[:, 1] = 1.0
    return logits, label


@pytest.mark.parametrize("spatial", [(9, 11), (5, 6, 7)])
def test_lambda_zero_is_cross_entropy(spatial):
    logits, label = _random_case(spatial)
    ours = ContourWeightedCELoss(lambda_contour=0.0)(logits, label)
    torch.testing.assert_close(ours, F.cross_entropy(logits, label[:, 0]))
    # one-hot target: the same value
    one_hot = F.one_hot(label[:, 0], 4).movedim(-1, 1).float()
    torch.testing.assert_close(ContourWeightedCELoss(lambda_contour=0.0)(logits, one_hot), ours)


def test_lambda_zero_with_class_weight_is_weighted_cross_entropy():
    logits, label = _random_case((8, 8))
    w = torch.tensor([0.5, 1.0, 2.0, 3.0])
    ours = ContourWeightedCELoss(lambda_contour=0.0, weight=w, batch=True)(logits, label)
    torch.testing.assert_close(ours, F.cross_entropy(logits, label[:, 0], weight=w).reshape(()))
    # batch=False: each sample's share of the ONE weighted mean over the batch (DiceCELoss's semantics):
    # num_b / mean(den), whose mean is PyTorch's weighted cross-entropy of the batch
    per_sample = ContourWeightedCELoss(lambda_contour=0.0, weight=w, reduction="none")(logits, label)
    nll = F.cross_entropy(logits, label[:, 0], weight=w, reduction="none").sum((1, 2))
    den = w[label[:, 0]].sum((1, 2))
    torch.testing.assert_close(per_sample, nll / den.mean())
    torch.testing.assert_close(per_sample.mean(), ours)
    torch.testing.assert_close(ContourWeightedCELoss(lambda_contour=0.0, weight=w)(logits, label), ours)


def test_hand_computed_tiny_2d():
    logits, label = tiny_case()
    value = ContourWeightedCELoss(lambda_contour=2.0, kernel_size=3)(logits, label)
    ce_fg, ce_bg = math.log(1 + math.exp(-1)), math.log(1 + math.e)
    expected = (4 * 3 * ce_fg + 12 * 3 * ce_bg + 9 * 1 * ce_bg) / 25
    assert value.item() == pytest.approx(expected, rel=1e-6)


def test_contour_weighting_matches_explicit_formula_with_class_weights():
    logits, label = _random_case((10, 9), n_classes=3)
    w = torch.tensor([1.0, 2.0, 0.5])
    lam = 1.5
    ours = ContourWeightedCELoss(lambda_contour=lam, weight=w, reduction="none")(logits, label)
    contour = label_contour(label, 2).float()[:, 0]
    ce = F.cross_entropy(logits, label[:, 0], reduction="none")  # unweighted, per voxel
    cw = w[label[:, 0]]
    expected = ((1 + lam * contour) * cw * ce).sum((1, 2)) / cw.sum((1, 2)).mean()
    torch.testing.assert_close(ours, expected)


@pytest.mark.parametrize("spatial", [(9, 10), (6, 5, 7)])
def test_sigmoid_per_channel_bce_with_per_channel_contours(spatial):
    g = torch.Generator().manual_seed(1)
    logits = torch.randn(2, 3, *spatial, generator=g)
    target = (torch.rand(2, 3, *spatial, generator=g) > 0.6).float()  # overlapping multi-label regions
    pos_weight = torch.tensor([1.0, 2.0, 3.0])
    ours = ContourWeightedCELoss(sigmoid=True, lambda_contour=2.0, weight=pos_weight, reduction="none")(logits, target)
    pw = pos_weight.view(1, 3, *([1] * len(spatial)))
    bce = F.binary_cross_entropy_with_logits(logits, target, pos_weight=pw, reduction="none")
    contour = binary_contour(target, len(spatial)).float()
    expected = ((1 + 2.0 * contour) * bce).flatten(1).mean(1)
    torch.testing.assert_close(ours, expected)
    # lambda 0: MONAI DiceCELoss's BCE (mean over channels and voxels)
    plain = ContourWeightedCELoss(sigmoid=True, lambda_contour=0.0)(logits, target)
    torch.testing.assert_close(plain, F.binary_cross_entropy_with_logits(logits, target))


def test_single_channel_uses_bce_like_dicece():
    g = torch.Generator().manual_seed(2)
    logits = torch.randn(2, 1, 8, 8, generator=g)
    target = (torch.rand(2, 1, 8, 8, generator=g) > 0.5).float()
    value = ContourWeightedCELoss(lambda_contour=0.0)(logits, target)
    torch.testing.assert_close(value, F.binary_cross_entropy_with_logits(logits, target))


def test_kernel_size_one_gives_empty_contour_so_plain_ce():
    logits, label = _random_case((7, 7))
    value = ContourWeightedCELoss(lambda_contour=5.0, kernel_size=1)(logits, label)
    torch.testing.assert_close(value, F.cross_entropy(logits, label[:, 0]))
