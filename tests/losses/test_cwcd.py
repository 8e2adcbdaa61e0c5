"""CWCDLoss: composition, precomputed vs on-the-fly contours (value and gradient), numerical safety
under autocast and degenerate targets, 2D/3D, multi-label, drop-in for DiceCELoss, a real trainer."""

from __future__ import annotations

import inspect
import math

import pytest
import torch
import torch.nn.functional as F
from monai.losses import DiceCELoss

from monai_cwcd.losses import ContourWeightedCELoss, CWCDLoss, SeparableDiceLoss
from monai_cwcd.transforms import ContourWeightMap
from monai_cwcd.transforms.functional import binary_contour, label_contour


def _case(spatial, n_classes=4, batch=2, seed=0):
    g = torch.Generator().manual_seed(seed)
    logits = torch.randn(batch, n_classes, *spatial, generator=g)
    label = torch.randint(0, n_classes, (batch, 1, *((s + 1) // 2 for s in spatial)), generator=g)
    for d in range(len(spatial)):  # blocky labels: contours and interiors
        label = label.repeat_interleave(2, dim=2 + d)
    label = label[(slice(None), slice(None), *(slice(0, s) for s in spatial))]
    return logits, label.float()


@pytest.mark.parametrize("alpha", [0.0, 0.3, 1.0])
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_cwcd_is_alpha_sdl_plus_one_minus_alpha_cwce(alpha, reduction):
    logits, label = _case((8, 10))
    kw = dict(kernel_size=2, iterations=2, edge_is_contour=True, reduction=reduction)
    cwcd = CWCDLoss(to_onehot_y=True, softmax=True, alpha=alpha, beta=0.7, lambda_contour=3.0, **kw)(logits, label)
    sdl = SeparableDiceLoss(to_onehot_y=True, softmax=True, beta=0.7, **kw)(logits, label)
    cwce = ContourWeightedCELoss(lambda_contour=3.0, **kw)(logits, label)
    torch.testing.assert_close(cwcd, alpha * sdl + (1 - alpha) * cwce)


def test_hand_computed_tiny_2d():
    label = torch.zeros(1, 1, 5, 5)
    label[..., 1:3, 1:3] = 1
    logits = torch.zeros(1, 2, 5, 5)
    logits[:, 1] = 1.0
    s, eps = 1 / (1 + math.exp(-1)), 1e-5
    cwce = (12 * math.log(1 + math.exp(-1)) + 45 * math.log(1 + math.e)) / 25
    sdl = 0.5 * (1 - (8 * s + eps) / (4 * s + 4 + eps)) + 0.5 * (1 - eps / (21 * s + eps))
    value = CWCDLoss(to_onehot_y=True, softmax=True)(logits, label)
    assert value.item() == pytest.approx(0.5 * sdl + 0.5 * cwce, rel=1e-6)


def _value_and_grad(loss, logits, label, contour=None):
    x = logits.clone().requires_grad_(True)
    value = loss(x, label, contour)
    value.backward()
    return value.detach(), x.grad


@pytest.mark.parametrize("spatial", [(10, 12), (6, 8, 7)])
@pytest.mark.parametrize("k,it,edge", [(3, 1, False), (2, 1, True), (3, 2, False)])
def test_precomputed_contour_equals_on_the_fly(spatial, k, it, edge):
    logits, label = _case(spatial)
    loss = CWCDLoss(to_onehot_y=True, softmax=True, kernel_size=k, iterations=it, edge_is_contour=edge)
    ref_v, ref_g = _value_and_grad(loss, logits, label)
    assert loss.last_contour_source == "on_the_fly"
    own = label_contour(label, len(spatial), k, it, edge).to(torch.uint8)
    one_hot = F.one_hot(label[:, 0].long(), 4).movedim(-1, 1)
    per_class = binary_contour(one_hot, len(spatial), k, it, edge).to(torch.uint8)
    # the dictionary transform's output, batched: the contour a cached pipeline hands over
    transform = ContourWeightMap(kernel_size=k, iterations=it, edge_is_contour=edge)
    from_transform = torch.stack([torch.as_tensor(transform(lab)) for lab in label])
    for contour in (own, per_class, from_transform, own.float()):
        v, g = _value_and_grad(loss, logits, label, contour)
        assert loss.last_contour_source == "argument"
        torch.testing.assert_close(v, ref_v)
        torch.testing.assert_close(g, ref_g)
    # one-hot target (dense path) with and without the per-class contour
    for contour in (None, per_class):
        v, g = _value_and_grad(CWCDLoss(softmax=True, kernel_size=k, iterations=it, edge_is_contour=edge), logits, one_hot, contour)
        torch.testing.assert_close(v, ref_v)
        torch.testing.assert_close(g, ref_g)


@pytest.mark.parametrize("spatial", [(9, 8), (5, 6, 7)])
def test_sigmoid_multilabel_path(spatial):
    g = torch.Generator().manual_seed(4)
    logits = torch.randn(2, 3, *spatial, generator=g)
    target = torch.zeros(2, 3, *spatial)
    target[:, 0, 1:-1] = 1  # nested regions as in BraTS (WT > TC > ET)
    target[:, 1, 2:-2] = 1
    target[:, 2, 3:4] = 1
    loss = CWCDLoss(sigmoid=True, include_background=True)
    v, grad = _value_and_grad(loss, logits, target)
    sdl = SeparableDiceLoss(sigmoid=True, include_background=True)(logits, target)
    cwce = ContourWeightedCELoss(sigmoid=True)(logits, target)
    torch.testing.assert_close(v, 0.5 * sdl + 0.5 * cwce)
    contour = binary_contour(target, len(spatial)).to(torch.uint8)
    v2, grad2 = _value_and_grad(loss, logits, target, contour)
    torch.testing.assert_close(v2, v)
    torch.testing.assert_close(grad2, grad)
    assert torch.isfinite(grad).all()


def _targets(spatial):
    absent = torch.zeros(2, 1, *spatial)
    absent[:, :, : spatial[0] // 2] = 1  # classes 2 and 3 absent
    return {"absent_class": absent, "all_background": torch.zeros(2, 1, *spatial)}


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
@pytest.mark.parametrize("which", ["absent_class", "all_background"])
@pytest.mark.parametrize("squared_pred", [False, True])
def test_finite_under_autocast_and_degenerate_targets(dtype, which, squared_pred):
    spatial = (6, 8, 8)
    label = _targets(spatial)[which]
    conv = torch.nn.Conv3d(1, 4, 1)
    image = torch.randn(2, 1, *spatial) * 50  # large logits: overflow bait in half precision
    loss = CWCDLoss(to_onehot_y=True, softmax=True, squared_pred=squared_pred)
    with torch.autocast("cpu", dtype=dtype):
        logits = conv(image)
        assert logits.dtype == dtype
        value = loss(logits, label)
    value.backward()
    assert value.dtype == torch.float32 and torch.isfinite(value)
    assert all(torch.isfinite(p.grad).all() for p in conv.parameters())
    # a half-precision tensor straight in, outside autocast, is fine too
    x = (torch.randn(2, 4, *spatial) * 50).to(dtype).requires_grad_(True)
    loss(x, label).backward()
    assert torch.isfinite(x.grad.float()).all()


def test_dicece_shared_arguments_and_defaults():
    ours = inspect.signature(CWCDLoss).parameters
    theirs = inspect.signature(DiceCELoss).parameters
    shared = ["include_background", "to_onehot_y", "sigmoid", "softmax", "other_act", "squared_pred",
              "reduction", "smooth_nr", "smooth_dr", "batch", "weight"]
    for name in shared:
        assert name in ours, name
        if name != "include_background":  # False in the papers (Dice over target regions)
            assert ours[name].default == theirs[name].default, name
    assert ours["include_background"].default is False


def test_drop_in_every_shared_kwarg():
    kwargs = dict(include_background=True, to_onehot_y=True, sigmoid=False, softmax=True, other_act=None,
                  squared_pred=True, reduction="sum", smooth_nr=1e-4, smooth_dr=1e-4, batch=True,
                  weight=torch.tensor([1.0, 2.0, 1.0, 0.5]))
    logits, label = _case((8, 8))
    DiceCELoss(**kwargs)(logits, label)  # the same kwargs are valid for MONAI
    x = logits.clone().requires_grad_(True)
    value = CWCDLoss(**kwargs)(x, label)
    value.backward()
    assert value.ndim == 0 and torch.isfinite(value) and torch.isfinite(x.grad).all()


def test_in_supervised_trainer_with_contour_handoff():
    from monai.engines import SupervisedTrainer
    from monai.networks.nets import UNet

    from monai_cwcd.handlers.contour_handoff import ContourHandoff

    torch.manual_seed(0)
    data = []
    for _ in range(2):
        label = torch.zeros(1, 16, 16)
        label[:, 4:12, 5:11] = 1
        label[:, 6:9, 7:9] = 2
        data.append({"image": torch.randn(1, 16, 16), "label": label,
                     "contour_label": label_contour(label, 2).to(torch.uint8)})
    loader = torch.utils.data.DataLoader(data, batch_size=1)
    net = UNet(spatial_dims=2, in_channels=1, out_channels=3, channels=(4, 8), strides=(2,), num_res_units=0)
    loss = CWCDLoss(to_onehot_y=True, softmax=True)
    trainer = SupervisedTrainer(
        device=torch.device("cpu"), max_epochs=1, train_data_loader=loader, network=net,
        optimizer=torch.optim.SGD(net.parameters(), lr=0.01), loss_function=loss,
    )
    ContourHandoff(loss).attach(trainer)
    sources = []
    from ignite.engine import Events

    trainer.add_event_handler(Events.ITERATION_COMPLETED, lambda e: sources.append(loss.last_contour_source))
    trainer.run()
    assert trainer.state.iteration == 2
    assert sources == ["handed_over", "handed_over"]
    assert math.isfinite(trainer.state.output[0]["loss"] if isinstance(trainer.state.output, list) else trainer.state.output["loss"])
