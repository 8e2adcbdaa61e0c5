"""SeparableDiceLoss: the all-zero-contour identity against MONAI's DiceLoss, per-class and pooled
formulas by hand, a hand-computed tiny value."""

from __future__ import annotations

import itertools
import math

import pytest
import torch
import torch.nn.functional as F
from monai.losses import DiceLoss

from monai_cwcd.losses import SeparableDiceLoss
from monai_cwcd.transforms.functional import label_contour


def tiny_case():
    """5x5 image, class 1 = 2x2 block at rows/cols 1-2; logits 0 (class 0) and 1 (class 1) everywhere
    (the example of test_contour_ce.py: the contour of class 1 is the whole block)."""
    label = torch.zeros(1, 1, 5, 5, dtype=torch.long)
    label[..., 1:3, 1:3] = 1
    logits = torch.zeros(1, 2, 5, 5)
    logits[:, 1] = 1.0
    return logits, label


def _case(spatial, n_classes=4, batch=2, seed=0):
    g = torch.Generator().manual_seed(seed)
    logits = torch.randn(batch, n_classes, *spatial, generator=g)
    label = torch.randint(0, n_classes, (batch, 1, *spatial), generator=g)
    label[:, :, : spatial[0] // 2] = 0  # some structure and a large background
    return logits, label


@pytest.mark.parametrize(
    "include_background,squared_pred,batch,weighted", list(itertools.product([False, True], repeat=4))
)
def test_zero_contour_is_one_minus_beta_times_dice_softmax(include_background, squared_pred, batch, weighted):
    logits, label = _case((7, 8))
    weight = torch.tensor([0.3, 1.0, 2.0, 0.5]) if weighted else None
    flags = dict(include_background=include_background, to_onehot_y=True, softmax=True, squared_pred=squared_pred, batch=batch)
    dice = DiceLoss(**flags, weight=None if weight is None else (weight if include_background else weight[1:]))
    beta = 0.3
    sdl = SeparableDiceLoss(**flags, beta=beta, weight=weight)
    zero = torch.zeros_like(label)
    torch.testing.assert_close(sdl(logits, label, zero), (1 - beta) * dice(logits, label))
    # kernel_size=1 on the fly is the same empty contour
    sdl_k1 = SeparableDiceLoss(**flags, beta=beta, weight=weight, kernel_size=1)
    torch.testing.assert_close(sdl_k1(logits, label), (1 - beta) * dice(logits, label))


@pytest.mark.parametrize("act", ["sigmoid", "other_act", "none"])
def test_zero_contour_identity_other_activations_multilabel(act):
    g = torch.Generator().manual_seed(3)
    logits = torch.randn(2, 3, 6, 7, 5, generator=g)
    target = (torch.rand(2, 3, 6, 7, 5, generator=g) > 0.5).float()
    flags = {"sigmoid": dict(sigmoid=True), "other_act": dict(other_act=torch.tanh), "none": {}}[act]
    flags = dict(flags, include_background=True)
    dice = DiceLoss(**flags)
    sdl = SeparableDiceLoss(**flags, beta=0.5)
    zero = torch.zeros(2, 1, 6, 7, 5)
    torch.testing.assert_close(sdl(logits, target, zero), 0.5 * dice(logits, target))


def _hand_stats(p, g, c):
    """Explicit masked sums for one sample and one class (plain loops over flattened voxels)."""
    p, g, c = p.flatten().tolist(), g.flatten().tolist(), c.flatten().tolist()
    num_c = 2 * sum(pi * gi for pi, gi, ci in zip(p, g, c) if ci)
    den_c = sum(pi + gi for pi, gi, ci in zip(p, g, c) if ci)
    num_n = 2 * sum(pi * gi for pi, gi, ci in zip(p, g, c) if not ci)
    den_n = sum(pi + gi for pi, gi, ci in zip(p, g, c) if not ci)
    return num_c, den_c, num_n, den_n


def test_per_class_and_pooled_match_hand_formulas():
    g = torch.Generator().manual_seed(5)
    logits = torch.randn(1, 3, 9, 9, generator=g)
    label = torch.zeros(1, 1, 9, 9, dtype=torch.long)
    label[..., :6, :6] = 1  # a large class ...
    label[..., 7:, 7:] = 2  # ... and a small one: per-class and pooled ratios weigh them differently
    probs = torch.softmax(logits, 1)[0]
    own = label_contour(label, 2)[0, 0]
    assert (own & (label[0, 0] == 1)).sum() < (label[0, 0] == 1).sum()  # class 1 has an interior
    eps = 1e-5
    stats = []
    for j in (1, 2):  # background dropped
        g = (label[0, 0] == j).float()
        stats.append(_hand_stats(probs[j], g, own & (label[0, 0] == j)))
    per_class_c = sum(1 - (s[0] + eps) / (s[1] + eps) for s in stats) / 2
    per_class_n = sum(1 - (s[2] + eps) / (s[3] + eps) for s in stats) / 2
    pooled_c = 1 - (sum(s[0] for s in stats) + eps) / (sum(s[1] for s in stats) + eps)
    pooled_n = 1 - (sum(s[2] for s in stats) + eps) / (sum(s[3] for s in stats) + eps)
    beta = 0.25
    per_class = SeparableDiceLoss(to_onehot_y=True, softmax=True, beta=beta)(logits, label)
    pooled = SeparableDiceLoss(to_onehot_y=True, softmax=True, beta=beta, pool_classes=True)(logits, label)
    assert per_class.item() == pytest.approx(beta * per_class_c + (1 - beta) * per_class_n, rel=1e-5)
    assert pooled.item() == pytest.approx(beta * pooled_c + (1 - beta) * pooled_n, rel=1e-5)
    assert abs(per_class.item() - pooled.item()) > 1e-2  # the two formulas really differ here


def test_hand_computed_tiny_2d():
    logits, label = tiny_case()
    s = 1 / (1 + math.exp(-1))  # softmax probability of class 1 everywhere
    eps = 1e-5
    l_c = 1 - (8 * s + eps) / (4 * s + 4 + eps)  # contour of class 1 = the whole 2x2 block
    l_noc = 1 - eps / (21 * s + eps)  # no class-1 voxel off the contour: only false positives
    value = SeparableDiceLoss(to_onehot_y=True, softmax=True)(logits, label)
    assert value.item() == pytest.approx(0.5 * l_c + 0.5 * l_noc, rel=1e-6)


def test_squared_pred_hand_formula():
    logits, label = tiny_case()
    s = 1 / (1 + math.exp(-1))
    eps = 1e-5
    l_c = 1 - (8 * s + eps) / (4 * s * s + 4 + eps)
    l_noc = 1 - eps / (21 * s * s + eps)
    value = SeparableDiceLoss(to_onehot_y=True, softmax=True, squared_pred=True)(logits, label)
    assert value.item() == pytest.approx(0.5 * l_c + 0.5 * l_noc, rel=1e-6)


def test_index_and_one_hot_targets_agree():
    logits, label = _case((7, 9, 5), n_classes=3)
    one_hot = F.one_hot(label[:, 0], 3).movedim(-1, 1).float()
    for sq in (False, True):
        a = SeparableDiceLoss(to_onehot_y=True, softmax=True, squared_pred=sq, reduction="none")(logits, label)
        b = SeparableDiceLoss(softmax=True, squared_pred=sq, reduction="none")(logits, one_hot)
        torch.testing.assert_close(a, b)
