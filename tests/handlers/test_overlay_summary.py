"""ValidationOverlay and RunSummary on real MONAI engines (SupervisedTrainer, SupervisedEvaluator,
ValidationHandler) with tiny in-memory volumes."""

from __future__ import annotations

import json
import math
import os

import matplotlib.image as mpimg
import numpy as np
import pytest
import torch
from ignite.engine import Engine, Events
from monai.engines import SupervisedEvaluator, SupervisedTrainer
from monai.handlers import MeanDice, ValidationHandler, from_engine
from monai.transforms import Activationsd, AsDiscreted, Compose
from monai.utils import set_determinism

from monai_cwcd.handlers import PerClassMeanDice, RunSummary, ValidationOverlay
from monai_cwcd.handlers.overlay import _PALETTE, render_overlay, structure_masks

NAMES = ["spleen", "right_kidney", "left_kidney"]
SHAPE = (20, 16, 8)


def _case(seed: int, absent: int | None = None) -> dict:
    """Image and label of 3 organs (cubes at fixed places, intensity = class) plus noise."""
    rng = np.random.RandomState(seed)
    lab = np.zeros((1, *SHAPE), np.float32)
    lab[0, 2:8, 2:8, 1:7] = 1
    lab[0, 11:17, 3:9, 2:6] = 2
    lab[0, 5:12, 10:15, 2:7] = 3
    if absent is not None:
        lab[lab == absent] = 0
    img = lab * 1.0 + rng.normal(0, 0.05, lab.shape).astype(np.float32)
    return {"image": torch.as_tensor(img), "label": torch.as_tensor(lab), "case_id": f"case_{seed}"}


def _evaluator(data, net, handlers=(), key_metric=True):
    post = Compose([Activationsd(keys="pred", softmax=True), AsDiscreted(keys=["pred", "label"], argmax=[True, False], to_onehot=4)])
    metrics = {"val_mean_dice": MeanDice(include_background=False, output_transform=from_engine(["pred", "label"]))}
    return SupervisedEvaluator(
        device=torch.device("cpu"), val_data_loader=data, network=net, postprocessing=post,
        key_val_metric=metrics if key_metric else None,
        additional_metrics={"val_class_dice": PerClassMeanDice(NAMES, output_transform=from_engine(["pred", "label"]))},
        val_handlers=list(handlers),
    )


def _net():
    set_determinism(seed=0)
    return torch.nn.Sequential(torch.nn.Conv3d(1, 8, 3, padding=1), torch.nn.ReLU(), torch.nn.Conv3d(8, 4, 1))


def _batch(cases):
    return [{k: (torch.stack([c[k] for c in cases]) if k != "case_id" else [c[k] for c in cases]) for k in cases[0]}]


def test_structure_masks_layouts():
    idx = np.zeros((1, 4, 4, 2))
    idx[0, 0, 0, 0], idx[0, 1, 1, 1] = 1, 3
    m = structure_masks(idx, 3)
    assert m.shape == (3, 4, 4, 2) and m[0, 0, 0, 0] and m[2, 1, 1, 1] and m.sum() == 2
    onehot = np.eye(4)[idx[0].astype(int)].transpose(3, 0, 1, 2)
    np.testing.assert_array_equal(structure_masks(torch.as_tensor(onehot), 3), m)
    regions = np.zeros((3, 4, 4, 2))  # BraTS-like overlapping regions, background not a channel
    regions[1, :2], regions[0, 0] = 1, 1
    r = structure_masks(regions, 3, include_background=True)
    assert r[0].sum() == 8 and r[1].sum() == 16 and r[0][r[0]].all() and r[1][r[0]].all()
    with pytest.raises(ValueError, match=r"expected 4 channels .* got shape \(2, 4, 4, 2\)"):
        structure_masks(np.zeros((2, 4, 4, 2)), 3)


def test_render_overlay_outlines_and_legend():
    case = _case(0)
    ref = structure_masks(case["label"], 3)
    pred = ref.copy()
    pred[2] = False  # left kidney missed
    fig = render_overlay(case["image"][0], ref, pred, NAMES, num_slices=3, pixdim=(1.0, 1.0, 2.0), title="t")
    axes = fig.get_axes()
    assert len(axes) == 6  # 2 rows x 3 slices
    assert [t.get_text() for t in fig.legends[0].get_texts()] == ["spleen", "right kidney", "left kidney"]
    assert [a.get_ylabel() for a in axes[::3]] == ["reference", "prediction"]
    # every shown slice lies in the axial range of the reference structures (z 1..6)
    assert all(1 <= int(a.get_title().split()[-1]) <= 6 for a in axes[:3])
    # the left kidney (third colour) is outlined in the reference row only
    assert any(len(a.collections) == 3 for a in axes[:3]) and all(len(a.collections) <= 2 for a in axes[3:])
    with pytest.raises(ValueError, match="K = 2 names"):
        render_overlay(case["image"][0], ref, pred, NAMES[:2])


def _colour_fraction(png: np.ndarray, hex_colour: str) -> float:
    rgb = np.array([int(hex_colour[i : i + 2], 16) for i in (1, 3, 5)]) / 255.0
    return float((np.abs(png[..., :3] - rgb).max(-1) < 0.08).mean())


def test_validation_overlay_on_evaluator_writes_on_best_only(tmp_path):
    data = _batch([_case(1), _case(2)])
    overlay = ValidationOverlay(str(tmp_path), NAMES, case_index=1, num_slices=2, title="demo")
    ev = _evaluator(data, _net(), [overlay])
    ev.run(global_epoch=1)
    png = tmp_path / "validation_overlay.png"
    assert png.is_file() and overlay.path == str(png)
    assert not [f for f in os.listdir(tmp_path) if ".tmp" in f]
    img = mpimg.imread(str(png))
    assert img.shape[0] > 300 and img.shape[1] > 600
    for k in range(3):  # each organ's outline colour is drawn
        assert _colour_fraction(img, _PALETTE[k]) > 1e-4, NAMES[k]
    assert overlay._case["case"] == "case_2"  # case_index=1 within the batch
    # same network, same score: epoch 2 is not a new best, the PNG is not rewritten
    png.unlink()
    ev.run(global_epoch=2)
    assert ev.state.best_metric_epoch == 1 and not png.exists()
    # only_best=False: written after every validation; without any key metric too
    every = ValidationOverlay(str(tmp_path / "every"), NAMES, only_best=False)
    ev2 = _evaluator(data, _net(), [every], key_metric=False)
    ev2.run(global_epoch=3)
    assert (tmp_path / "every" / "validation_overlay.png").is_file()


def test_validation_overlay_errors(tmp_path):
    with pytest.raises(ValueError, match="at least one class name"):
        ValidationOverlay(str(tmp_path), [])
    with pytest.raises(ValueError, match="case_index"):
        ValidationOverlay(str(tmp_path), NAMES, case_index=-1)
    overlay = ValidationOverlay(str(tmp_path), NAMES + ["extra", "more"])  # 5 names, 4 channels
    ev = _evaluator(_batch([_case(1)]), _net(), [overlay])
    with pytest.raises(ValueError, match=r"expected 6 channels"):
        ev.run()
    with pytest.raises(RuntimeError, match="no validation case"):
        ValidationOverlay(str(tmp_path), NAMES).write()


def test_run_summary_with_trainer_and_validator(tmp_path):
    train = _batch([_case(3), _case(4)])
    net = _net()
    ev = _evaluator(_batch([_case(5, absent=None)]), net)
    printed = []
    outputs = {"training curves": str(tmp_path / "curves.png"), "checkpoint": str(tmp_path / "missing.pt")}
    (tmp_path / "curves.png").write_bytes(b"x")
    summary = RunSummary(ev, NAMES, outputs=outputs, output_dir=str(tmp_path), title="AMOS demo", printer=printed.append)
    trainer = SupervisedTrainer(
        device=torch.device("cpu"), max_epochs=6, train_data_loader=train, network=net,
        optimizer=torch.optim.Adam(net.parameters(), 5e-2), loss_function=torch.nn.CrossEntropyLoss(),
        prepare_batch=lambda b, d, nb, **kw: (b["image"], b["label"][:, 0].long()),
        train_handlers=[ValidationHandler(validator=ev, interval=1, epoch_level=True), summary],
    )
    trainer.run()
    doc = json.loads((tmp_path / "summary.json").read_text())
    best_epoch = ev.state.best_metric_epoch
    assert doc["epoch"] == best_epoch and doc["epochs"] == 6 and doc["metric"] == "val_mean_dice"
    assert doc["value"] == pytest.approx(ev.state.best_metric)
    assert list(doc["per_class"]) == NAMES and doc["training_seconds"] > 0
    assert doc["outputs"] == outputs
    text = printed[0]
    assert text.splitlines()[0] == "==== AMOS demo ===="
    assert f"best val_mean_dice: {ev.state.best_metric:.3f} at epoch {best_epoch} of 6" in text
    for n in NAMES:
        assert f"  {n} " in text
    assert f"{outputs['training curves']}\n" in text + "\n" and f"{outputs['checkpoint']}  (missing)" in text
    # the per-class scores are those of the best epoch, also after a resume
    restored = RunSummary(ev, NAMES)
    restored.load_state_dict(summary.state_dict())
    assert restored.best == summary.best and restored.best["epoch"] == best_epoch


def test_run_summary_absent_structure_and_no_validation():
    """A NaN per-class score (structure absent from every validation case) reads 'absent'."""
    val = Engine(lambda e, b: None)
    val.state.key_metric_name = "val_mean_dice"
    val.state.best_metric, val.state.best_metric_epoch = -1, -1

    @val.on(Events.EPOCH_COMPLETED)
    def _metrics(e):
        e.state.metrics.update({"val_mean_dice": 0.5, "val_dice_spleen": 0.7, "val_dice_right_kidney": math.nan,
                                "val_dice_left_kidney": 0.3})
        e.state.best_metric, e.state.best_metric_epoch = 0.5, e.state.epoch

    printed = []
    summary = RunSummary(val, NAMES, printer=printed.append)
    trainer = Engine(lambda e, b: val.run([0], max_epochs=e.state.epoch))
    summary.attach(trainer)
    trainer.run([0], max_epochs=2)
    assert summary.best["per_class"] == {"spleen": 0.7, "right_kidney": None, "left_kidney": 0.3}
    assert "  right_kidney  absent" in printed[0] and "at epoch 2 of 2" in printed[0]
    empty = RunSummary(Engine(lambda e, b: None), NAMES, printer=printed.append)
    empty.completed(trainer)
    assert "no validation score was recorded." in printed[-1]
    with pytest.raises(ValueError, match="at least one class name"):
        RunSummary(val, [])


def test_render_overlay_nested_regions_thick_to_thin():
    """BraTS-like nested regions (ET inside TC inside WT) share outlines: drawn thick to thin."""
    wt = np.zeros((16, 16, 4), bool)
    wt[3:13, 3:13] = True
    tc = np.zeros_like(wt)
    tc[5:11, 5:11] = True
    regions = np.stack([tc, wt, tc])  # ET == TC here: identical outlines
    fig = render_overlay(np.random.RandomState(0).rand(16, 16, 4), regions, regions, ["tc", "wt", "et"], num_slices=1)
    widths = [c.get_linewidths()[0] for c in fig.get_axes()[0].collections]
    assert widths == sorted(widths, reverse=True) and widths[0] > widths[-1]
    flat = render_overlay(np.zeros((16, 16, 4)), regions[1:2], regions[1:2], ["wt"], num_slices=1)
    assert flat.get_axes()[0].collections[0].get_linewidths()[0] == pytest.approx(1.6)
