"""The shared contracts of all losses (monai_cwcd/losses/_utils.py): contour hand-off, reduction
shapes, argument and input validation with their messages."""

from __future__ import annotations

import re

import pytest
import torch

from monai_cwcd.losses import (
    ContourWeightedCELoss,
    CWCDLoss,
    DistanceWeightedCELoss,
    RegionWiseLoss,
    SeparableDiceLoss,
)
from monai_cwcd.transforms.functional import label_contour

CONTOUR_LOSSES = {
    "cwce": lambda **kw: ContourWeightedCELoss(**kw),
    "sdl": lambda **kw: SeparableDiceLoss(to_onehot_y=True, softmax=True, **kw),
    "cwcd": lambda **kw: CWCDLoss(to_onehot_y=True, softmax=True, **kw),
}
ALL_LOSSES = dict(
    CONTOUR_LOSSES,
    dwce=lambda **kw: DistanceWeightedCELoss(**kw),
    rw=lambda **kw: RegionWiseLoss(softmax=True, **kw),
)


def _case(batch=3, n_classes=3, spatial=(8, 9)):
    g = torch.Generator().manual_seed(0)
    label = torch.zeros(batch, 1, *spatial)
    label[:, :, 1:7, 1:8] = 1
    label[:, :, 3:6, 3:7] = 2
    return torch.randn(batch, n_classes, *spatial, generator=g), label


@pytest.mark.parametrize("name", list(ALL_LOSSES))
def test_reduction_contract(name):
    logits, label = _case()
    none = ALL_LOSSES[name](reduction="none")(logits, label)
    assert none.shape == (3,)
    torch.testing.assert_close(ALL_LOSSES[name](reduction="mean")(logits, label), none.mean())
    torch.testing.assert_close(ALL_LOSSES[name](reduction="sum")(logits, label), none.sum())
    # per sample really means per sample
    torch.testing.assert_close(ALL_LOSSES[name](reduction="none")(logits[1:2], label[1:2]), none[1:2])
    batched = ALL_LOSSES[name](reduction="none", batch=True)(logits, label)
    assert batched.shape == (1,)
    assert ALL_LOSSES[name](reduction="mean", batch=True)(logits, label).shape == ()
    with pytest.raises(ValueError):
        ALL_LOSSES[name](reduction="bogus")


@pytest.mark.parametrize("name", list(CONTOUR_LOSSES))
def test_set_contour_is_used_once_then_cleared(name):
    logits, label = _case()
    loss = CONTOUR_LOSSES[name]()
    assert loss.last_contour_source is None
    reference = loss(logits, label)
    assert loss.last_contour_source == "on_the_fly"
    wrong = torch.ones_like(label)  # everything "contour": changes the value if it is used
    loss.set_contour(wrong)
    handed = loss(logits, label)
    assert loss.last_contour_source == "handed_over"
    assert not torch.allclose(handed, reference)
    again = loss(logits, label)  # cleared: back to on the fly
    assert loss.last_contour_source == "on_the_fly"
    torch.testing.assert_close(again, reference)
    # an explicit argument wins over a pending hand-over, which is dropped as well
    loss.set_contour(wrong)
    explicit = loss(logits, label, label_contour(label, 2))
    assert loss.last_contour_source == "argument"
    torch.testing.assert_close(explicit, reference)
    loss(logits, label)
    assert loss.last_contour_source == "on_the_fly"
    # numpy arrays are accepted; None withdraws a pending contour
    loss.set_contour(wrong.numpy())
    torch.testing.assert_close(loss(logits, label), handed)
    loss.set_contour(wrong)
    loss.set_contour(None)
    loss(logits, label)
    assert loss.last_contour_source == "on_the_fly"


@pytest.mark.parametrize(
    "kwargs,match",
    [
        (dict(alpha=1.5), r"alpha must be in \[0, 1\], got 1.5"),
        (dict(alpha=-0.1), r"alpha must be in \[0, 1\], got -0.1"),
        (dict(beta=2), r"beta must be in \[0, 1\], got 2"),
        (dict(lambda_contour=-1.0), r"lambda_contour must be >= 0, got -1.0"),
        (dict(kernel_size=0), r"kernel_size must be an integer >= 1, got 0"),
        (dict(iterations=0), r"iterations must be an integer >= 1, got 0"),
        (dict(kernel_size=2.5), r"kernel_size must be an integer >= 1, got 2.5"),
        (dict(sigmoid=True, softmax=True), r"Incompatible values: more than 1 of \[sigmoid=True, softmax=True"),
        (dict(weight=[1.0, -1.0, 1.0]), r"should be no less than 0"),
    ],
)
def test_constructor_errors(kwargs, match):
    with pytest.raises(ValueError, match=match):
        CWCDLoss(**kwargs)


def test_other_act_not_callable_is_type_error():
    with pytest.raises(TypeError, match="other_act must be None or callable but is str"):
        CWCDLoss(other_act="tanh")
    with pytest.raises(TypeError, match="other_act must be None or callable"):
        RegionWiseLoss(other_act=3)


def test_kernel_size_one_is_legal():
    logits, label = _case()
    loss = CWCDLoss(to_onehot_y=True, softmax=True, kernel_size=1)
    torch.testing.assert_close(loss(logits, label), loss(logits, label, torch.zeros_like(label)))


@pytest.mark.parametrize("name", list(ALL_LOSSES))
def test_forward_errors_name_shapes_and_values(name):
    loss = ALL_LOSSES[name](reduction="mean")
    logits, label = _case()
    with pytest.raises(ValueError, match=r"target shape \(3, 1, 8, 8\) does not match input shape \(3, 3, 8, 9\)"):
        loss(logits, label[..., :8])
    with pytest.raises(ValueError, match=r"target shape \(2, 1, 8, 9\) does not match input shape \(3, 3, 8, 9\)"):
        loss(logits, label[:2])
    bad = label.clone()
    bad[0, 0, 0, 0] = 3
    with pytest.raises(ValueError, match=r"target holds label 3 but input has 3 channels; class indices must be in \[0, 2\]"):
        loss(logits, bad)
    bad[0, 0, 0, 0] = -1
    with pytest.raises(ValueError, match=r"negative label -1"):
        loss(logits, bad)
    bad[0, 0, 0, 0] = 1.5
    with pytest.raises(ValueError, match=r"integral class indices, got non-integral value 1.5"):
        loss(logits, bad)


@pytest.mark.parametrize("name", list(CONTOUR_LOSSES))
def test_contour_shape_mismatch(name):
    loss = CONTOUR_LOSSES[name]()
    logits, label = _case()
    for bad in (torch.zeros(3, 1, 8, 8), torch.zeros(3, 2, 8, 9), torch.zeros(2, 1, 8, 9)):
        with pytest.raises(ValueError, match=re.escape(f"contour shape {tuple(bad.shape)} does not match input shape (3, 3, 8, 9)")):
            loss(logits, label, bad)


def test_index_target_needs_to_onehot_y_for_dice_and_onehot_target_refuses_it():
    logits, label = _case()
    with pytest.raises(ValueError, match=r"holds class indices but input shape \(3, 3, 8, 9\) has 3 channels; set to_onehot_y=True"):
        CWCDLoss(softmax=True)(logits, label)
    with pytest.raises(ValueError, match="set to_onehot_y=True"):
        ContourWeightedCELoss(sigmoid=True)(logits, label)
    one_hot = torch.nn.functional.one_hot(label[:, 0].long(), 3).movedim(-1, 1)
    with pytest.raises(ValueError, match=r"to_onehot_y=True expects a \(B, 1, \*spatial\) class-index target"):
        CWCDLoss(to_onehot_y=True, softmax=True)(logits, one_hot)
    # the softmax cross-entropy alone reads class indices without to_onehot_y, like nn.CrossEntropyLoss
    ContourWeightedCELoss()(logits, label)


def test_weight_length_mismatch():
    logits, label = _case()
    with pytest.raises(ValueError, match=r"number of classes \(channels: 3, background included\), got 2"):
        CWCDLoss(to_onehot_y=True, softmax=True, weight=[1.0, 2.0])(logits, label)


def test_metatensor_inputs_give_plain_tensor_and_same_value():
    from monai.data import MetaTensor

    logits, label = _case()
    contour = label_contour(label, 2)
    loss = CWCDLoss(to_onehot_y=True, softmax=True)
    x = MetaTensor(logits.clone()).requires_grad_(True)
    value = loss(x, MetaTensor(label), MetaTensor(contour.to(torch.uint8)))
    assert type(value) is torch.Tensor
    torch.testing.assert_close(value, loss(logits, label))
    value.backward()
    assert torch.isfinite(x.grad).all()
