"""Mixed precision: CWCD and PDANet under bfloat16 autocast on CPU (float16 + GradScaler is the CUDA path)."""

from __future__ import annotations

import pytest
import torch
from monai.networks.nets import UNet

from monai_cwcd.losses import CWCDLoss
from monai_cwcd.networks.nets import PDANet


def _data():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(2, 1, 32, 32, 32, generator=g)
    y = (x > 0.5).float() + (x > 1.2).float()  # 3 classes, thin structures
    return x, y


def _train_bf16(net, steps):
    torch.manual_seed(0)
    loss_fn = CWCDLoss(to_onehot_y=True, softmax=True)
    opt = torch.optim.Adam(net.parameters(), 1e-3)
    x, y = _data()
    losses = []
    for _ in range(steps):
        opt.zero_grad()
        with torch.autocast("cpu", dtype=torch.bfloat16):
            pred = net(x)
            loss = loss_fn(pred, y)
        assert pred.dtype == torch.bfloat16, "autocast did not reach the network"
        assert loss.dtype == torch.float32, "the loss must reduce in float32 under autocast"
        loss.backward()
        bad = [n for n, p in net.named_parameters() if p.grad is not None and not torch.isfinite(p.grad).all()]
        assert not bad, f"non-finite gradients at step {len(losses) + 1}: {bad[:6]}"
        opt.step()
        losses.append(float(loss.detach()))
    return losses


def test_cwcd_trains_under_bfloat16_autocast():
    losses = _train_bf16(UNet(3, 1, 3, channels=(8, 16, 32), strides=(2, 2), num_res_units=1), steps=6)
    assert all(torch.isfinite(torch.tensor(losses)))
    assert losses[-1] < losses[0]


def test_cwcd_bfloat16_matches_float32_loss():
    """The loss of a bf16 prediction equals the float32 loss of the same prediction cast up: CWCD
    upcasts internally, so the softmax, contour weights and Dice sums do not run in bfloat16."""
    x, y = _data()
    pred = torch.randn(2, 3, 32, 32, 32, generator=torch.Generator().manual_seed(1)).to(torch.bfloat16)
    loss_fn = CWCDLoss(to_onehot_y=True, softmax=True)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        low = loss_fn(pred, y)
    assert torch.isfinite(low)
    torch.testing.assert_close(low.float(), loss_fn(pred.float(), y), rtol=1e-5, atol=1e-5)


def test_pdanet_trains_under_bfloat16_autocast():
    torch.manual_seed(0)
    losses = _train_bf16(PDANet(3, 1, 3, features=(4, 8, 16, 32)), steps=2)
    assert all(torch.isfinite(torch.tensor(losses)))
