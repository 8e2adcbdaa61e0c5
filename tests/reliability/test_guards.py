"""NonFiniteGuard on a real SupervisedTrainer: a NaN/Inf stops the run with the iteration and case ids."""

from __future__ import annotations

import re

import pytest
import torch
from monai.data import DataLoader
from monai.engines import SupervisedTrainer
from monai.networks.nets import UNet

from monai_cwcd.handlers import NonFiniteError, NonFiniteGuard
from monai_cwcd.losses import CWCDLoss


def _trainer(data, guard):
    torch.manual_seed(0)
    net = UNet(3, 1, 3, channels=(4, 8), strides=(2,), num_res_units=0)
    trainer = SupervisedTrainer(
        device=torch.device("cpu"),
        max_epochs=2,
        train_data_loader=DataLoader(data, batch_size=2, shuffle=False),
        network=net,
        optimizer=torch.optim.Adam(net.parameters(), 1e-3),
        loss_function=CWCDLoss(to_onehot_y=True, softmax=True),
        train_handlers=[guard],
    )
    return trainer, net


def _data(n=6, bad=None, value=float("nan")):
    g = torch.Generator().manual_seed(0)
    out = []
    for i in range(n):
        label = torch.randint(0, 3, (1, 8, 8, 8), generator=g).float()
        image = label + 0.1 * torch.randn(1, 8, 8, 8, generator=g)
        if i == bad:
            image[0, 1, 2, 3] = value
        out.append({"image": image, "label": label, "case_id": f"case_{i:02d}"})
    return out


def test_clean_run_is_untouched():
    trainer, _ = _trainer(_data(), NonFiniteGuard())
    trainer.run()
    assert trainer.state.iteration == 6


def test_nan_input_names_case_and_iteration():
    trainer, _ = _trainer(_data(bad=3), NonFiniteGuard())
    msg = r"input 'image' \(shape \(2, 1, 8, 8, 8\)\) holds non-finite voxels at epoch 1, iteration 2 .*case_02', 'case_03'.*case_03: 1 NaN, 0 Inf"
    with pytest.raises(NonFiniteError, match=msg):
        trainer.run()


def test_non_finite_loss_stops_before_the_optimizer_step():
    trainer, net = _trainer(_data(bad=5, value=float("inf")), NonFiniteGuard(input_keys=()))
    before = {}

    @trainer.on(__import__("ignite.engine", fromlist=["Events"]).Events.ITERATION_STARTED)
    def _snapshot(engine):
        before.update({k: v.clone() for k, v in net.state_dict().items()})

    with pytest.raises(NonFiniteError, match=re.escape("batch case ids: ['case_04', 'case_05']")) as err:
        trainer.run()
    assert "non-finite loss nan at epoch 1, iteration 3 (SupervisedTrainer)" in str(err.value)
    assert isinstance(err.value, ValueError)
    after = net.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in after), "the optimizer stepped on a non-finite loss"
    assert all(torch.isfinite(v).all() for v in after.values() if v.is_floating_point())


def test_without_guard_the_run_goes_silently_nan():
    """The failure mode the guard exists for: MONAI alone trains on and poisons the weights."""
    trainer, net = _trainer(_data(bad=5, value=float("inf")), NonFiniteGuard(input_keys=(), check_loss=False))
    trainer.run()
    assert not all(torch.isfinite(v).all() for v in net.state_dict().values() if v.is_floating_point())
