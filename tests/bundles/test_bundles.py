"""Every bundle end to end on tiny real-layout data: train (subprocess ``python -m monai.bundle run``),
inference, evaluate, export to the model-zoo layout, verify_metadata (offline schema),
verify_net_in_out and ckpt_export (the TorchScript file loads and runs)."""

from __future__ import annotations

import glob
import json
import os
from pathlib import Path

import pytest
import torch
from monai.bundle import ckpt_export, run, verify_metadata, verify_net_in_out

from monai_cwcd.bundle import export_bundle

from .conftest import REPO, TINY, bundle_cmd, check

SCHEMA = str(REPO / "monai_cwcd" / "schemas" / "meta_schema.json")
PRED_EXT = {"amos": ".nii.gz", "brats": ".nii.gz", "pengwin": ".mha"}
IN_CHANNELS = {"amos": 1, "brats": 4, "pengwin": 1}
OUT_CHANNELS = {"amos": 16, "brats": 3, "pengwin": 15}


def tiny_overrides(tmp: Path, dataset_dir: str, features: bool = True) -> list[str]:
    args = [
        "--dataset_dir", dataset_dir, "--epochs", "1", "--num_workers", "0", "--batch_size", "2",
        "--patch_size", json.dumps(TINY["patch_size"]),
        "--output_dir", str(tmp / "out"), "--ckpt_dir", str(tmp / "models"),
    ]
    return args + (["--network_def#features", json.dumps(TINY["features"])] if features else [])


@pytest.mark.parametrize("name", ["amos", "brats", "pengwin"])
def test_bundle_end_to_end(name, tiny_datasets, tmp_path, monkeypatch):
    data = tiny_datasets[name]
    train = f"bundles/{name}/train.json"
    check(bundle_cmd("run", "--config_file", train, *tiny_overrides(tmp_path, data)))
    models = tmp_path / "models"
    for f in ("model.pt", "model_last.pt", "model_final.pt"):
        assert (models / f).is_file(), f
    last = torch.load(models / "model_last.pt", weights_only=True)
    assert {"model", "optimizer", "lr_scheduler", "trainer", "checkpointer", "curves"} <= set(last)
    assert last["trainer"]["iteration"] >= 1 and last["checkpointer"]["best_metric_epoch"] == 1
    history = json.loads((tmp_path / "out" / "metrics.json").read_text())
    assert [r["epoch"] for r in history] == [1] and "val_mean_dice" in history[0]
    assert (tmp_path / "out" / "training_curves.png").stat().st_size > 1000

    # inference (in-process: the same `monai.bundle run` function): one prediction per test case
    monkeypatch.chdir(REPO)
    run(
        config_file=f"bundles/{name}/inference.json", dataset_dir=data, num_workers=0,
        patch_size=TINY["patch_size"], **{"network_def#features": TINY["features"]},
        ckpt_path=str(models / "model.pt"), output_dir=str(tmp_path / "pred"),
    )
    preds = glob.glob(str(tmp_path / "pred" / f"*{PRED_EXT[name]}"))
    assert len(preds) == 1, os.listdir(tmp_path / "pred")

    # evaluate on the test split with the best checkpoint
    run(
        config_file=[train, f"bundles/{name}/evaluate.json"], dataset_dir=data, num_workers=0,
        patch_size=TINY["patch_size"], **{"network_def#features": TINY["features"]},
        output_dir=str(tmp_path / "out"), ckpt_dir=str(models),
    )
    header = (tmp_path / "out" / "val_class_dice_raw.csv").read_text().splitlines()[0].split(",")
    assert header[1] != "class0" and header[-1] == "mean"  # structure names (StructureMetricsSaver)

    # export to the model-zoo layout and run MONAI's checks from inside it
    out = Path(export_bundle(name, tmp_path / "zoo", checkpoint=models / "model.pt"))
    for rel in ("configs/train.json", "configs/inference.json", "configs/metadata.json", "models/model.pt",
                "docs/README.md", "LICENSE"):
        assert (out / rel).is_file(), rel
    assert json.loads((out / "configs" / "inference.json").read_text())["bundle_root"] == "."
    monkeypatch.chdir(out)
    verify_metadata(meta_file="configs/metadata.json", filepath=SCHEMA)
    verify_net_in_out(net_id="network_def", meta_file="configs/metadata.json", config_file="configs/inference.json",
                      n=1, any=1, **{"network_def#features": TINY["features"]})
    ckpt_export(net_id="network_def", filepath="models/model.ts", ckpt_file="models/model.pt",
                meta_file="configs/metadata.json", config_file="configs/inference.json", key_in_ckpt="model",
                **{"network_def#features": TINY["features"]})
    ts = torch.jit.load("models/model.ts")
    y = ts(torch.randn(1, IN_CHANNELS[name], 32, 32, 32))
    assert y.shape == (1, OUT_CHANNELS[name], 32, 32, 32)


def test_missing_dataset_fails_at_once(tmp_path):
    proc = bundle_cmd("run", "--config_file", "bundles/amos/train.json", "--dataset_dir", str(tmp_path / "nope"))
    assert proc.returncode != 0
    err = proc.stderr + proc.stdout
    assert "--dataset_dir" in err and "bundles/amos/demo.json" in err and str(tmp_path / "nope") in err
    assert "Loading dataset" not in err  # nothing was built


def test_swap_network_and_loss_with_mlflow(tiny_datasets, tmp_path):
    """Any MONAI network and loss by overriding one key each; MONAI's ``--tracking mlflow`` logs the run."""
    override = tmp_path / "swap.json"
    override.write_text(json.dumps({
        "network_def": {"_target_": "monai.networks.nets.UNet", "spatial_dims": 3, "in_channels": 1,
                        "out_channels": "@num_classes", "channels": [4, 8, 16], "strides": [2, 2]},
        "loss": {"_target_": "DiceCELoss", "to_onehot_y": True, "softmax": True},
    }))
    tracking_uri = f"sqlite:///{tmp_path / 'mlruns.db'}"
    check(bundle_cmd(
        "run", "--config_file", f"['bundles/amos/train.json','{override}']", *tiny_overrides(tmp_path, tiny_datasets["amos"], features=False),
        "--tracking", "mlflow", "--tracking_uri", tracking_uri, "--experiment_name", "cwcd_test",
    ))
    state = torch.load(tmp_path / "models" / "model.pt", weights_only=True)["model"]
    assert any(k.startswith("model.") for k in state)  # MONAI UNet's parameter names, not PDANet's
    import mlflow

    client = mlflow.tracking.MlflowClient(tracking_uri=tracking_uri)
    exp = client.get_experiment_by_name("cwcd_test")
    runs = client.search_runs([exp.experiment_id])
    metrics = {k for r in runs for k in r.data.metrics}
    assert "train_loss" in metrics and "val_mean_dice" in metrics and "val_dice_spleen" in metrics
