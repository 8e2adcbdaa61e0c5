from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

import matplotlib
import pytest
import torch

from monai_cwcd.evaluation import BASELINE_LOSSES, compare_losses, default_configs, write_results_doc
from monai_cwcd.evaluation.report import results_markdown

matplotlib.use("Agg")
REPO = Path(__file__).resolve().parents[2]


def test_default_configs():
    names = [c.name for c in default_configs()]
    assert names == [*BASELINE_LOSSES, "CWCD k2 i1", "CWCD", "CWCD k3 i2", "CWCD k3 i3", "CWCD (PDANet)"]
    with pytest.raises(ValueError, match="unknown loss"):
        default_configs(["CWCD", "Focal"])


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    """One synthetic dataset cache shared by the tests of this module."""
    return str(tmp_path_factory.mktemp("cwcd_cache"))


def test_compare_quick_end_to_end(tmp_path, monkeypatch, cache):
    monkeypatch.setenv("MONAI_CWCD_CACHE", cache)
    out = tmp_path / "cmp"
    doc = compare_losses("amos", output_dir=str(out), quick=True, verbose=False)
    # every configuration ran with both quick seeds, on the same held-out cases
    assert len(doc["runs"]) == len(default_configs()) * 2
    rows = list(csv.DictReader(open(out / "per_case.csv")))
    assert {r["config"] for r in rows} == {c.name for c in default_configs()}
    assert {r["seed"] for r in rows} == {"0", "1"}
    res = list(csv.DictReader(open(out / "results.csv")))
    assert [r["config"] for r in res] == [c.name for c in default_configs()]
    assert all(0.0 <= float(r["dsc_mean"]) <= 1.0 for r in res)
    assert all(r["wilcoxon_p"] not in ("", "nan") for r in res if r["config"] != "CWCD")
    assert (out / "results.md").read_text() == results_markdown(out)
    for png in ("dsc_gain_vs_volume.png", "per_class_dsc.png"):
        assert (out / png).stat().st_size > 10_000
        assert matplotlib.pyplot.imread(out / png).std() > 0
    claims = json.load(open(out / "comparison.json"))["claims"]
    assert claims and all(c["verdict"] == "n/a (quick run)" for c in claims)  # quick draws no conclusions
    # the docs page is generated from the same outputs
    md = write_results_doc(out, tmp_path / "docs" / "results.md", command="cmd --quick").read_text()
    assert "GENERATED" in md and "`cmd --quick`" in md and "| CWCD (PDANet) | pdanet |" in md
    assert md.count("n/a (quick run)") == len(claims)
    for png in ("dsc_gain_vs_volume.png", "per_class_dsc.png", "contour_settings.png"):
        assert (tmp_path / "docs" / "results" / png).stat().st_size > 5_000

    # resume: every finished run was saved; a second invocation reuses them all and reproduces the table
    run_files = sorted((out / "runs").glob("*.json"))
    assert len(run_files) == len(doc["runs"])
    table = (out / "results.csv").read_text()
    again = compare_losses("amos", output_dir=str(out), quick=True, verbose=False)
    assert again["settings"]["reused_runs"] == len(doc["runs"])
    assert (out / "results.csv").read_text().split("seconds_per_run")[0] == table.split("seconds_per_run")[0]
    # a missing run and a truncated one (killed mid-write by something else) are retrained, the rest reused
    cwcd0 = out / "runs" / "cwcd_seed0.json"
    (out / "runs" / "ce_seed1.json").unlink()
    cwcd0.write_text(cwcd0.read_text()[:100])
    partial = compare_losses("amos", output_dir=str(out), quick=True, verbose=False)
    assert partial["settings"]["reused_runs"] == len(doc["runs"]) - 2
    assert json.loads(cwcd0.read_text())["ident"]["seed"] == 0
    # runs made under another budget are never reused; resume=False retrains everything
    other = compare_losses("amos", output_dir=str(out), quick=True, verbose=False, losses=["CE", "CWCD"],
                           contour_settings=[(3, 1)], pdanet=False, learning_rate=5e-4)
    assert other["settings"]["reused_runs"] == 0
    fresh = compare_losses("amos", output_dir=str(out), quick=True, verbose=False, losses=["CE", "CWCD"],
                           contour_settings=[(3, 1)], pdanet=False, learning_rate=5e-4, resume=False)
    assert fresh["settings"]["reused_runs"] == 0


@pytest.mark.slow
def test_benchmark_script_writes_docs(tmp_path, cache):
    # the thin wrapper runs the same function and renders a results page (subset of losses for speed)
    env = {"MONAI_CWCD_CACHE": cache, "PATH": "/usr/bin:/bin"}
    cmd = [sys.executable, str(REPO / "benchmarks" / "compare_losses.py"), "--quick", "--losses", "CE,Dice+CE,CWCD",
           "--contour_settings", "3x1", "--no_pdanet", "--output_dir", str(tmp_path / "o"), "--docs", str(tmp_path / "d" / "results.md")]
    subprocess.run(cmd, check=True, env=env, cwd=tmp_path, capture_output=True, timeout=300)
    md = (tmp_path / "d" / "results.md").read_text()
    assert "GENERATED" in md and "| CE | unet |" in md and "## The papers' claims" in md
    for png in ("dsc_gain_vs_volume.png", "per_class_dsc.png", "contour_settings.png"):
        assert (tmp_path / "d" / "results" / png).stat().st_size > 5_000


def test_boundary_dice_precomputed_maps_match_monai():
    """The Boundary+Dice row may take MONAI BoundaryLoss's distance maps precomputed: same loss and
    gradient as MONAI computing them in every step."""
    from monai.losses import BoundaryLoss, DiceLoss

    from monai_cwcd.evaluation.compare import RunConfig, _BoundaryDice, build_loss, precompute_maps

    torch.manual_seed(0)
    labels = torch.zeros(2, 1, 12, 10, 8, dtype=torch.long)
    labels[0, 0, 2:7, 3:8, 1:5] = 1
    labels[0, 0, 8:11, 1:4, 4:7] = 2
    labels[1, 0, 4:9, 2:9, 2:7] = 2
    maps = precompute_maps(RunConfig(name="Boundary+Dice", loss="Boundary+Dice"), labels, 3)
    assert maps.shape == (2, 3, 12, 10, 8)
    loss = build_loss(RunConfig(name="Boundary+Dice", loss="Boundary+Dice"), 3)
    assert isinstance(loss, _BoundaryDice)
    loss.progress = 0.5
    logits = torch.randn(2, 3, 12, 10, 8, requires_grad=True)
    fast = loss(logits, labels, maps)
    (g_fast,) = torch.autograd.grad(fast, logits)
    a = 0.01 + (0.5 - 0.01) * 0.5
    ref = (1 - a) * DiceLoss(to_onehot_y=True, softmax=True)(logits, labels) + a * BoundaryLoss(
        to_onehot_y=True, softmax=True)(logits, labels)
    (g_ref,) = torch.autograd.grad(ref, logits)
    torch.testing.assert_close(fast, ref)
    torch.testing.assert_close(g_fast, g_ref)
    torch.testing.assert_close(loss(logits, labels), ref)  # on the fly when no map is given
    assert loss.boundary.precomputed is None
