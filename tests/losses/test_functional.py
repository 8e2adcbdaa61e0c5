"""monai_cwcd.losses.functional: the documented example runs, the modules are the functions, and the
numerical rules (empty sets, zero CE denominators) hold on hand-made tensors."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

import monai_cwcd.losses as losses
from monai_cwcd.losses import CWCDLoss
from monai_cwcd.losses import functional as LF
from monai_cwcd.transforms.functional import label_contour

DOC = Path(__file__).resolve().parents[2] / "docs" / "losses.md"


def test_exported():
    assert losses.functional is LF
    for name in LF.__all__:
        assert callable(getattr(LF, name)), name


def test_module_docstring_example_equals_the_module_loss():
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(2, 3, 16, 16, generator=g, requires_grad=True)
    label = torch.randint(0, 3, (2, 1, 16, 16), generator=g)
    prep = LF.prepare_target(logits, label, to_onehot_y=True)
    own = label_contour(prep.index, 2, kernel_size=3)
    ce = LF.contour_weighted_cross_entropy(prep, own, lambda_contour=2.0)
    p, p_is_softmax = LF.activate(prep, softmax=True)
    sdl = LF.separable_dice(LF.separable_dice_stats(prep, p, own, p_is_softmax=p_is_softmax), beta=0.5)
    value = (0.5 * sdl + 0.5 * ce).mean()
    torch.testing.assert_close(value, CWCDLoss(to_onehot_y=True, softmax=True)(logits, label))
    value.backward()
    assert torch.isfinite(logits.grad).all()


def test_docs_example_runs():
    """The functional example of docs/losses.md, executed as written."""
    text = DOC.read_text()
    block = re.search(r"## Functional API.*?```python\n(.*?)```", text, re.S)
    assert block, "docs/losses.md has no functional example"
    namespace: dict = {}
    exec(compile(block.group(1), str(DOC), "exec"), namespace)
    assert torch.isfinite(namespace["loss"])


def test_dice_ratio_empty_sets():
    num = torch.tensor([0.0, 0.0, 2.0, 0.0])
    den = torch.tensor([0.0, 0.0, 4.0, 1e-45])
    r = LF.dice_ratio(num, den, smooth_nr=0.0, smooth_dr=0.0)
    torch.testing.assert_close(r, torch.tensor([1.0, 1.0, 0.5, 1.0]))
    # only smooth_dr = 0 would be x/0 = inf: an empty set is still 1
    assert LF.dice_ratio(torch.zeros(1), torch.zeros(1), smooth_nr=1e-5, smooth_dr=0.0).item() == 1.0
    # jaccard: 2tp / (2 (tp + fp + fn)) = num / (2 den - num)
    assert LF.dice_ratio(torch.tensor([2.0]), torch.tensor([4.0]), 0.0, 0.0, jaccard=True).item() == pytest.approx(2.0 / 6.0)
    x = torch.zeros(3, requires_grad=True)
    LF.dice_ratio(x, x.detach() * 0, 0.0, 0.0).sum().backward()
    assert torch.equal(x.grad, torch.zeros(3))  # no NaN through the unused branch


def test_normalise_cross_entropy():
    num = torch.tensor([0.0, 3.0])
    den = torch.tensor([0.0, 2.0])
    torch.testing.assert_close(LF.normalise_cross_entropy(num, den), torch.tensor([0.0, 3.0]))  # 3 / mean(0, 2)
    torch.testing.assert_close(LF.normalise_cross_entropy(num, den, batch=True), torch.tensor([1.5]))
    torch.testing.assert_close(LF.normalise_cross_entropy(num, torch.zeros(2)), torch.zeros(2))  # never 0/0


def test_cross_entropy_stats_normalisers_are_torchs():
    g = torch.Generator().manual_seed(1)
    logits = torch.randn(2, 4, 5, 6, generator=g)
    label = torch.randint(0, 4, (2, 1, 5, 6), generator=g)
    w = torch.tensor([0.0, 1.0, 2.0, 3.0])
    num, den = LF.cross_entropy_stats(LF.prepare_target(logits, label), None, w)
    torch.testing.assert_close(num.sum() / den.sum(), F.cross_entropy(logits, label[:, 0], weight=w))
    one_hot = F.one_hot(label[:, 0], 4).movedim(-1, 1).float()
    num, den = LF.cross_entropy_stats(LF.prepare_target(logits, one_hot), None, w, label_smoothing=0.1)
    assert torch.equal(den, torch.full((2,), 30.0))  # probability targets: the voxel count
    torch.testing.assert_close(num.sum() / den.sum(), F.cross_entropy(logits, one_hot, weight=w, label_smoothing=0.1))
