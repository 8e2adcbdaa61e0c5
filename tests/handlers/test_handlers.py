"""Handlers on real ignite/MONAI engines: atomic checkpoints with best-metric state, training curves
written every epoch, per-class Dice, the contour hand-off (no-op for MONAI losses)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
import torch
from ignite.engine import Engine, Events
from monai.losses import DiceCELoss
from monai.metrics import DiceMetric

from monai_cwcd.bundle import LinearDecayAfter, brats_nest_regions, brats_regions_to_label, check_dataset_dir, linear_decay_after
from monai_cwcd.handlers import AtomicCheckpointSaver, ContourHandoff, PerClassMeanDice, TrainingCurvePlotter
from monai_cwcd.losses import CWCDLoss


def _validator(scores):
    """An engine whose epoch k (1-based) reports key metric scores[k-1]."""
    ev = Engine(lambda e, b: None)
    ev.state.key_metric_name = "val_mean_dice"
    ev.state.best_metric, ev.state.best_metric_epoch = -1, -1

    @ev.on(Events.EPOCH_COMPLETED)
    def _metric(e):
        e.state.metrics["val_mean_dice"] = scores[e.state.epoch - 1]

    return ev


def test_checkpoint_saver_best_and_state(tmp_path):
    net = torch.nn.Linear(2, 2)
    saver = AtomicCheckpointSaver(str(tmp_path), {"model": net}, save_key_metric=True)
    ev = _validator([0.5, 0.3, 0.7, 0.6])
    saver.attach(ev)
    written = []
    ev.add_event_handler(Events.EPOCH_COMPLETED, lambda e: written.append(os.path.getmtime(tmp_path / "model.pt")))
    ev.run([0], max_epochs=4)
    assert saver.state_dict() == {"best_metric": 0.7, "best_metric_epoch": 3}
    ckpt = torch.load(tmp_path / "model.pt", weights_only=True)
    assert ckpt["checkpointer"] == {"best_metric": 0.7, "best_metric_epoch": 3}
    assert set(ckpt) == {"model", "checkpointer"}
    assert not [f for f in os.listdir(tmp_path) if ".tmp" in f]  # temp files renamed away

    # resume: a new saver loaded from the checkpoint does not overwrite the best with a worse model
    saver2 = AtomicCheckpointSaver(str(tmp_path), {"model": torch.nn.Linear(2, 2)}, save_key_metric=True)
    ev2 = _validator([0.65, 0.8])
    saver2.attach(ev2)
    saver2.load_state_dict(ckpt["checkpointer"])
    assert ev2.state.best_metric == 0.7 and ev2.state.best_metric_epoch == 3
    before = (tmp_path / "model.pt").read_bytes()
    ev2.run([0], max_epochs=1)  # 0.65 < 0.7: untouched
    assert (tmp_path / "model.pt").read_bytes() == before
    ev2.run([0], max_epochs=2)  # 0.8 > 0.7: saved
    assert torch.load(tmp_path / "model.pt", weights_only=True)["checkpointer"]["best_metric"] == 0.8


def test_checkpoint_saver_interval_final_and_engine(tmp_path):
    net = torch.nn.Linear(2, 2)
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    sched = linear_decay_after(opt, epochs=4, start_epoch=1)
    trainer = Engine(lambda e, b: None)
    saver = AtomicCheckpointSaver(str(tmp_path), {"model": net, "optimizer": opt, "lr_scheduler": sched},
                                  save_interval=1, save_final=True, engine_key="trainer")
    saver.attach(trainer)
    trainer.add_event_handler(Events.EPOCH_COMPLETED, lambda e: sched.step())
    trainer.run([0, 1, 2], max_epochs=2)
    for f in ("model_last.pt", "model_final.pt"):
        ckpt = torch.load(tmp_path / f, weights_only=True)
        assert {"model", "optimizer", "lr_scheduler", "trainer", "checkpointer"} <= set(ckpt)
        assert ckpt["trainer"]["iteration"] == 6 and ckpt["trainer"]["max_epochs"] == 2


def test_checkpoint_saver_errors(tmp_path):
    with pytest.raises(ValueError, match="nothing to save"):
        AtomicCheckpointSaver(str(tmp_path), {"model": torch.nn.Linear(1, 1)})
    with pytest.raises(ValueError, match="no state_dict"):
        AtomicCheckpointSaver(str(tmp_path), {"x": 3}, save_final=True)
    with pytest.raises(ValueError, match="best_metric_epoch"):
        AtomicCheckpointSaver(str(tmp_path), {"m": torch.nn.Linear(1, 1)}, save_final=True).load_state_dict({"best_metric": 1})


def test_training_curves_written_every_epoch(tmp_path):
    trainer = Engine(lambda e, b: {"loss": torch.tensor(float(b) + e.state.epoch)})
    val = _validator([0.1, 0.4, 0.5])

    @val.on(Events.EPOCH_COMPLETED)
    def _class(e):
        e.state.metrics.update({"val_dice_a": 0.2 * e.state.epoch, "val_dice_b": float("nan")})

    plotter = TrainingCurvePlotter(str(tmp_path), validator=val)
    seen = []
    trainer.add_event_handler(Events.EPOCH_COMPLETED, lambda e: val.run([0], max_epochs=e.state.epoch))
    plotter.attach(trainer)

    @trainer.on(Events.EPOCH_COMPLETED)
    def _snapshot(e):
        seen.append(json.loads((tmp_path / "metrics.json").read_text()))
        assert (tmp_path / "training_curves.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    trainer.run([0, 1], max_epochs=3)
    assert [len(s) for s in seen] == [1, 2, 3]
    last = seen[-1]
    assert [r["loss"] for r in last] == [1.5, 2.5, 3.5]
    assert last[1]["val_mean_dice"] == 0.4 and last[2]["val_dice_a"] == pytest.approx(0.6)
    assert (tmp_path / "metrics.csv").read_text().splitlines()[0].startswith("epoch,loss,lr,val_mean_dice")
    assert not [f for f in os.listdir(tmp_path) if ".tmp" in f]
    # resume keeps the history
    p2 = TrainingCurvePlotter(str(tmp_path))
    p2.load_state_dict(plotter.state_dict())
    assert p2.history == plotter.history


def test_per_class_mean_dice_matches_monai():
    torch.manual_seed(0)
    y = torch.nn.functional.one_hot(torch.randint(0, 3, (2, 6, 6)), 3).permute(0, 3, 1, 2).float()
    p = torch.nn.functional.one_hot(torch.randint(0, 3, (2, 6, 6)), 3).permute(0, 3, 1, 2).float()
    ev = Engine(lambda e, b: (p, y))
    PerClassMeanDice(["a", "b"]).attach(ev, "val_class_dice")
    ev.run([0], max_epochs=1)
    ref = DiceMetric(include_background=False, reduction="mean_batch")(p, y).nanmean(0)
    assert ev.state.metrics["val_dice_a"] == pytest.approx(float(ref[0]), abs=1e-4)
    assert ev.state.metrics["val_dice_b"] == pytest.approx(float(ref[1]), abs=1e-4)
    assert "val_class_dice" not in ev.state.metrics  # only scalars are published
    ev2 = Engine(lambda e, b: (p, y))
    PerClassMeanDice(["a", "b", "c"]).attach(ev2, "d")
    with pytest.raises(ValueError, match="3 class names"):
        ev2.run([0], max_epochs=1)


def test_contour_handoff_uses_batch_map_and_skips_monai_losses():
    loss = CWCDLoss(to_onehot_y=True, softmax=True)
    label = torch.zeros(1, 1, 8, 8)
    label[..., 2:6, 2:6] = 1
    contour = torch.zeros_like(label, dtype=torch.uint8)
    contour[..., 3, 3] = 1  # deliberately not the erosion contour: proves this map is the one used
    sources = []

    def step(engine, batch):
        logits = torch.randn(1, 2, 8, 8)
        value = loss(logits, batch["label"])
        sources.append(loss.last_contour_source)
        return value

    trainer = Engine(step)
    handoff = ContourHandoff(loss)
    handoff.attach(trainer)
    trainer.run([{"label": label, "contour_label": contour}] * 3, max_epochs=1)
    assert sources == ["handed_over"] * 3 and handoff.handed_over == 3
    sources.clear()
    trainer.run([{"label": label}], max_epochs=1)  # no map in the batch -> on the fly
    assert sources == ["on_the_fly"]

    monai_loss = DiceCELoss(to_onehot_y=True, softmax=True)
    h = ContourHandoff(monai_loss)
    e = Engine(lambda e, b: monai_loss(torch.randn(1, 2, 8, 8), b["label"]))
    h.attach(e)
    e.run([{"label": label, "contour_label": contour}], max_epochs=1)
    assert not h.enabled and h.handed_over == 0


def test_linear_decay_and_brats_labels(tmp_path):
    f = LinearDecayAfter(epochs=100, base_lr=3e-4, start_epoch=20, end_lr=1e-6)
    assert f(0) == f(19) == 1.0
    assert f(100) * 3e-4 == pytest.approx(1e-6) and f(60) * 3e-4 == pytest.approx((3e-4 + 1e-6) / 2)
    with pytest.raises(ValueError, match="end_lr"):
        LinearDecayAfter(10, 1e-3, end_lr=1.0)
    regions = torch.zeros(3, 4, 1, 1)
    regions[1, :3] = 1  # WT
    regions[0, :2] = 1  # TC
    regions[2, :1] = 1  # ET
    assert brats_regions_to_label(regions).flatten().tolist() == [4, 1, 2, 0]
    with pytest.raises(ValueError, match="TC, WT, ET"):
        brats_regions_to_label(torch.zeros(2, 3, 3))
    assert check_dataset_dir(str(tmp_path)) == str(tmp_path)
    with pytest.raises(FileNotFoundError, match="bundles/brats/demo.json"):
        check_dataset_dir(str(tmp_path / "missing"), "brats")


def test_brats_scores_are_those_of_the_written_label_map():
    """The BraTS validation/evaluate.json postprocessing nests the regions, so its Dice is the Dice of
    the label map inference writes: for any (also non-nested) regions, nesting equals label map ->
    MONAI's regions. An untrained model's ET firing outside WT made the two disagree (0.51 vs 0.02)."""
    from monai.bundle import ConfigParser
    from monai.transforms import ConvertToMultiChannelBasedOnBratsClasses

    g = torch.Generator().manual_seed(0)
    regions = (torch.rand(3, 6, 5, 4, generator=g) > 0.5).float()  # independent channels: not nested
    back = ConvertToMultiChannelBasedOnBratsClasses()(brats_regions_to_label(regions)[0]).float()
    assert torch.equal(brats_nest_regions(regions), back) and not torch.equal(regions, back)
    assert torch.equal(brats_nest_regions(back), back)  # nested regions are left as they are
    with pytest.raises(ValueError, match="TC, WT, ET"):
        brats_nest_regions(torch.zeros(2, 3, 3))
    # the bundle's validation postprocessing (also evaluate.json's) applies it to each prediction
    parser = ConfigParser()
    parser.read_config(str(Path(__file__).resolve().parents[2] / "bundles" / "brats" / "train.json"))
    post = parser.get_parsed_content("validate#postprocessing")
    logits = torch.where(regions > 0, 5.0, -5.0)
    assert torch.equal(post({"pred": logits})["pred"], back)


def _onehot(lab: torch.Tensor, n: int = 4) -> torch.Tensor:
    return torch.nn.functional.one_hot(lab.long(), n).movedim(-1, 1).float()


def _absent_present_batch():
    """Image 0: structure 1 perfect, 2 missed, 3 absent from both. Image 1: structure 1 half right,
    2 hallucinated (absent from the reference), 3 absent from both."""
    y0, p0 = torch.zeros(8, 8), torch.zeros(8, 8)
    y0[:4, :4] = 1
    p0[:4, :4] = 1
    y0[5:, 5:] = 2  # missed
    y1, p1 = torch.zeros(8, 8), torch.zeros(8, 8)
    y1[:4, :4] = 1
    p1[:4, :2] = 1
    p1[5:, 5:] = 2  # hallucinated
    return _onehot(torch.stack([p0, p1])), _onehot(torch.stack([y0, y1]))


def test_per_class_mean_dice_absent_is_nan_and_means_over_present():
    p, y = _absent_present_batch()
    ev = Engine(lambda e, b: (p, y))
    PerClassMeanDice(["spleen", "kidney", "gallbladder"]).attach(ev, "val_class_dice")
    ev.run([0], max_epochs=1)
    m = ev.state.metrics
    assert m["val_dice_spleen"] == pytest.approx((1.0 + 2 * 8 / (16 + 8)) / 2)
    assert m["val_dice_kidney"] == 0.0  # missed once, hallucinated once: both count as 0
    assert np.isnan(m["val_dice_gallbladder"])  # absent everywhere: NaN, not 0.0
    details = ev.state.metric_details["val_class_dice"]
    assert details.shape == (2, 3) and torch.isnan(details[:, 2]).all() and not torch.isnan(details[:, :2]).any()


def test_structure_metrics_saver_names_and_quiet(tmp_path, recwarn):
    from monai_cwcd.handlers import StructureMetricsSaver

    p, y = _absent_present_batch()
    ev = Engine(lambda e, b: (p, y))
    PerClassMeanDice(["spleen", "kidney", "gallbladder"]).attach(ev, "val_class_dice")
    StructureMetricsSaver(str(tmp_path), class_names=["spleen", "kidney", "gallbladder"], metrics="*",
                          metric_details=["val_class_dice"], summary_ops="*",
                          batch_transform=lambda b: [{"filename_or_obj": "a.nii.gz"}, {"filename_or_obj": "b.nii.gz"}]).attach(ev)
    ev.run([0], max_epochs=1)
    raw = (tmp_path / "val_class_dice_raw.csv").read_text().splitlines()
    assert raw[0] == "filename,spleen,kidney,gallbladder,mean"
    cells = raw[1].split(",")
    assert cells[0] == "a.nii.gz"
    np.testing.assert_allclose([float(c) for c in cells[1:]], [1.0, 0.0, np.nan, 0.5])  # mean over the present ones
    summary = (tmp_path / "val_class_dice_summary.csv").read_text().splitlines()
    assert [r.split(",")[0] for r in summary] == ["class", "spleen", "kidney", "gallbladder", "mean"]
    assert np.isnan(float(summary[3].split(",")[1]))
    assert "val_dice_spleen" in (tmp_path / "metrics.csv").read_text()
    flood = [w for w in recwarn if "slice" in str(w.message) or "Degrees of freedom" in str(w.message)]
    assert not flood, [str(w.message) for w in flood]
    ev2 = Engine(lambda e, b: (p, y))
    PerClassMeanDice(["spleen", "kidney", "gallbladder"]).attach(ev2, "val_class_dice")
    StructureMetricsSaver(str(tmp_path), class_names=["spleen"], metric_details="*",
                          batch_transform=lambda b: []).attach(ev2)
    with pytest.raises(ValueError, match="'val_class_dice' has 3 channel"):
        ev2.run([0], max_epochs=1)


AMOS_NAMES = ["spleen", "right_kidney", "left_kidney", "gallbladder", "esophagus", "liver", "stomach", "aorta",
              "postcava", "pancreas", "right_adrenal_gland", "left_adrenal_gland", "duodenum", "bladder", "prostate_uterus"]


@pytest.mark.parametrize("epochs", [1, 7, 40])
def test_training_curves_distinct_styles_names_and_integer_ticks(tmp_path, epochs):
    plotter = TrainingCurvePlotter(str(tmp_path), validator=_validator([0.5] * epochs))
    plotter.validator.state.key_metric_name = "val_mean_dice"
    plotter.history = [
        {"epoch": e, "loss": 1.0 / e, "val_mean_dice": 0.5,
         **{f"val_dice_{n}": (float("nan") if n == "bladder" else 0.05 * i) for i, n in enumerate(AMOS_NAMES)}}
        for e in range(1, epochs + 1)
    ]
    fig = plotter.figure()
    ax_loss, ax_dice = fig.axes[:2]
    legend = [t.get_text() for t in ax_dice.get_legend().get_texts()]
    assert legend[0] == "val_mean_dice" and legend[1:] == [n if n != "bladder" else "bladder (absent)" for n in AMOS_NAMES]
    styles = [(tuple(line.get_color()), line.get_linestyle()) for line in ax_dice.lines[1:]]
    assert len(set(styles)) == len(AMOS_NAMES)  # 15 structures, no two drawn alike (spleen vs right adrenal gland)
    assert len({color for color, _ in styles}) == len(AMOS_NAMES)  # and a distinct colour for each
    for ax in (ax_loss, ax_dice):
        ticks = [t for t in ax.get_xticks() if ax.get_xlim()[0] <= t <= ax.get_xlim()[1]]
        assert ticks and all(float(t).is_integer() for t in ticks), ticks
    plotter.write()
    assert (tmp_path / "training_curves.png").read_bytes()[:4] == b"\x89PNG"
