"""Multi-process training and validation through the bundles' multi-GPU config: torchrun, gloo, CPU
processes. Validation shards the cases with ``DistributedEvalSampler`` (every case once, like MONAI's
``even_divisible=False``, for any case count; a rank without a case evaluates a padding case that
``PaddedCaseMask`` leaves out of the metrics), so the all-gathered Dice equals the single-process Dice
for 1 and 3 validation cases on 2 ranks and for 1 and 2 cases on 3 ranks."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torch.distributed as dist
from _bundle_run import FAST_NET, REPO, bundle_env
from monai.bundle import ConfigParser
from monai.data import DistributedSampler
from torch.nn.parallel import DistributedDataParallel

from monai_cwcd.data import DistributedEvalSampler, write_synthetic_dataset


def _split(val_cases: int, train_cases: int = 2, batch_size: int = 1) -> dict:
    """``train_cases`` training and ``val_cases`` validation cases of the 6-case tiny set."""
    counts = [train_cases, val_cases, 6 - train_cases - val_cases]
    return {
        "train#dataset#data": f"$monai_cwcd.data.amos_datalist(@dataset_dir, 'train', split_counts={counts})",
        "validate#dataset#data": f"$monai_cwcd.data.amos_datalist(@dataset_dir, 'val', split_counts={counts})",
        "batch_size": batch_size,
    }


def _configs(tmp_path, split, multi_gpu=True, extra=None):
    overlay = tmp_path / ("overlay_ddp.json" if multi_gpu else "overlay.json")
    overlay.write_text(json.dumps({**FAST_NET, **split, **(extra or {})}))
    files = ["bundles/amos/train.json"] + (["bundles/amos/multi_gpu_train.json"] if multi_gpu else [])
    return [str(REPO / f) for f in files + ["bundles/amos/demo.json"]] + [str(overlay)]


def _torchrun(tmp_path, dataset_dir, val_cases, epochs, train_cases=2, batch_size=1):
    """Run the AMOS bundle (multi-GPU config, gloo) on 2 CPU processes; every rank also saves its
    evaluator's last ``metric_details`` and metrics. Returns (output dir, {rank: log}, {rank: details})."""
    out, logs, details = tmp_path / "out", tmp_path / "logs", tmp_path / "details"
    details.mkdir()
    dump = (f"$torch.save({{'details': @validate#evaluator.state.metric_details, 'metrics': "
            f"@validate#evaluator.state.metrics, 'masked': @validate#padding_mask.masked}}, "
            f"'{details}/rank' + str(torch.distributed.get_rank()) + '.pt')")
    configs = _configs(tmp_path, _split(val_cases, train_cases, batch_size),
                       extra={"run": ["$@train#trainer.run()", dump]})
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2", "--log-dir", str(logs), "--redirects", "3",
           "-m", "monai.bundle", "run", "--config_file", json.dumps(configs),
           "--dataset_dir", dataset_dir, "--output_dir", str(out), "--epochs", str(epochs)]
    proc = subprocess.run(cmd, cwd=REPO, env=bundle_env(), capture_output=True, text=True, timeout=600)
    rank_logs = {int(p.parent.name): p.read_text() for p in logs.rglob("stdout.log")}
    assert proc.returncode == 0, f"{proc.stderr[-3000:]}\n{rank_logs}"
    assert sorted(rank_logs) == [0, 1]
    for text in rank_logs.values():  # both ranks finished the whole schedule
        assert "SupervisedTrainer - INFO - Engine run finished" in text
    ranks = {r: torch.load(details / f"rank{r}.pt", weights_only=False) for r in (0, 1)}
    return out, rank_logs, ranks


def _single_process(tmp_path, dataset_dir, val_cases, model_state, train_cases=2):
    """The bundle's evaluator in this process (no DDP, plain loader) over the same validation cases."""
    parser = ConfigParser()
    parser.read_config(_configs(tmp_path, _split(val_cases, train_cases), multi_gpu=False))
    parser.update({"dataset_dir": dataset_dir, "output_dir": str(tmp_path / "single")})
    parser.get_parsed_content("network_def").load_state_dict(model_state)
    evaluator = parser.get_parsed_content("validate#evaluator")
    evaluator.run()
    assert len(evaluator.data_loader.dataset) == val_cases
    return evaluator.state


def _check_each_case_once(ranks, single, rank_cases):
    """Both ranks hold the same gathered per-case Dice: rank 0's cases, then rank 1's (an all-NaN row for
    a rank's padding case), each real case once and equal to the single-process one; the reduced
    metrics equal the single process's."""
    layout = [case for cases in rank_cases for case in (cases or [None])]
    real = torch.tensor([c is not None for c in layout])
    for name in ("val_mean_dice", "val_class_dice"):
        ref = single.metric_details[name]
        assert not torch.isnan(ref).all(dim=1).any()  # every real case scores at least one class
        gathered = ranks[0]["details"][name]
        torch.testing.assert_close(ranks[1]["details"][name], gathered, equal_nan=True)
        assert len(gathered) == len(layout) and torch.isnan(gathered[~real]).all()
        torch.testing.assert_close(gathered[real], ref[[c for c in layout if c is not None]], equal_nan=True)
    for r in (0, 1):
        for k, v in single.metrics.items():
            assert ranks[r]["metrics"][k] == pytest.approx(v, rel=1e-6, nan_ok=True), k


def test_torchrun_two_cpu_processes(tmp_path, amos_tiny):
    """3 validation cases on 2 ranks (2 + 1, nothing repeated), 2 epochs: outputs, all-gathered Dice."""
    out, rank_logs, ranks = _torchrun(tmp_path, amos_tiny, val_cases=3, epochs=2)
    # every rank saw the same (all-gathered) validation Dice
    best = {r: re.findall(r"Got new best metric of val_mean_dice: ([0-9.e-]+)", t) for r, t in rank_logs.items()}
    assert best[0] and best[0] == best[1]
    # one set of outputs, all written by rank 0
    names = sorted(p.name for p in out.iterdir())
    assert [n for n in names if not n.startswith("events")] == [
        "LICENSE", "configs", "docs", "metrics.csv", "metrics.json", "model.pt", "model_final.pt", "model_last.pt",
        "training_curves.png"]
    assert json.loads((out / "configs" / "train.json").read_text())["epochs"] == 2  # the run's config, saved once
    pids = {n.split(".")[-2] for n in names if n.startswith("events")}
    assert len(pids) == 1 and len([n for n in names if n.startswith("events")]) == 2
    hist = json.loads((out / "metrics.json").read_text())
    assert [r["epoch"] for r in hist] == [1, 2]
    final = torch.load(out / "model_final.pt", map_location="cpu", weights_only=True)
    assert final["trainer"]["iteration"] == 2 * 1  # 2 train cases on 2 ranks: 1 iteration per epoch
    assert ranks[0]["masked"] == ranks[1]["masked"] == 0  # 3 cases >= 2 ranks: no padding

    # the distributed validation Dice equals the Dice of one process over the same cases
    single = _single_process(tmp_path, amos_tiny, 3, final["model"])
    _check_each_case_once(ranks, single, rank_cases=[[0, 2], [1]])
    assert hist[-1]["val_mean_dice"] == pytest.approx(single.metrics["val_mean_dice"], rel=1e-5)


def test_torchrun_one_validation_case(tmp_path, amos_tiny):
    """The demo's situation: 1 validation case on 2 ranks, an odd number of training cases per rank.
    Rank 1 evaluates a padding case whose ground truth is emptied, so it takes part in the all-gather
    and contributes only NaN rows."""
    out, _, ranks = _torchrun(tmp_path, amos_tiny, val_cases=1, epochs=1, train_cases=5, batch_size=2)
    final = torch.load(out / "model_final.pt", map_location="cpu", weights_only=True)
    # 5 training cases: 3 per rank, batches of 2: the batch of one is dropped (BatchNorm at 1^3 voxels)
    assert final["trainer"]["iteration"] == 1
    single = _single_process(tmp_path, amos_tiny, 1, final["model"], train_cases=5)
    _check_each_case_once(ranks, single, rank_cases=[[0], []])
    assert (ranks[0]["masked"], ranks[1]["masked"]) == (0, 1)
    assert len(ranks[0]["details"]["val_mean_dice"]) == 2  # the case and rank 1's all-NaN padding row
    # the saver on rank 0 recorded the same (reduced) best metric
    hist = json.loads((out / "metrics.json").read_text())
    best = torch.load(out / "model.pt", map_location="cpu", weights_only=True)
    assert hist[0]["val_mean_dice"] == pytest.approx(single.metrics["val_mean_dice"], rel=1e-5)
    assert best["checkpointer"]["best_metric"] == pytest.approx(hist[0]["val_mean_dice"], rel=1e-6)


@pytest.mark.parametrize("num_ranks, num_cases", [(3, 2), pytest.param(3, 1, marks=pytest.mark.slow)])
def test_evaluation_with_fewer_cases_than_ranks(tmp_path, num_ranks, num_cases):
    """Real MONAI evaluator, metrics and checkpoint saver on 3 gloo ranks with 2 or 1 cases: the
    padding rank takes part in the all-gather (no deadlock) and adds nothing, so every rank reports the
    single-process Dice; counting the padding case (a repeat of case 0, Dice 1.0) would raise it."""
    sys.path.insert(0, str(Path(__file__).parent))
    import _ddp_eval

    cmd = [sys.executable, "-m", "torch.distributed.run", f"--nproc_per_node={num_ranks}",
           str(Path(__file__).with_name("_ddp_eval.py")), str(tmp_path), str(num_cases), "mask"]
    proc = subprocess.run(cmd, cwd=REPO, env=bundle_env(), capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-4000:]
    ranks = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in range(num_ranks)]
    assert [r["num_cases"] for r in ranks] == [1] * num_cases + [0] * (num_ranks - num_cases)
    assert [r["num_padding"] for r in ranks] == [0] * num_cases + [1] * (num_ranks - num_cases)

    data = _ddp_eval.cases(num_cases)
    single = _ddp_eval.evaluator(data, {}, [], str(tmp_path / "single"))
    single.run()
    per_case = single.state.metric_details["val_mean_dice"]  # (cases, 2 classes)
    biased = torch.cat([per_case, per_case[:1].repeat(num_ranks - num_cases, 1)]).mean().item()
    if num_cases > 1:  # the data tells counting the padding case from leaving it out
        assert biased > single.state.metrics["val_mean_dice"] + 0.05
    for r in ranks:
        for k, v in single.state.metrics.items():
            assert r["metrics"][k] == pytest.approx(v, rel=1e-6), k
        gathered = torch.tensor(r["details"]["val_mean_dice"])
        torch.testing.assert_close(gathered[:num_cases], per_case)
        assert torch.isnan(gathered[num_cases:]).all() and len(gathered) == num_ranks
    # the saver (rank 0 writes) recorded the reduced metric
    best = torch.load(tmp_path / "model.pt", weights_only=True)["checkpointer"]
    assert best["best_metric"] == pytest.approx(single.state.metrics["val_mean_dice"], rel=1e-6)


@pytest.mark.parametrize("bundle", ["amos", "brats", "pengwin"])
def test_multi_gpu_config_of_every_bundle(tmp_path, bundle):
    """Each bundle's multi-GPU config builds DDP, DistributedSampler for train and val, gloo on CPU
    (a one-process group here; the 2-process run above exercises the same config for AMOS)."""
    data = write_synthetic_dataset(bundle, tmp_path / bundle, num_cases=3, shape=(24, 24, 16))
    parser = ConfigParser()
    parser.read_config([f"{REPO}/bundles/{bundle}/train.json", f"{REPO}/bundles/{bundle}/multi_gpu_train.json",
                        f"{REPO}/bundles/{bundle}/demo.json"])
    parser.update({"dataset_dir": data, "output_dir": str(tmp_path / "out"), "cache_rate": 0.0})
    assert parser.get_parsed_content("distributed_backend") == ("nccl" if torch.cuda.is_available() else "gloo")
    dist.init_process_group("gloo", init_method=f"file://{tmp_path / 'pg'}", rank=0, world_size=1)
    try:
        assert isinstance(parser.get_parsed_content("network"), DistributedDataParallel)
        train_dl, val_dl = (parser.get_parsed_content(f"{k}#dataloader") for k in ("train", "validate"))
        assert isinstance(train_dl.sampler, DistributedSampler) and isinstance(val_dl.sampler, DistributedEvalSampler)
        assert train_dl.sampler.shuffle and not val_dl.sampler.shuffle
        assert train_dl.drop_last and not val_dl.drop_last
        # validation: every case once (uneven split), padding of empty ranks masked out of the metrics
        val_handlers = [type(h).__name__ for h in parser.get_parsed_content("validate#evaluator#val_handlers")]
        assert val_handlers[-1] == "PaddedCaseMask" and "AtomicCheckpointSaver" in val_handlers
        handlers = parser.get_parsed_content("train#handlers")
        names = [type(h).__name__ for h in handlers]
        # the handlers every rank needs are present on every rank (writers are rank-0-guarded inside)
        for needed in ("ResumeCheckpointLoader", "NonFiniteGuard", "ContourHandoff", "AtomicCheckpointSaver"):
            assert needed in names, names
    finally:
        dist.destroy_process_group()
