"""CWCDLoss as a drop-in for MONAI's DiceCELoss: every DiceCELoss argument with the same meaning; with
the contour switched off it equals DiceCELoss on a grid of argument combinations; alpha vs lambdas;
the zero-weight and zero-smoothing cases of issue 10 with their known values."""

from __future__ import annotations

import inspect
import itertools
import warnings

import pytest
import torch
import torch.nn.functional as F
from monai.losses import DiceCELoss, DiceLoss

from monai_cwcd.losses import ContourWeightedCELoss, CWCDLoss, DistanceWeightedCELoss, SeparableDiceLoss


def _softmax_act(x):
    return torch.softmax(x, 1)


def _data(n_classes, seed, spatial=(6, 7), batch=2):
    g = torch.Generator().manual_seed(seed)
    logits = torch.randn(batch, n_classes, *spatial, generator=g) * 2
    if n_classes == 1:
        label = (torch.rand(batch, 1, *spatial, generator=g) > 0.6).float()
    else:
        label = torch.randint(0, n_classes, (batch, 1, *spatial), generator=g).float()
    return logits, label


GRID = dict(
    n_classes=[1, 4],
    one_hot=[False, True],
    include_background=[True, False],
    act=["softmax", "other", "none", "sigmoid"],
    squared_pred=[False, True],
    jaccard=[False, True],
    smooth=[(1e-5, 1e-5), (0.0, 0.0), (1.0, 0.5)],
    batch=[False, True],
    weight=[None, "weights"],
    label_smoothing=[0.0, 0.1],
)
# cycled through the grid (every value appears, not every combination): keeps the test near 10 s
LAMBDAS = [(1.0, 1.0), (0.3, 2.0), (0.0, 1.0), (1.0, 0.0)]
# the contour switched off: kernel_size=1 empties it (lambda_contour and edge_is_contour then change
# nothing) and beta=0 drops the empty contour set's term, which would scale the Dice by 1 - beta
CONTOUR_OFF = [
    dict(kernel_size=1, beta=0.0, lambda_contour=0.0),
    dict(kernel_size=1, beta=0.0, lambda_contour=2.0, edge_is_contour=True, iterations=2),
]


def _grid():
    for values in itertools.product(*GRID.values()):
        case = dict(zip(GRID, values))
        if case["act"] == "sigmoid" and case["n_classes"] > 1:
            continue  # documented difference: our CE part is per-channel BCE there (multi-label)
        if case["n_classes"] == 1 and case["one_hot"]:
            continue  # one channel: the target is the mask either way
        yield case


def test_equals_dicece_with_the_contour_switched_off_on_a_grid():
    """Grid of DiceCELoss argument combinations x random data: CWCDLoss with the contour switched off
    (kernel_size=1, beta=0) gives DiceCELoss's value (reduction="mean") and gradient."""
    worst, count, nan_monai = 0.0, 0, 0
    for i, case in enumerate(_grid()):
        c = case["n_classes"]
        logits, label = _data(c, seed=i % 7)
        target = label
        if case["one_hot"]:
            target = F.one_hot(label[:, 0].long(), c).movedim(-1, 1).float()
        if case["act"] == "none":
            logits = torch.softmax(logits, 1) if c > 1 else torch.sigmoid(logits)
        kw = dict(
            include_background=case["include_background"], to_onehot_y=not case["one_hot"] and c > 1,
            sigmoid=case["act"] == "sigmoid", softmax=case["act"] == "softmax",
            other_act=_softmax_act if case["act"] == "other" else None, squared_pred=case["squared_pred"],
            jaccard=case["jaccard"], smooth_nr=case["smooth"][0], smooth_dr=case["smooth"][1], batch=case["batch"],
            weight=None if case["weight"] is None else torch.tensor([0.0, 1.0, 2.0, 0.5][:c]),
            lambda_dice=LAMBDAS[i % 4][0], lambda_ce=LAMBDAS[i % 4][1], label_smoothing=case["label_smoothing"],
        )
        off = CONTOUR_OFF[(i // 4) % 2]
        x1, x2 = logits.clone().requires_grad_(True), logits.clone().requires_grad_(True)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ref = DiceCELoss(**kw)(x1, target)
            ours = CWCDLoss(**kw, **off)(x2, target)
        count += 1
        if not torch.isfinite(ref):
            nan_monai += 1
            assert torch.isfinite(ours), case
            continue
        ref.backward()
        ours.backward()
        torch.testing.assert_close(ours, ref, rtol=1e-5, atol=1e-6, msg=lambda m: f"{case}: {m}")
        torch.testing.assert_close(x2.grad, x1.grad, rtol=1e-4, atol=1e-6, msg=lambda m: f"{case}: {m}")
        worst = max(worst, (ours - ref).abs().item())
    print(f"\nDiceCELoss parity grid: {count} combinations, largest |difference| {worst:.3g}, MONAI NaN in {nan_monai}")
    assert count > 1000 and worst < 1e-5


def test_every_dicece_argument_is_accepted_with_its_default():
    ours = inspect.signature(CWCDLoss).parameters
    theirs = inspect.signature(DiceCELoss).parameters
    for name, p in theirs.items():
        assert name in ours, name
        if name in ("include_background", "lambda_dice", "lambda_ce"):
            continue
        assert ours[name].default == p.default, name
    assert ours["include_background"].default is False  # the papers: Dice over the target regions
    # lambdas default to None: DiceCELoss's 1.0 once one is given, else the journal's alpha = 0.5
    assert CWCDLoss(lambda_ce=1.0).lambda_dice == 1.0 and CWCDLoss(lambda_dice=2.0).lambda_ce == 1.0
    assert (CWCDLoss().lambda_dice, CWCDLoss().lambda_ce) == (0.5, 0.5)


def test_weighted_ce_takes_one_weighted_mean_over_the_batch():
    """Issue 10: with class weights and batch=False DiceCELoss's CE is ONE weighted mean over the batch;
    ours was the mean of per-sample weighted means (1.7762 vs 1.7333 on an imbalanced batch)."""
    g = torch.Generator().manual_seed(3)
    logits = torch.randn(2, 3, 8, 8, generator=g)
    label = torch.zeros(2, 1, 8, 8)
    label[0, :, 1:7, 1:7] = 1  # sample 0: mostly class 1; sample 1: a small class-2 block
    label[1, :, 2:4, 2:4] = 2
    logits[1, 2] -= 3  # ... predicted badly
    w = torch.tensor([0.2, 1.0, 5.0])
    torch_ce = F.cross_entropy(logits, label[:, 0].long(), weight=w)
    for batch in (False, True):
        ce = ContourWeightedCELoss(lambda_contour=0.0, weight=w, batch=batch)(logits, label)
        torch.testing.assert_close(ce, torch_ce)
        kw = dict(include_background=True, to_onehot_y=True, softmax=True, weight=w, batch=batch)
        ours = CWCDLoss(beta=0.0, kernel_size=1, lambda_dice=1.0, lambda_ce=1.0, **kw)(logits, label)
        torch.testing.assert_close(ours, DiceCELoss(**kw)(logits, label))
    per_sample_means = torch.stack([F.cross_entropy(logits[i : i + 1], label[i : i + 1, 0].long(), weight=w) for i in range(2)])
    assert abs(per_sample_means.mean() - torch_ce) > 0.05  # the two semantics really differ here (2.043 vs 1.957)


def test_alpha_and_lambdas():
    logits, label = _data(4, 0)
    kw = dict(to_onehot_y=True, softmax=True, kernel_size=2)
    sdl = SeparableDiceLoss(**kw)(logits, label)
    cwce = ContourWeightedCELoss(kernel_size=2)(logits, label)
    torch.testing.assert_close(CWCDLoss(alpha=0.3, **kw)(logits, label), 0.3 * sdl + 0.7 * cwce)
    torch.testing.assert_close(CWCDLoss(lambda_dice=2.0, lambda_ce=0.5, **kw)(logits, label), 2.0 * sdl + 0.5 * cwce)
    torch.testing.assert_close(CWCDLoss(lambda_dice=2.0, **kw)(logits, label), 2.0 * sdl + cwce)
    # agreeing alpha and lambdas: the lambdas' scale is kept; alpha reports the proportion
    loss = CWCDLoss(alpha=0.8, lambda_dice=2.0, lambda_ce=0.5, **kw)
    assert loss.alpha == pytest.approx(0.8)
    torch.testing.assert_close(loss(logits, label), 2.0 * sdl + 0.5 * cwce)
    with pytest.raises(ValueError, match=r"alpha=0\.5 disagrees with lambda_dice=1\.0, lambda_ce=1\.5: .* = 0\.4; give alpha or the lambdas"):
        CWCDLoss(alpha=0.5, lambda_dice=1.0, lambda_ce=1.5)
    with pytest.raises(ValueError, match="undefined when both are 0"):
        CWCDLoss(alpha=0.5, lambda_dice=0.0, lambda_ce=0.0)
    with pytest.raises(ValueError, match="lambda_dice should be no less than 0.0"):
        CWCDLoss(lambda_dice=-1.0)
    with pytest.raises(ValueError, match="lambda_ce should be no less than 0.0"):
        CWCDLoss(lambda_ce=-1.0)
    with pytest.raises(ValueError, match="label_smoothing must be in"):
        CWCDLoss(label_smoothing=1.5)
    # both lambdas 0: a zero loss that still backpropagates (as DiceCELoss)
    x = logits.clone().requires_grad_(True)
    zero = CWCDLoss(lambda_dice=0.0, lambda_ce=0.0, **kw)(x, label)
    zero.backward()
    assert zero.item() == 0.0 and torch.equal(x.grad, torch.zeros_like(x))


def test_empty_contour_scales_dice_by_one_minus_beta():
    """kernel_size=1 (empty contour) with beta > 0: the empty contour set scores 0, SDL = (1 - beta) Dice."""
    logits, label = _data(4, 1)
    dice = DiceLoss(to_onehot_y=True, softmax=True, include_background=False)(logits, label)
    sdl = SeparableDiceLoss(to_onehot_y=True, softmax=True, kernel_size=1, beta=0.3)(logits, label)
    torch.testing.assert_close(sdl, 0.7 * dice)


def test_jaccard_and_label_smoothing_match_monai_and_torch():
    logits, label = _data(4, 2)
    for sq in (False, True):
        ref = DiceLoss(to_onehot_y=True, softmax=True, jaccard=True, squared_pred=sq, include_background=False)(logits, label)
        ours = SeparableDiceLoss(to_onehot_y=True, softmax=True, jaccard=True, squared_pred=sq, beta=0.0, kernel_size=1)(logits, label)
        torch.testing.assert_close(ours, ref)
    w = torch.tensor([0.0, 1.0, 2.0, 0.5])
    for target in (label, F.one_hot(label[:, 0].long(), 4).movedim(-1, 1).float()):
        t = target[:, 0].long() if target.shape[1] == 1 else target
        ref = F.cross_entropy(logits, t, weight=w, label_smoothing=0.2)
        ours = ContourWeightedCELoss(lambda_contour=0.0, weight=w, label_smoothing=0.2)(logits, target)
        torch.testing.assert_close(ours, ref)


# ----------------------------------------------------------------------------------------------------
# issue 10: zero class weight with a background-only sample; zero smoothing with empty sets


def _zero_weight_case():
    torch.manual_seed(0)
    logits = torch.randn(2, 3, 8, 8, 8)
    label = torch.zeros(2, 1, 8, 8, 8)
    label[1, :, 2:6, 2:6, 2:6] = 2  # sample 0: background only
    return logits, label


def test_zero_class_weight_with_background_only_sample():
    logits, label = _zero_weight_case()
    w = [0.0, 1.0, 1.0]
    wt = torch.tensor(w)
    assert F.cross_entropy(logits, label[:, 0].long(), weight=wt).item() == pytest.approx(1.2035, abs=1e-4)
    assert DiceCELoss(to_onehot_y=True, softmax=True, weight=wt, include_background=False)(logits, label).item() == pytest.approx(2.1505, abs=1e-4)
    assert CWCDLoss(to_onehot_y=True, softmax=True, weight=w, batch=True)(logits, label).item() == pytest.approx(1.9475, abs=1e-4)
    ce = ContourWeightedCELoss(lambda_contour=0.0, weight=w, reduction="none")(logits, label)
    assert ce[0].item() == 0.0  # the sample with weighted denominator 0 contributes 0 ...
    assert ce.mean().item() == pytest.approx(1.2035, abs=1e-4)  # ... and is left out of the mean
    parity = CWCDLoss(to_onehot_y=True, softmax=True, weight=w, beta=0.0, kernel_size=1, lambda_dice=1.0, lambda_ce=1.0)
    assert parity(logits, label).item() == pytest.approx(2.1505, abs=1e-4)
    for loss in (
        CWCDLoss(to_onehot_y=True, softmax=True, weight=w),
        ContourWeightedCELoss(weight=w),
        DistanceWeightedCELoss(weight=w),
        CWCDLoss(to_onehot_y=True, softmax=True, weight=[0.0, 0.0, 0.0], label_smoothing=0.1),
    ):
        x = logits.clone().requires_grad_(True)
        value = loss(x, label)
        value.backward()
        assert torch.isfinite(value) and torch.isfinite(x.grad).all(), type(loss).__name__


def test_zero_smoothing_with_empty_sets():
    x = torch.tensor([[[1.0, 1, 0], [0, 0, 1]], [[1, 0, 1], [0, 1, 0]]])
    y = torch.tensor([[[0.0, 0, 1]], [[0, 1, 0]]])
    kw = dict(include_background=False, to_onehot_y=True, smooth_nr=0.0, smooth_dr=0.0)
    assert DiceLoss(**kw)(x, y).item() == 0.0
    for beta in (0.0, 0.5, 1.0):  # empty contour set: the value MONAI gives an empty set (0), not NaN
        assert SeparableDiceLoss(kernel_size=1, beta=beta, **kw)(x, y).item() == 0.0
    # an absent class and only smooth_dr = 0: no -inf; gradient finite
    logits = torch.randn(2, 3, 5, 5, requires_grad=True)
    label = torch.zeros(2, 1, 5, 5)
    label[:, :, 1:4, 1:4] = 1  # class 2 absent
    for smooth in ((0.0, 0.0), (1e-5, 0.0)):
        value = CWCDLoss(to_onehot_y=True, softmax=True, smooth_nr=smooth[0], smooth_dr=smooth[1])(logits, label)
        value.backward()
        assert torch.isfinite(value) and torch.isfinite(logits.grad).all()
