"""Every bundle end to end on tiny real-layout data, through one run folder: train (subprocess
``python -m monai.bundle run``; it saves ``<run>/configs/train.json``), then, with ``--run_dir`` only
and no training override repeated: inference on new images (grid and affine of each input kept),
evaluate on the test split (into ``<run>/evaluation``, the training metrics untouched),
``monai-cwcd export-bundle`` to the model-zoo layout, MONAI's verify_metadata (offline schema),
verify_net_in_out and ckpt_export (the TorchScript file loads and runs), from the exported folder
and from the run folder. A checkpoint that does not fit its config fails with one line."""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
import torch
from monai.bundle import ckpt_export, run, verify_metadata, verify_net_in_out

import monai_cwcd.data
from monai_cwcd.bundle import RUN_CONFIG, RunConfig, export_bundle, save_run_config
from monai_cwcd.cli import main as cli_main

from .conftest import NUM_TEST, REPO, TEST_AFFINES, TINY, bundle_cmd, check

SCHEMA = str(REPO / "monai_cwcd" / "schemas" / "meta_schema.json")
PRED_EXT = {"amos": ".nii.gz", "brats": ".nii.gz", "pengwin": ".mha"}
IN_CHANNELS = {"amos": 1, "brats": 4, "pengwin": 1}
OUT_CHANNELS = {"amos": 16, "brats": 3, "pengwin": 15}


def tiny_overrides(run_dir: Path, dataset_dir: str, features: bool = True) -> list[str]:
    args = [
        "--dataset_dir", dataset_dir, "--epochs", "1", "--num_workers", "0", "--batch_size", "2",
        "--patch_size", json.dumps(TINY["patch_size"]), "--output_dir", str(run_dir),
    ]
    return args + (["--network_def#features", json.dumps(TINY["features"])] if features else [])


@pytest.fixture(scope="module")
def trained(tiny_datasets, tmp_path_factory):
    """``trained(name)``: the run folder of a 1-epoch training of bundle ``name`` (trained once per module)."""
    runs: dict[str, Path] = {}

    def get(name: str) -> Path:
        if name not in runs:
            run_dir = tmp_path_factory.mktemp(f"run_{name}")
            check(bundle_cmd("run", "--config_file", f"bundles/{name}/train.json", *tiny_overrides(run_dir, tiny_datasets[name])))
            runs[name] = run_dir
        return runs[name]

    return get


def _new_images(name: str, data: str, dest: Path) -> list[tuple[Path, Path]]:
    """A folder of images the run never saw, on other grids; ``[(input file, expected prediction)]``."""
    dest.mkdir()
    if name == "amos":  # the default input: dataset.json "test" (imagesTs/), unlabelled, rotated/anisotropic affines
        return [(Path(data) / "imagesTs" / f"amos_{i:04d}.nii.gz", Path(f"amos_{i:04d}_seg.nii.gz")) for i in range(7, 7 + NUM_TEST)]
    if name == "brats":  # the BraTS validation layout: case folders with the 4 modalities and no _seg
        src = sorted(Path(data).glob("BraTS2021_*"))[0]
        case = dest / "BraTS2021_09999"
        case.mkdir()
        for m in ("flair", "t1", "t1ce", "t2"):
            img = nib.load(str(src / f"{src.name}_{m}.nii.gz"))
            nib.save(nib.Nifti1Image(np.asarray(img.dataobj)[:, 2:, :].copy(), TEST_AFFINES[0]), str(case / f"BraTS2021_09999_{m}.nii.gz"))
        shutil.copy(src / f"{src.name}_seg.nii.gz", dest / "not_an_image.txt")  # other files are skipped
        return [(case / "BraTS2021_09999_flair.nii.gz", Path("BraTS2021_09999_seg.nii.gz"))]
    import itk

    src = sorted(Path(data).glob("PENGWIN_CT_train_images*/*.mha"))[0]
    img = itk.imread(str(src))
    arr = itk.array_from_image(img)[:, 3:, :].copy()
    new = itk.image_from_array(arr)
    new.SetSpacing([0.8, 1.2, 1.5])
    new.SetOrigin([5.0, -3.0, 2.0])
    itk.imwrite(new, str(dest / "new_001.mha"))
    return [(dest / "new_001.mha", Path("new_001_seg.mha"))]


def _grid(path: Path) -> tuple[tuple[int, ...], np.ndarray]:
    """Shape and affine (NIfTI) or shape, spacing, origin and direction (MHA) of an image file."""
    if path.suffix == ".mha":
        import itk

        img = itk.imread(str(path))
        geo = np.concatenate([np.asarray(img.GetSpacing()), np.asarray(img.GetOrigin()), np.asarray(img.GetDirection()).ravel()])
        return tuple(itk.array_from_image(img).shape), geo
    img = nib.load(str(path))
    return img.shape[:3], img.affine


@pytest.mark.parametrize("name", ["amos", "brats", "pengwin"])
def test_bundle_end_to_end(name, trained, tiny_datasets, tmp_path, monkeypatch, capfd):
    data = tiny_datasets[name]
    run_dir = trained(name)
    # the run folder: the saved config (every override applied) beside the checkpoints
    saved = json.loads((run_dir / RUN_CONFIG).read_text())
    assert saved["network_def"]["features"] == TINY["features"] and saved["epochs"] == 1 and saved["dataset_dir"] == data
    assert saved["output_dir"] == str(run_dir) and saved["ckpt_dir"] == "$@output_dir + '/models'"
    for rel in ("configs/inference.json", "configs/metadata.json", "configs/logging.conf", "docs/README.md", "LICENSE"):
        assert (run_dir / rel).is_file(), rel
    models = run_dir / "models"
    for f in ("model.pt", "model_last.pt", "model_final.pt"):
        assert (models / f).is_file(), f
    last = torch.load(models / "model_last.pt", weights_only=True)
    assert {"model", "optimizer", "lr_scheduler", "trainer", "checkpointer", "curves"} <= set(last)
    assert last["trainer"]["iteration"] >= 1 and last["checkpointer"]["best_metric_epoch"] == 1
    history = json.loads((run_dir / "metrics.json").read_text())
    assert [r["epoch"] for r in history] == [1] and "val_mean_dice" in history[0]
    assert (run_dir / "training_curves.png").stat().st_size > 1000
    training_metrics = (run_dir / "metrics.csv").read_bytes()

    # inference from the run folder alone, on images it never saw; each prediction on its input's grid
    monkeypatch.chdir(REPO)
    cases = _new_images(name, data, tmp_path / "new")
    images = {} if name == "amos" else {"images": str(tmp_path / "new")}
    capfd.readouterr()
    run(config_file=f"bundles/{name}/inference.json", run_dir=str(run_dir), num_workers=0, **images)
    logged = [line for line in capfd.readouterr().out.splitlines() if " - monai_cwcd.bundle - INFO - case " in line]
    preds = run_dir / "predictions"
    assert sorted(p.name for p in preds.iterdir()) == sorted(str(p) for _, p in cases)
    for src, pred in cases:
        (shape_in, geo_in), (shape_out, geo_out) = _grid(src), _grid(preds / pred)
        assert shape_out == shape_in and np.allclose(geo_out, geo_in, atol=1e-4), (pred, geo_in, geo_out)
    assert len(logged) == len(cases) and all(str(preds / p) in line for (_, p), line in zip(cases, logged)), logged

    # evaluate the best checkpoint on the test split: its own folder, the training metrics untouched
    run(config_file=[f"bundles/{name}/train.json", f"bundles/{name}/evaluate.json"], run_dir=str(run_dir), num_workers=0)
    raw = (run_dir / "evaluation" / "val_class_dice_raw.csv").read_text().splitlines()
    assert len(raw) == 1 + len(getattr(monai_cwcd.data, f"{name}_datalist")(data, "test")), raw  # header + one row per test case
    names = json.loads((run_dir / "configs" / "train.json").read_text())["class_names"]
    assert all(n in raw[0] for n in names), raw[0]  # columns named by structure, not class0..
    assert "val_mean_dice" in (run_dir / "evaluation" / "metrics.csv").read_text()
    assert (run_dir / "metrics.csv").read_bytes() == training_metrics

    # export the run folder to the model-zoo layout (checkpoint verified), MONAI's checks from inside it
    cli_main(["export-bundle", str(run_dir)])
    out = run_dir / "export"
    for rel in ("configs/train.json", "configs/inference.json", "configs/metadata.json", "models/model.pt",
                "docs/README.md", "LICENSE"):
        assert (out / rel).is_file(), rel
    exported = json.loads((out / "configs" / "train.json").read_text())
    assert exported["bundle_root"] == "." and exported["network_def"]["features"] == TINY["features"]
    assert json.loads((out / "configs" / "inference.json").read_text())["run_dir"] == "$@bundle_root"
    monkeypatch.chdir(out)
    verify_metadata(meta_file="configs/metadata.json", filepath=SCHEMA)
    verify_net_in_out(net_id="network_def", meta_file="configs/metadata.json", config_file="configs/inference.json", n=1, any=1)
    ckpt_export(net_id="network_def", filepath="models/model.ts", ckpt_file="models/model.pt",
                meta_file="configs/metadata.json", config_file="configs/inference.json", key_in_ckpt="model")
    y = torch.jit.load("models/model.ts")(torch.randn(1, IN_CHANNELS[name], 32, 32, 32))
    assert y.shape == (1, OUT_CHANNELS[name], 32, 32, 32)

    # ckpt_export straight from the run folder (repository root, the bundle's inference.json + --run_dir)
    monkeypatch.chdir(REPO)
    ckpt_export(net_id="network_def", filepath=str(run_dir / "export" / "run.ts"), ckpt_file=RunConfig(run_dir).checkpoint(),
                meta_file=f"bundles/{name}/metadata.json", config_file=f"bundles/{name}/inference.json", key_in_ckpt="model",
                run_dir=str(run_dir))
    assert torch.jit.load(str(run_dir / "export" / "run.ts"))(torch.randn(1, IN_CHANNELS[name], 32, 32, 32)).shape == y.shape


def _mismatched_copy(run_dir: Path, dest: Path) -> Path:
    """A copy of a run folder whose saved config names wider features than its checkpoints have."""
    shutil.copytree(run_dir, dest, ignore=shutil.ignore_patterns("predictions", "evaluation", "export"))
    cfg = json.loads((dest / RUN_CONFIG).read_text())
    cfg["network_def"]["features"] = [8, 16, 32, 64]
    (dest / RUN_CONFIG).write_text(json.dumps(cfg))
    return dest


MISMATCH = (
    r"checkpoint '{ckpt}' does not fit the network of config '{cfg}': tensor '[\w.]+' has shape \(4, 1, 3, 3, 3\) "
    r"in the checkpoint and \(8, 1, 3, 3, 3\) in the network \(\d+ of the network.s \d+ tensors missing or of another shape, \d+ checkpoint tensors unused\)\."
)


def test_checkpoint_that_does_not_fit_fails_with_one_line(trained, tmp_path, monkeypatch):
    bad = _mismatched_copy(trained("amos"), tmp_path / "bad_run")
    ckpt, cfg = bad / "models" / "model.pt", bad / RUN_CONFIG
    pattern = MISMATCH.format(ckpt=ckpt, cfg=cfg)
    # inference and evaluate (subprocess: what a user sees)
    proc = bundle_cmd("run", "--config_file", "bundles/amos/inference.json", "--run_dir", str(bad), "--num_workers", "0")
    assert proc.returncode != 0
    err = proc.stdout + proc.stderr
    assert any(re.fullmatch(r"ValueError: " + pattern, line) for line in err.splitlines()), err[-3000:]
    assert "size mismatch" not in err and not (bad / "predictions").exists()
    monkeypatch.chdir(REPO)
    with pytest.raises(Exception) as info:
        run(config_file=["bundles/amos/train.json", "bundles/amos/evaluate.json"], run_dir=str(bad), num_workers=0)
    chain = [info.value]
    while chain[-1].__cause__ is not None:
        chain.append(chain[-1].__cause__)
    assert any(isinstance(e, ValueError) and re.fullmatch(pattern, str(e)) for e in chain), chain
    # export-bundle verifies before writing anything
    with pytest.raises(ValueError, match=pattern):
        export_bundle(bad, tmp_path / "zoo")
    assert not (tmp_path / "zoo").exists()
    with pytest.raises(ValueError, match=r"does not fit the network of config '.*bundles/amos/train.json': tensor"):
        export_bundle("amos", tmp_path / "zoo", checkpoint=trained("amos") / "models" / "model.pt")  # default sizes
    assert not (tmp_path / "zoo").exists()


def test_run_dir_errors(tmp_path, monkeypatch):
    monkeypatch.chdir(REPO)
    with pytest.raises(FileNotFoundError, match=f"run_dir '{tmp_path}' holds no configs/train.json"):
        RunConfig(tmp_path)
    with pytest.raises(Exception) as info:
        run(config_file="bundles/amos/inference.json", run_dir=str(tmp_path))
    assert "holds no configs/train.json" in repr(info.value) + repr(info.value.__cause__)
    with pytest.raises(RuntimeError, match="save_run_config must be called from a config expression"):
        save_run_config(tmp_path / "run")
    assert not (tmp_path / "run").exists()


def test_missing_dataset_fails_at_once(tmp_path):
    proc = bundle_cmd("run", "--config_file", "bundles/amos/train.json", "--dataset_dir", str(tmp_path / "nope"),
                      "--output_dir", str(tmp_path / "run"))
    assert proc.returncode != 0
    err = proc.stderr + proc.stdout
    assert "--dataset_dir" in err and "bundles/amos/demo.json" in err and str(tmp_path / "nope") in err
    assert "Loading dataset" not in err  # nothing was built
    assert not (tmp_path / "run").exists()  # nor the run folder


def test_swap_network_and_loss_with_mlflow(tiny_datasets, tmp_path, monkeypatch):
    """Any MONAI network and loss by overriding one key each; MONAI's ``--tracking mlflow`` logs the run;
    inference from the run folder rebuilds the swapped network."""
    override = tmp_path / "swap.json"
    override.write_text(json.dumps({
        "network_def": {"_target_": "monai.networks.nets.UNet", "spatial_dims": 3, "in_channels": 1,
                        "out_channels": "@num_classes", "channels": [4, 8, 16], "strides": [2, 2]},
        "loss": {"_target_": "DiceCELoss", "to_onehot_y": True, "softmax": True},
    }))
    tracking_uri = f"sqlite:///{tmp_path / 'mlruns.db'}"
    run_dir = tmp_path / "run"
    check(bundle_cmd(
        "run", "--config_file", f"['bundles/amos/train.json','{override}']",
        *tiny_overrides(run_dir, tiny_datasets["amos"], features=False),
        "--tracking", "mlflow", "--tracking_uri", tracking_uri, "--experiment_name", "cwcd_test",
    ))
    state = torch.load(run_dir / "models" / "model.pt", weights_only=True)["model"]
    assert any(k.startswith("model.") for k in state)  # MONAI UNet's parameter names, not PDANet's
    import mlflow

    client = mlflow.tracking.MlflowClient(tracking_uri=tracking_uri)
    exp = client.get_experiment_by_name("cwcd_test")
    runs = client.search_runs([exp.experiment_id])
    metrics = {k for r in runs for k in r.data.metrics}
    assert "train_loss" in metrics and "val_mean_dice" in metrics and "val_dice_spleen" in metrics

    monkeypatch.chdir(REPO)
    run(config_file="bundles/amos/inference.json", run_dir=str(run_dir), num_workers=0)
    assert len(list((run_dir / "predictions").glob("*_seg.nii.gz"))) == NUM_TEST
    assert type(RunConfig(run_dir)["network_def"]).__name__ == "UNet"


def test_run_folder_holds_one_run(trained, tiny_datasets, tmp_path):
    """Training another network into a folder that holds a run stops before writing anything, with one
    line naming the folder and the differing key; the saved run is untouched."""
    run_dir = tmp_path / "run"
    shutil.copytree(trained("amos"), run_dir)
    saved = (run_dir / RUN_CONFIG).read_bytes()
    unet = json.dumps({"_target_": "monai.networks.nets.UNet", "spatial_dims": 3, "in_channels": 1, "out_channels": 16,
                       "channels": [4, 8, 16], "strides": [2, 2]})
    proc = bundle_cmd("run", "--config_file", "bundles/amos/train.json",
                      *tiny_overrides(run_dir, tiny_datasets["amos"], features=False), "--network_def", unet)
    assert proc.returncode == 1, proc.stderr[-3000:]
    last = proc.stderr.rstrip("\n").splitlines()[-1]
    assert re.match(rf"ValueError: run folder '{re.escape(str(run_dir))}' already holds another run: its network_def", last), last
    assert (run_dir / RUN_CONFIG).read_bytes() == saved


def test_export_refuses_a_used_folder_and_overwrite_replaces_it(trained, tmp_path):
    """A second export into the same folder would leave files of the first (e.g. a TorchScript of
    another model) beside the new bundle: it is refused; --overwrite replaces the folder as a whole."""
    run_dir = trained("amos")
    dest = tmp_path / "zoo"
    cli_main(["export-bundle", str(run_dir), str(dest)])
    (dest / "models" / "model.ts").write_bytes(b"stale")
    with pytest.raises(SystemExit):
        cli_main(["export-bundle", str(run_dir), str(dest)])
    assert (dest / "models" / "model.ts").is_file()
    cli_main(["export-bundle", str(run_dir), str(dest), "--overwrite"])
    assert not (dest / "models" / "model.ts").exists() and (dest / "models" / "model.pt").is_file()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["zoo"]  # no temporary folder left behind


def test_export_of_a_folder_that_is_neither_run_nor_bundle_names_both(tmp_path):
    """``export-bundle`` takes a run folder or a bundle: a path that is neither names what each would hold."""
    missing = tmp_path / "no_such_run"
    with pytest.raises(FileNotFoundError, match=re.escape(f"'{missing}' is neither a run folder (no {missing / RUN_CONFIG}) "
                                                           f"nor a bundle folder (no {missing / 'train.json'})")):
        export_bundle(missing, tmp_path / "zoo")
    assert not (tmp_path / "zoo").exists()


def test_failed_run_removes_only_what_an_unstarted_run_wrote(tmp_path):
    """The clean-up after a failed run (``save_run_config`` registers it): a run that wrote only its
    config, event files and empty folders is removed (with the folder it created); a run with a
    checkpoint keeps everything; entries that were there before the run are never touched."""
    from monai_cwcd.bundle import _remove_unstarted_run

    def started(run, extra=()):
        for d in ("configs", "docs", "models"):
            (run / d).mkdir(parents=True, exist_ok=True)
        (run / "configs" / "train.json").write_text("{}")
        (run / "docs" / "README.md").write_text("x")
        (run / "LICENSE").write_text("x")
        (run / "events.out.tfevents.1").write_bytes(b"")
        for name in extra:
            (run / name).write_bytes(b"x")

    fresh = tmp_path / "fresh"
    started(fresh)
    _remove_unstarted_run(fresh, None)
    assert not fresh.exists()
    progressed = tmp_path / "progressed"
    started(progressed, ["models/model_last.pt"])
    _remove_unstarted_run(progressed, None)
    assert (progressed / "models" / "model_last.pt").is_file() and (progressed / "configs" / "train.json").is_file()
    reused = tmp_path / "reused"
    reused.mkdir()
    (reused / "notes.txt").write_text("mine")
    started(reused)
    _remove_unstarted_run(reused, {"notes.txt"})
    assert sorted(p.name for p in reused.iterdir()) == ["notes.txt"]


def test_training_again_into_a_trained_run_folder_warns(tmp_path, caplog):
    """``monai.bundle run`` retrains from scratch into a folder that holds this run's checkpoints (as
    MONAI does); save_run_config says so in one warning naming the outputs of the previous model that
    stay behind, and says nothing for a new folder or with ``--resume true``."""
    from monai.bundle import ConfigParser

    import monai_cwcd.bundle  # noqa: F401  (the config expression's module)

    def start(run, **over):
        cfg = {"output_dir": str(run), "ckpt_dir": "@output_dir", "resume": False, "network_def": {"a": 1},
               "go": "$monai_cwcd.bundle.save_run_config(@output_dir, @ckpt_dir)", **over}
        ConfigParser(cfg, globals={"monai_cwcd": "monai_cwcd"}).get_parsed_content("go")

    run = tmp_path / "run"
    run.mkdir()
    with caplog.at_level(logging.WARNING, logger="monai_cwcd.bundle"):
        start(run)
        assert not caplog.records  # nothing trained there yet
        (run / "model_last.pt").write_bytes(b"x")
        (run / "predictions").mkdir()
        start(run, resume=True)
        assert not caplog.records
        start(run)
    assert len(caplog.records) == 1
    msg = caplog.records[0].getMessage()
    assert f"run folder '{run}' already holds a trained run (model_last.pt)" in msg
    assert "predictions stay behind, made with the previous model" in msg and "--resume true continues it" in msg
