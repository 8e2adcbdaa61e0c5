"""Resume after SIGKILL: a real AMOS bundle run killed mid-epoch continues exactly where it stopped;
saves are atomic; the resume state round-trips."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch
from _bundle_run import REPO, bundle_args, bundle_env, run_bundle
from monai.data import CacheDataset, DataLoader
from monai.transforms import Compose, RandFlipd, RandRotated

from monai_cwcd.handlers import ResumeCheckpointLoader, ResumeState, load_checkpoint

EPOCHS = 3
ITERS = 4  # 4 training cases, batch_size 1
SLOW = {"batch_size": 1, "patch_size": [48, 48, 64]}


def _load(path):
    return torch.load(path, map_location="cpu", weights_only=True)


def _kill_mid_epoch(args, out_dir, epoch=2, iteration=1):
    """Start the bundle, SIGKILL it right after iteration ``iteration`` of ``epoch`` is logged."""
    proc = subprocess.Popen([sys.executable, "-m", "monai.bundle", *args], cwd=REPO, env=bundle_env(),
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    marker, log = f"Epoch: {epoch}/{EPOCHS}, Iter: {iteration}/{ITERS} --", []
    try:
        for line in proc.stdout:
            log.append(line)
            if marker in line:
                proc.send_signal(signal.SIGKILL)
                break
    finally:
        proc.kill()
        proc.wait(60)
    assert proc.returncode == -signal.SIGKILL, "".join(log)[-3000:]
    return "".join(log)


def test_sigkill_mid_epoch_then_resume_matches_uninterrupted_run(tmp_path, amos_tiny):
    ref, run = tmp_path / "ref", tmp_path / "run"
    run_bundle(bundle_args(tmp_path, amos_tiny, ref, EPOCHS, SLOW))

    args = bundle_args(tmp_path, amos_tiny, run, EPOCHS, SLOW)
    _kill_mid_epoch(args, run)
    last = _load(run / "model_last.pt")
    assert last["trainer"]["iteration"] == ITERS, "the kill did not land in epoch 2 (before its save)"
    assert not (run / "model_final.pt").exists()
    assert [r["epoch"] for r in json.loads((run / "metrics.json").read_text())] == [1]

    # same command plus the documented switch
    proc = run_bundle(args + ["--resume", "true"])
    log = proc.stdout + proc.stderr
    assert f"resumed from {run / 'model_last.pt'}: epoch 1, iteration {ITERS}; 2 epoch(s) left." in log

    final, final_ref = _load(run / "model_final.pt"), _load(ref / "model_final.pt")
    # counters: total epochs trained equals the schedule
    assert final["trainer"]["iteration"] == EPOCHS * ITERS and final["trainer"]["max_epochs"] == EPOCHS
    # optimizer (Adam's per-parameter step count) and LR scheduler continued, not restarted
    steps = {float(s["step"]) for s in final["optimizer"]["state"].values()}
    assert steps == {float(EPOCHS * ITERS)}
    assert final["lr_scheduler"]["last_epoch"] == EPOCHS
    # RNG (data order, augmentation), optimizer and weights restored: identical to the uninterrupted run
    hist, hist_ref = (json.loads((d / "metrics.json").read_text()) for d in (run, ref))
    assert [r["epoch"] for r in hist] == [1, 2, 3]
    np.testing.assert_allclose([r["loss"] for r in hist], [r["loss"] for r in hist_ref], rtol=1e-6)
    np.testing.assert_allclose([r["val_mean_dice"] for r in hist], [r["val_mean_dice"] for r in hist_ref], rtol=1e-6)
    for k, v in final_ref["model"].items():
        torch.testing.assert_close(final["model"][k], v, rtol=1e-6, atol=1e-7)
    # best-metric bookkeeping survives: model.pt holds the best epoch of the whole run
    best = _load(run / "model.pt")["checkpointer"]
    dice = [r["val_mean_dice"] for r in hist]
    assert best["best_metric_epoch"] == 1 + int(np.argmax(dice))
    assert best == _load(ref / "model.pt")["checkpointer"]


def test_resume_without_checkpoint_is_an_error(tmp_path):
    net = torch.nn.Linear(2, 2)
    loader = ResumeCheckpointLoader(tmp_path / "model_last.pt", {"model": net})
    from ignite.engine import Engine

    engine = Engine(lambda e, b: None)
    loader.attach(engine)
    with pytest.raises(FileNotFoundError, match=r"resume requested but the checkpoint .*model_last\.pt does not exist"):
        engine.run([0], max_epochs=1)


_WRITER = textwrap.dedent(
    """
    import sys, time
    from monai_cwcd.handlers import atomic_write

    def write(f):
        f.write(b"x" * 4096)
        f.flush()
        print("half", flush=True)
        time.sleep(60)
        f.write(b"y" * 4096)

    atomic_write(sys.argv[1], write)
    """
)


def test_kill_during_save_leaves_the_previous_checkpoint(tmp_path):
    """SIGKILL while a checkpoint is half written: the file a resume loads is the previous, complete one."""
    path = tmp_path / "model_last.pt"
    torch.save({"model": {"w": torch.arange(5.0)}}, path)
    proc = subprocess.Popen([sys.executable, "-c", _WRITER, str(path)], cwd=REPO, env=bundle_env(),
                            stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "half"
    proc.send_signal(signal.SIGKILL)
    proc.wait(30)
    torch.testing.assert_close(_load(path)["model"]["w"], torch.arange(5.0))
    leftovers = [p.name for p in tmp_path.iterdir() if p.name != "model_last.pt"]
    assert leftovers and all(n.startswith(".model_last.tmp-") and n.endswith(".pt") for n in leftovers)
    # a truncated file (e.g. copied by hand) is refused with a clear error, never half-loaded
    path.write_bytes(path.read_bytes()[:100])
    loader = ResumeCheckpointLoader(path, {"model": torch.nn.Linear(1, 1)})
    with pytest.raises(ValueError, match=r"^checkpoint .*model_last\.pt is truncated or corrupt \(100 bytes"):
        loader._load_file("cpu")


def _resume(path, net):
    """Run a real ignite trainer whose ResumeCheckpointLoader loads ``path`` at STARTED."""
    from ignite.engine import Engine

    trainer = Engine(lambda e, b: None)
    ResumeCheckpointLoader(path, {"model": net}, engine_key="trainer").attach(trainer)
    trainer.run([0], max_epochs=1)
    return trainer


def _write_bad_checkpoints(tmp_path, net):
    """Real files: {name: (path, expected start of the one-line error)}."""
    good = {"model": net.state_dict(), "trainer": {"iteration": 1, "max_epochs": 1, "epoch_length": 1}}
    files, d = {}, re.escape(str(tmp_path))
    torch.save(good, tmp_path / "valid.pt")
    data = (tmp_path / "valid.pt").read_bytes()
    (tmp_path / "truncated.pt").write_bytes(data[: len(data) // 2])
    files["truncated"] = (tmp_path / "truncated.pt", rf"checkpoint {d}/truncated\.pt is truncated or corrupt "
                          rf"\({len(data) // 2} bytes; its zip archive cannot be read")
    (tmp_path / "empty.pt").write_bytes(b"")
    files["empty"] = (tmp_path / "empty.pt", rf"checkpoint {d}/empty\.pt is empty \(0 bytes\)")
    (tmp_path / "notes.pt").write_text("epoch 3, dice 0.8\n")
    files["text"] = (tmp_path / "notes.pt", rf"{d}/notes\.pt is not a PyTorch checkpoint \(it starts with b'epoch 3")
    torch.save({**good, "checkpointer": {"best_metric": np.float32(0.8), "best_metric_epoch": 3}},
               tmp_path / "numpy_scalar.pt")
    files["numpy scalar"] = (tmp_path / "numpy_scalar.pt",
                             rf"checkpoint {d}/numpy_scalar\.pt holds a numpy scalar at checkpointer\.best_metric, "
                             r"which weights_only loading refuses; re-save it with tensors / plain Python numbers")
    torch.save({**good, "curves": {"loss": np.zeros(3)}}, tmp_path / "numpy_array.pt")
    files["numpy array"] = (tmp_path / "numpy_array.pt",
                            rf"checkpoint {d}/numpy_array\.pt holds numpy arrays, which weights_only loading refuses")
    return good, files


@pytest.mark.parametrize("case", ["truncated", "empty", "text", "numpy scalar", "numpy array"])
def test_checkpoint_errors_name_the_file_and_the_real_cause_first(tmp_path, case):
    net = torch.nn.Linear(2, 1)
    _, files = _write_bad_checkpoints(tmp_path, net)
    path, expected = files[case]
    with pytest.raises(ValueError) as err:
        _resume(path, torch.nn.Linear(2, 1))
    message = str(err.value)
    assert "\n" not in message and "\x1b" not in message, message  # one line, no terminal escapes
    assert re.match(expected, message), message
    # the same message from the bundle export, which writes nothing when the checkpoint is bad
    from monai_cwcd.bundle import export_bundle

    with pytest.raises(ValueError, match=re.escape(message[:60])):
        export_bundle("amos", tmp_path / "zoo", checkpoint=path)
    assert not (tmp_path / "zoo").exists()


class UserConfig:
    """A user's class, pickled into a checkpoint."""


def test_other_causes_are_not_called_corruption(tmp_path):
    torch.save({"model": {}, "config": UserConfig()}, tmp_path / "object.pt")
    with pytest.raises(ValueError, match=r"^checkpoint \S+object\.pt holds objects of \['\S*UserConfig'\], which "
                                         r"weights_only loading refuses"):
        load_checkpoint(tmp_path / "object.pt")
    if not torch.cuda.is_available():  # a readable checkpoint mapped to a missing device: torch's own message
        torch.save({"model": {"w": torch.ones(1)}}, tmp_path / "valid.pt")
        with pytest.raises(ValueError, match=r"^checkpoint \S+valid\.pt cannot be loaded: RuntimeError: Attempting "
                                             r"to deserialize object on a CUDA device"):
            load_checkpoint(tmp_path / "valid.pt", map_location="cuda:0")


def test_valid_checkpoint_loads(tmp_path):
    net = torch.nn.Linear(2, 1)
    good, _ = _write_bad_checkpoints(tmp_path, net)
    fresh = torch.nn.Linear(2, 1)
    trainer = _resume(tmp_path / "valid.pt", fresh)
    torch.testing.assert_close(fresh.state_dict(), good["model"])
    assert trainer.state.epoch == 1
    assert load_checkpoint(tmp_path / "valid.pt", map_location="cpu")["trainer"]["iteration"] == 1


def _pipeline_loader():
    data = [{"image": torch.arange(64.0).reshape(1, 4, 4, 4), "case_id": str(i)} for i in range(4)]
    t = Compose([RandFlipd("image", prob=0.5, spatial_axis=0), RandRotated("image", range_x=0.5, prob=0.5)])
    return DataLoader(CacheDataset(data, t, cache_rate=0.0), batch_size=2, shuffle=True)


def _draw(loader):
    return torch.cat([b["image"] for b in loader]), np.random.rand(), torch.rand(1)


def test_resume_state_restores_generators_transforms_and_scaler():
    from monai.utils import set_determinism

    set_determinism(0)
    loader = _pipeline_loader()
    state = ResumeState(loader)
    _draw(loader)
    saved = state.state_dict()
    expected = _draw(loader)
    # a fresh process would rebuild the pipeline with the same seed: restoring gives the same stream
    set_determinism(0)
    loader2 = _pipeline_loader()
    state2 = ResumeState(loader2)
    state2.load_state_dict(saved)
    got = _draw(loader2)
    assert torch.equal(got[0], expected[0]) and got[1] == expected[1] and torch.equal(got[2], expected[2])
    # without the transforms' states the augmentations differ (what MONAI's checkpoints alone give)
    set_determinism(0)
    loader3 = _pipeline_loader()
    torch.set_rng_state(saved["torch"])
    assert not torch.equal(_draw(loader3)[0], expected[0])

    class _Trainer:
        scaler = torch.amp.GradScaler("cpu", init_scale=8.0, growth_interval=7)

    st = ResumeState()
    st.attach(_Trainer())
    sd = st.state_dict()
    assert sd["scaler"]["scale"] == 8.0 and sd["scaler"]["growth_interval"] == 7
    fresh = _Trainer()
    fresh.scaler = torch.amp.GradScaler("cpu")
    st2 = ResumeState()
    st2.attach(fresh)
    st2.load_state_dict(torch.load(_roundtrip(sd), weights_only=True))
    assert fresh.scaler.get_scale() == 8.0 and fresh.scaler.get_growth_interval() == 7


def _roundtrip(obj):
    import io

    buf = io.BytesIO()
    torch.save(obj, buf)
    buf.seek(0)
    return buf
