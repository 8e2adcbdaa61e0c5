from __future__ import annotations

import csv
import json
import re
import subprocess
import sys
from pathlib import Path

import matplotlib
import pytest
import torch

from monai_cwcd.evaluation import BASELINE_LOSSES, NETWORKS, compare_losses, default_configs, write_results_doc
from monai_cwcd.evaluation.configs import (
    RunConfig,
    _BoundaryDice,
    build_loss,
    build_network,
    class_weights,
    count_parameters,
    loss_settings,
    network_settings,
)
from monai_cwcd.evaluation.report import comparison_markdown, results_markdown

matplotlib.use("Agg")
REPO = Path(__file__).resolve().parents[2]


def test_default_configs():
    names = [c.name for c in default_configs()]
    assert names == [*BASELINE_LOSSES, "CWCD k2 i1", "CWCD", "CWCD k3 i2", "CWCD k3 i3"]
    with_nets = [c.name for c in default_configs(["Dice+CE", "CWCD"], [(3, 1)], networks=("unet", "segresnet", "pdanet"))]
    assert with_nets == ["Dice+CE", "CWCD", "Dice+CE [segresnet]", "CWCD [segresnet]", "Dice+CE [pdanet]", "CWCD [pdanet]"]
    # with other networks the U-Net always gets its Dice+CE / CWCD (3, 1) pair for the network table
    assert [c.name for c in default_configs(["CE"], [(2, 1)], networks=("unet", "dynunet"))] == [
        "CE", "Dice+CE", "CWCD k2 i1", "CWCD", "Dice+CE [dynunet]", "CWCD [dynunet]"]
    with pytest.raises(ValueError, match="unknown loss"):
        default_configs(["CWCD", "Focal"])
    with pytest.raises(ValueError, match="unknown network"):
        default_configs(networks=("unet", "vnet"))


@pytest.mark.parametrize("include_background", [False, True])
def test_one_include_background_for_every_dice_family_loss(include_background):
    seen = {}
    for cfg in default_configs(include_background=include_background):
        for comp, kw in cfg.settings.items():
            if comp in ("DiceLoss", "DiceCELoss", "GeneralizedDiceLoss", "SeparableDiceLoss", "CWCDLoss"):
                seen[(cfg.name, comp)] = kw["include_background"]
    assert seen and set(seen.values()) == {include_background}
    # the boundary term is foreground-only as Kervadec et al. define it, whatever the Dice setting
    boundary = next(c for c in default_configs(include_background=include_background) if c.name == "Boundary+Dice")
    assert boundary.settings["BoundaryLoss"]["include_background"] is False


def test_settings_are_explicit_and_unknown_arguments_are_errors():
    dwce = loss_settings("DWCE")["DistanceWeightedCELoss"]
    assert dwce == {"w0": 1.0, "sigma": 2.0}  # not the (10, 5) class defaults
    loss = build_loss(RunConfig("DWCE", "DWCE", settings=loss_settings("DWCE")), 3)
    assert (loss.w0, loss.sigma) == (1.0, 2.0)
    # an argument the loss does not take is an error, never dropped (DWCE has no contour arguments)
    bad = RunConfig("DWCE", "DWCE", settings={"DistanceWeightedCELoss": {"w0": 1.0, "kernel_size": 3}})
    with pytest.raises(TypeError, match=r"DistanceWeightedCELoss does not take argument\(s\) \['kernel_size'\]"):
        build_loss(bad, 3)
    with pytest.raises(TypeError, match="takes no settings"):
        build_loss(RunConfig("CE", "CE", settings={"cross_entropy": {"weight": 1}}), 3)
    with pytest.raises(ValueError, match="unknown loss component"):
        build_loss(RunConfig("X", "CE", settings={"FocalLoss": {}}), 3)
    with pytest.raises(TypeError, match="does not take"):
        build_network("unet", 1, 3, {"channels": [4, 8], "strides": [2], "features": [1]})


def test_class_weights_and_weighted_dice_ce_match_monai():
    from monai.losses import DiceCELoss

    labels = torch.zeros(2, 1, 4, 4, 4, dtype=torch.long)
    labels[:, :, :2] = 1  # 64 voxels of 1, 64 of 0, none of 2
    w = class_weights(labels, 3)
    torch.testing.assert_close(w, torch.tensor([128 / (3 * 64), 128 / (3 * 64), 128 / (3 * 64)]))
    labels[0, 0, 0, 0, 0] = 2
    w = class_weights(labels, 3)
    assert w[2] > w[0] and float(w[2]) == pytest.approx(128 / 3)
    with pytest.raises(ValueError, match="expected 0..2"):
        class_weights(labels + 5, 3)
    cfg = RunConfig("Dice+CE (class-weighted)", "Dice+CE (class-weighted)", settings=loss_settings("Dice+CE (class-weighted)"))
    loss = build_loss(cfg, 3, w)
    logits = torch.randn(2, 3, 4, 4, 4)
    ref = DiceCELoss(include_background=False, to_onehot_y=True, softmax=True, weight=w)(logits, labels)
    torch.testing.assert_close(loss(logits, labels), ref)
    with pytest.raises(ValueError, match="inverse_frequency"):
        build_loss(cfg, 3)


def test_combined_baselines_are_sums_of_their_terms():
    import torch.nn.functional as F
    from monai.losses import GeneralizedDiceLoss

    from monai_cwcd.losses import RegionWiseLoss

    torch.manual_seed(0)
    logits, labels = torch.randn(2, 3, 6, 6, 6), torch.randint(0, 3, (2, 1, 6, 6, 6))
    ce = F.cross_entropy(logits, labels[:, 0])
    gdl_ce = build_loss(RunConfig("GDL+CE", "GDL+CE", settings=loss_settings("GDL+CE")), 3)
    gdl = GeneralizedDiceLoss(include_background=False, to_onehot_y=True, softmax=True)(logits, labels)
    torch.testing.assert_close(gdl_ce(logits, labels), gdl + ce)
    rw_ce = build_loss(RunConfig("RW (RRW)+CE", "RW (RRW)+CE", settings=loss_settings("RW (RRW)+CE")), 3)
    torch.testing.assert_close(rw_ce(logits, labels), RegionWiseLoss(softmax=True)(logits, labels) + ce)
    simple = build_loss(RunConfig("GDL (simple)", "GDL (simple)", settings=loss_settings("GDL (simple)")), 3)
    assert simple.w_type == "simple"


@pytest.mark.parametrize("network", NETWORKS)
def test_networks_at_cpu_width(network):
    net = build_network(network, 1, 4, network_settings(network, (32, 32, 16), (4, 8, 16, 32)))
    out = net(torch.randn(2, 1, 32, 32, 16))
    assert out.shape == (2, 4, 32, 32, 16) and count_parameters(net) > 1000


def test_boundary_dice_precomputed_maps_match_monai():
    """Boundary+Dice takes MONAI BoundaryLoss's distance maps precomputed for every class (the
    foreground-only term drops the background map): same loss and gradient as MONAI computing them."""
    from monai.losses import BoundaryLoss, DiceLoss

    from monai_cwcd.evaluation.compare import precompute_maps

    torch.manual_seed(0)
    labels = torch.zeros(2, 1, 12, 10, 8, dtype=torch.long)
    labels[0, 0, 2:7, 3:8, 1:5] = 1
    labels[0, 0, 8:11, 1:4, 4:7] = 2
    labels[1, 0, 4:9, 2:9, 2:7] = 2
    cfg = RunConfig("Boundary+Dice", "Boundary+Dice", settings=loss_settings("Boundary+Dice"))
    maps = precompute_maps(cfg, labels, 3)
    assert maps.shape == (2, 3, 12, 10, 8)
    loss = build_loss(cfg, 3)
    assert isinstance(loss, _BoundaryDice)
    loss.progress = 0.5
    logits = torch.randn(2, 3, 12, 10, 8, requires_grad=True)
    fast = loss(logits, labels, maps)
    (g_fast,) = torch.autograd.grad(fast, logits)
    a = 0.01 + (0.5 - 0.01) * 0.5
    ref = (1 - a) * DiceLoss(include_background=False, to_onehot_y=True, softmax=True)(logits, labels) + a * BoundaryLoss(
        include_background=False, to_onehot_y=True, softmax=True)(logits, labels)
    (g_ref,) = torch.autograd.grad(ref, logits)
    torch.testing.assert_close(fast, ref)
    torch.testing.assert_close(g_fast, g_ref)
    torch.testing.assert_close(loss(logits, labels), ref)  # on the fly when no map is given
    assert loss.boundary.precomputed is None


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    """One synthetic dataset cache shared by the tests of this module."""
    return str(tmp_path_factory.mktemp("cwcd_cache"))


def test_compare_quick_end_to_end(tmp_path, monkeypatch, cache):
    monkeypatch.setenv("MONAI_CWCD_CACHE", cache)
    out = tmp_path / "cmp"
    nets = ("unet", "segresnet")
    # one row of each kind of loss wiring (plain, class weights, sums, DWCE/RRW/boundary/contour maps);
    # every row trains in the slow quick-suite test
    losses = ["CE", "Dice+CE (class-weighted)", "GDL+CE", "DWCE", "RW (RRW)+CE", "Boundary+Dice", "CWCD"]
    kw = {"quick": True, "verbose": False, "networks": nets, "losses": losses, "contour_settings": [(3, 1)]}
    doc = compare_losses("amos", output_dir=str(out), **kw)
    configs = default_configs(losses, [(3, 1)], networks=nets)
    s = doc["settings"]
    # the budget selection used validation cases drawn from the training cases, never the test cases
    sel_files = sorted((out / "runs").rglob("select_*.json"))
    assert len(sel_files) == 2 * len(configs)  # 2 learning rates per row in quick mode
    for f in sel_files:
        ident = json.loads(f.read_text())["ident"]
        assert set(ident["eval_cases"]) <= set(s["folds"][0]["train_cases"])
        assert not set(ident["eval_cases"]) & set(ident["train_cases"])
        assert not set(ident["eval_cases"]) & set(s["folds"][0]["test_cases"])
    assert set(s["selection"]["chosen"]) == {c.name for c in configs}
    # both budgets of every row and seed, on the same held-out cases
    rows = list(csv.DictReader(open(out / "per_case.csv")))
    assert {(r["budget"], r["config"]) for r in rows} == {(b, c.name) for b in ("matched", "selected") for c in configs}
    assert {r["seed"] for r in rows} == {"0", "1"}
    assert {r["case"] for r in rows} == set(s["folds"][0]["test_cases"])
    res = list(csv.DictReader(open(out / "results.csv")))
    assert [r["config"] for r in res if r["budget"] == "matched"] == [c.name for c in configs]
    for r in res:
        assert 0.0 <= float(r["dsc_mean"]) <= 1.0 and 0.0 <= float(r["detection_rate"]) <= 1.0
        assert int(r["n_units"]) in (0, 2)  # paired over the 2 test cases
        settings = json.loads(r["loss_settings"])
        assert settings == next(c.settings for c in configs if c.name == r["config"])
    nets_csv = list(csv.DictReader(open(out / "networks.csv")))
    assert [(n["budget"], n["network"]) for n in nets_csv] == [(b, n) for b in ("matched", "selected") for n in nets]
    # every configuration's full settings are written out
    cfg_json = json.loads((out / "configs.json").read_text())
    dwce = next(c for c in cfg_json if c["name"] == "DWCE")
    assert dwce["loss_settings"] == {"DistanceWeightedCELoss": {"w0": 1.0, "sigma": 2.0}} and dwce["parameters"] > 0
    md = (out / "results.md").read_text()
    assert md == comparison_markdown(out) and results_markdown(out) in md
    # a standalone page: title, setup block, plots and claims (as a part of docs/results.md)
    assert md.startswith("# Loss comparison (generated)") and "- data: `amos`" in md and "- compute:" in md
    assert "![DSC gain vs volume](./dsc_gain_vs_volume.png)" in md and "#### Claims on this data" in md
    for png in ("dsc_gain_vs_volume.png", "per_class_dsc.png"):
        assert (out / png).stat().st_size > 10_000
        assert matplotlib.pyplot.imread(out / png).std() > 0
    assert doc["claims"] and all(c["verdict"] == "n/a (quick run)" for c in doc["claims"])  # quick draws no conclusions
    md = write_results_doc({"Synthetic": out}, tmp_path / "docs" / "results.md", command="cmd --quick").read_text()
    assert "GENERATED" in md and "`cmd --quick`" in md and "| CWCD [segresnet] | segresnet |" in md
    assert "| Synthetic |" in md and "Model independence" in md
    summary = md[md.index("## Summary of claims"):md.index("## Synthetic")]  # every part's claims, before the parts
    tested = [c for c in doc["claims"] if c["evidence"] != "not run"]  # claims whose rows were not run are left out
    assert summary.count("| Synthetic | ") == len(tested) < len(doc["claims"])
    for png in ("dsc_gain_vs_volume.png", "per_class_dsc.png", "contour_settings.png"):
        assert (tmp_path / "docs" / "results" / png).stat().st_size > 5_000

    # resume: every finished run was saved; a second invocation reuses them all and reproduces the table
    n_runs = len(list((out / "runs").rglob("*.json")))
    # one folder per dataset, grid and batch, so comparisons of other data can share the runs folder
    assert n_runs > 0 and [p.name for p in (out / "runs").iterdir()] == ["amos_32x32x16_b2"]

    def table():  # results.csv without the timing column
        return [{k: v for k, v in r.items() if k != "seconds_per_run"} for r in csv.DictReader(open(out / "results.csv"))]

    before = table()
    legacy = sorted((out / "runs").rglob("select_*.json"))[0]  # a run saved before the per-data folders
    legacy.rename(out / "runs" / legacy.name)
    again = compare_losses("amos", output_dir=str(out), **kw)
    assert again["settings"]["reused_runs"] == n_runs
    assert table() == before
    # a missing run and a truncated one are retrained, the rest reused
    victims = sorted((out / "runs").rglob("test_*.json"))[:2]
    victims[0].unlink()
    victims[1].write_text(victims[1].read_text()[:100])
    partial = compare_losses("amos", output_dir=str(out), **kw)
    assert partial["settings"]["reused_runs"] == n_runs - 2
    # runs made with other settings are never reused (CWCD with the background), the unchanged ones are
    # (CE takes no include_background); resume=False retrains everything
    ce_runs = len(list((out / "runs").rglob("select_ce_seed*"))) + len(list((out / "runs").rglob("test_ce_seed*")))
    other = compare_losses("amos", output_dir=str(out), quick=True, verbose=False, losses=["CE", "CWCD"],
                           contour_settings=[(3, 1)], networks=("unet",), include_background=True)
    assert ce_runs > 0 and other["settings"]["reused_runs"] == ce_runs
    fresh = compare_losses("amos", output_dir=str(out), quick=True, verbose=False, losses=["CE", "CWCD"],
                           contour_settings=[(3, 1)], networks=("unet",), include_background=True, resume=False)
    assert fresh["settings"]["reused_runs"] == 0


def test_runs_scored_at_other_epochs_keep_their_own_files(tmp_path, monkeypatch, cache):
    """Two comparisons sharing runs_dir: one with a budget selection (its test runs are scored at the
    matched and the selected epochs, in one run), one without (scored at the matched epochs only). They
    are different runs; neither may overwrite the other's file, so both resume with every run reused."""
    monkeypatch.setenv("MONAI_CWCD_CACHE", cache)
    runs = tmp_path / "runs"
    kw = {"verbose": False, "losses": ["CWCD"], "contour_settings": [(3, 1)], "networks": ("unet",), "seeds": (0, 1),
          "epochs": 2, "spatial_size": (32, 32, 16), "num_train": 3, "num_test": 2, "batch_size": 2,
          "widths": {"unet": (4, 8, 16, 32)}, "runs_dir": str(runs)}
    sel = {"lr_grid": [2e-3], "epoch_grid": [1], "val_cases": 1}  # selected: 1 epoch; matched: 2
    first = compare_losses("amos", output_dir=str(tmp_path / "sel"), **kw, **sel)
    assert first["settings"]["selection"]["chosen"]["CWCD"]["epochs"] == 1
    plain = compare_losses("amos", output_dir=str(tmp_path / "plain"), **kw)
    assert plain["settings"]["reused_runs"] == 0  # scored at other epochs: not the selection comparison's runs
    names = sorted(p.name for p in runs.rglob("test_*.json"))
    assert len(names) == 4 and sum("_at1-2" in n for n in names) == 2, names
    assert compare_losses("amos", output_dir=str(tmp_path / "sel"), **kw, **sel)["settings"]["reused_runs"] == 3
    assert compare_losses("amos", output_dir=str(tmp_path / "plain"), **kw)["settings"]["reused_runs"] == 2


def _example_folder(path: Path, cases: dict[str, int], names: list[str]) -> Path:
    """A fetched-example folder (MSD layout, dataset.json with label names) with small synthetic volumes."""
    import nibabel as nib
    import numpy as np

    rng = np.random.default_rng(0)
    training = []
    for case, depth in cases.items():
        img = rng.normal(0, 1, (32, 32, depth)).astype(np.float32)
        lab = np.zeros((32, 32, depth), dtype=np.uint8)
        for c in range(1, len(names)):
            lab[4 * c : 4 * c + 5, 8:20, 2 : depth - 2] = c
            img[lab == c] += 2.0 * c
        for kind, arr in (("images", img), ("labels", lab)):
            (path / f"{kind}Tr").mkdir(parents=True, exist_ok=True)
            nib.save(nib.Nifti1Image(arr, np.diag([3.0, 3.0, 3.0, 1.0])), str(path / f"{kind}Tr" / f"{case}.nii.gz"))
        training.append({"image": f"./imagesTr/{case}.nii.gz", "label": f"./labelsTr/{case}.nii.gz", "case_id": case})
    meta = {"labels": {str(i): n for i, n in enumerate(names)}, "training": training, "label_note": "synthetic stand-in"}
    (path / "dataset.json").write_text(json.dumps(meta))
    return path


def test_compare_takes_the_real_data_protocols(tmp_path):
    """The comparison runs on the slab protocol of one volume and on the two-subject protocol (with
    small synthetic stand-ins for the fetched examples)."""
    kw = {"quick": True, "verbose": False, "losses": ["Dice+CE", "CWCD"], "contour_settings": [(3, 1)], "networks": ("unet",)}
    ct = _example_folder(tmp_path / "ct", {"example_ct": 112}, ["background", "liver", "spleen"])
    doc = compare_losses("totalsegmentator-ct-slabs", dataset_dir=str(ct), output_dir=str(tmp_path / "slabs"), **kw)
    s = doc["settings"]
    assert s["folds"][0]["train_cases"] == ["example_ct_z0-16", "example_ct_z48-64", "example_ct_z96-112"]
    assert s["folds"][0]["test_cases"] == ["example_ct_z24-40", "example_ct_z72-88"]
    assert s["selection"]["enabled"] and "disjoint axial slabs" in s["protocol"] and s["label_note"] == "synthetic stand-in"
    units = {r["n_units"] for r in csv.DictReader(open(tmp_path / "slabs" / "results.csv")) if r["config"] == "Dice+CE"}
    assert units == {"2"}  # the two test slabs are the paired units
    pr = _example_folder(tmp_path / "pr", {"brain1": 16, "brain2": 12}, ["background", "lesion"])
    doc = compare_losses("pyradiomics-brain-subjects", dataset_dir=str(pr), output_dir=str(tmp_path / "subj"), **kw)
    s = doc["settings"]
    assert [(f["train_cases"], f["test_cases"]) for f in s["folds"]] == [(["brain1"], ["brain2"]), (["brain2"], ["brain1"])]
    assert not s["selection"]["enabled"]  # one training subject: no validation case to select on (quick skips it)
    rows = list(csv.DictReader(open(tmp_path / "subj" / "per_case.csv")))
    assert {r["case"] for r in rows} == {"brain1", "brain2"} and {r["structure"] for r in rows} == {"lesion"}
    with pytest.raises(ValueError, match="budget selection needs val_cases=3"):
        compare_losses("pyradiomics-brain-subjects", dataset_dir=str(pr), output_dir=str(tmp_path / "x"), verbose=False,
                       losses=["CWCD"], contour_settings=[(3, 1)], networks=("unet",), lr_grid=[1e-3], epochs=1)


def _suite() -> dict:
    import importlib.util

    spec = importlib.util.spec_from_file_location("compare_losses_script", REPO / "benchmarks" / "compare_losses.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.SUITE


def test_suite_parts_that_share_runs_share_their_settings():
    """The full suite's claims that rely on shared runs hold for its real settings (the quick suite
    replaces them): part 8's U-Net rows are part 2's runs (same data, grid, losses, seeds and budgets,
    the U-Net at its default width), and the synthetic and real-CT parts match at lr 5e-3."""
    parts = list(_suite().values())
    second, eighth = parts[1][0], parts[7][0]
    shared = ("dataset", "losses", "contour_settings", "seeds", "epochs", "learning_rate", "lr_grid", "epoch_grid",
              "spatial_size", "batch_size", "val_cases")
    assert {k: second.get(k) for k in shared} == {k: eighth.get(k) for k in shared}
    assert "unet" in second["networks"] and "unet" in eighth["networks"] and "unet" not in eighth.get("widths", {})
    assert [kw.get("learning_rate") for kw, _ in parts[:5]] == [5e-3] * 5
    # the real-CT loss comparison trains with augmentation (without it the U-Net memorises the 5 slabs)
    assert parts[3][0]["augmentation"] == "affine" and parts[3][0]["epochs"] in parts[3][0]["epoch_grid"]


@pytest.mark.slow
def test_quick_suite_writes_the_page(tmp_path, cache):
    """The one command of docs/results.md in --quick mode (CI; real-data parts skipped without the
    fetched examples): every synthetic part runs, shares its runs, and the page lists each part's time."""
    env = {"MONAI_CWCD_CACHE": cache, "PATH": "/usr/bin:/bin", "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, str(REPO / "benchmarks" / "compare_losses.py"), "--suite", "all", "--quick",
           "--output_dir", str(tmp_path / "o"), "--docs", str(tmp_path / "d" / "results.md")]
    proc = subprocess.run(cmd, check=True, env=env, cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert "skipping 'Real CT (TotalSegmentator example, organ-level, axial slabs)" in proc.stdout
    md = (tmp_path / "d" / "results.md").read_text()
    assert "GENERATED" in md and "| Synthetic AMOS: loss comparison (U-Net) |" in md and "| total |" in md
    assert "Model independence (matched budget)" in md and "| CWCD [pdanet] | pdanet |" in md
    # a quick page says it is a smoke test and does not carry the full protocol's notes
    assert "Quick run (CI smoke test)" in md and "What the real-data parts can and cannot show" not in md
    second = json.loads((tmp_path / "o" / "part2" / "comparison.json").read_text())["settings"]
    assert second["reused_runs"] > 0  # the U-Net rows of the network table are the loss comparison's runs
    # quick keeps a part's explicit network width: part 8 builds PDANet at the journal's width
    eighth = json.loads((tmp_path / "o" / "part8" / "comparison.json").read_text())["settings"]
    assert eighth["networks"]["pdanet"]["features"] == [16, 32, 64, 128]
    assert second["networks"]["pdanet"]["features"] != [16, 32, 64, 128]
    for png in ("dsc_gain_vs_volume.png", "per_class_dsc.png", "contour_settings.png"):
        assert (tmp_path / "d" / "results" / png).stat().st_size > 5_000


def test_compare_in_worker_processes_gives_the_same_runs(tmp_path, monkeypatch, cache, capsys):
    """num_workers=2 trains the selection and the test runs in two spawned processes (one thread each);
    the runs and tables equal those of one process with one thread, and a second invocation reuses
    every run; a failing worker run stops the comparison with its error."""
    monkeypatch.setenv("MONAI_CWCD_CACHE", cache)
    kw = {"quick": True, "verbose": False, "networks": ("unet",), "losses": ["CWCD"], "contour_settings": [(3, 1)]}
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(2)
        par = compare_losses("amos", output_dir=str(tmp_path / "par"), num_workers=2, **kw)
        torch.set_num_threads(1)
        one = compare_losses("amos", output_dir=str(tmp_path / "one"), **kw)
    finally:
        torch.set_num_threads(threads)
    assert par["settings"]["reused_runs"] == 0 and one["settings"]["reused_runs"] == 0
    names = {d: sorted(f.name for f in (tmp_path / d / "runs").rglob("*.json")) for d in ("one", "par")}
    assert names["one"] == names["par"] and len(names["one"]) >= 2 + 2  # 2 selection runs, >= 1 test run per seed
    n_runs = len(names["one"])
    # runs at a non-default network width (QUICK's) are saved under their own names: the default width's
    # runs in a shared runs_dir are never overwritten
    assert all(re.search(r"_w[0-9a-f]{8}\.json$", n) for n in names["one"])

    def table(d):
        return sorted(tuple(r.values()) for r in csv.DictReader(open(tmp_path / d / "per_case.csv")))

    assert table("par") == table("one")
    again = compare_losses("amos", output_dir=str(tmp_path / "par"), num_workers=2, **dict(kw, verbose=True))
    assert again["settings"]["reused_runs"] == n_runs and par["settings"]["num_workers"] == 2
    # the wall clock of the invocation that trained every run is kept by the invocations that reuse them
    first = par["settings"]["from_scratch"]
    assert first["wall_seconds"] == par["settings"]["total_seconds"] and first["num_workers"] == 2
    assert again["settings"]["from_scratch"] == first and again["settings"]["total_seconds"] < first["wall_seconds"]
    # ... and only for the same runs and data: other runs or another dataset in that folder get none
    from monai_cwcd.evaluation.compare import _from_scratch

    assert _from_scratch(tmp_path / "par", again["settings"], again["runs"]) == first
    assert _from_scratch(tmp_path / "par", again["settings"], again["runs"][1:]) is None
    assert _from_scratch(tmp_path / "par", dict(again["settings"], dataset="brats"), again["runs"]) is None
    from monai_cwcd.evaluation import write_results_doc

    page = write_results_doc({"part": str(tmp_path / "one")}, tmp_path / "page" / "results.md").read_text()
    assert f"| part | {one['settings']['compute_seconds'] / 60:.1f} | {one['settings']['total_seconds'] / 60:.1f} (1 process, 1 thread, " in page
    # a run without dataset_dir says that it uses the synthetic demo cases
    out = capsys.readouterr().out
    assert "no dataset_dir given, so the synthetic demo cases in" in out
    # the plan printed up front counts the runs the comparison has: its selection runs exactly, its test runs
    # within the announced range
    plan = re.search(r"\[compare\] plan: (\d+) rows .*: (\d+) budget-selection runs of \d+ epochs, then (\d+) to (\d+) test runs", out)
    assert plan, out
    n_select = sum(n.startswith("select_") for n in names["par"])
    assert int(plan.group(2)) == n_select == 2 * int(plan.group(1))  # QUICK's two learning rates
    assert int(plan.group(3)) <= n_runs - n_select <= int(plan.group(4))
    with pytest.raises(ValueError, match="num_workers"):
        compare_losses("amos", output_dir=str(tmp_path / "x"), num_workers=0, **kw)
    # an error inside a worker (a loss setting the loss does not take) reaches the caller
    bad = dict(kw, widths={"unet": (4, 8, 16, 32)})
    with pytest.raises(ValueError, match="Invalid learning rate"):
        compare_losses("amos", output_dir=str(tmp_path / "bad"), num_workers=2, **dict(bad, quick=False, epochs=1,
                       seeds=(0, 1), spatial_size=(32, 32, 16), num_train=3, num_test=2, batch_size=2, learning_rate=float("nan")))


def test_benchmark_command_reports_bad_input_in_one_line(tmp_path, capsys):
    """benchmarks/compare_losses.py ends a bad setting with one plain last line and exit status 1,
    as ``monai-cwcd compare`` does, and its --dataset help names the protocols."""
    script = str(REPO / "benchmarks" / "compare_losses.py")
    proc = subprocess.run([sys.executable, script, "--seeds", "0", "--output_dir", str(tmp_path / "o")],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert proc.stderr.strip().splitlines()[-1] == (
        "ValueError: at least 2 seeds are needed for mean/std and the paired tests, got [0].")
    assert not (tmp_path / "o").exists()
    import runpy

    main = runpy.run_path(script)["main"]  # the help in this process: no second interpreter start-up
    with pytest.raises(SystemExit) as done:
        main(["--help"])
    assert done.value.code == 0
    assert "totalsegmentator-ct-organs-slabs" in "".join(capsys.readouterr().out.split())  # argparse wraps at hyphens


def test_parse_contour_setting():
    from monai_cwcd.evaluation.configs import parse_contour_setting

    assert parse_contour_setting((3, 1))["suffix"] == "" and parse_contour_setting("2x1")["label"] == "(2, 1)"
    mm = parse_contour_setting("2.5 mm")
    assert (mm["contour_width_mm"], mm["label"], mm["suffix"]) == (2.5, "2.5 mm", " 2.5mm")
    assert parse_contour_setting("Adaptive")["contour_width_mm"] == "adaptive"
    assert parse_contour_setting("adaptive:0.25")["suffix"] == " adaptive 0.25"
    for bad in ("3", "1x1", "-2mm", "wide", (3,), "adaptive:0", "adaptive:2"):
        with pytest.raises(ValueError, match="contour setting"):
            parse_contour_setting(bad)
    names = [c.name for c in default_configs(["CWCD"], [(3, 1), "2mm", "adaptive"])]
    assert names == ["CWCD", "CWCD 2mm", "CWCD adaptive"]
    # the voxel rows keep their settings exactly (finished runs stay reusable); only mm rows carry a width
    voxel, mm_row, adaptive = default_configs(["CWCD"], [(3, 1), "2mm", "adaptive"])
    assert "contour_width_mm" not in voxel.settings["CWCDLoss"] and voxel.settings == loss_settings("CWCD")
    assert mm_row.settings["CWCDLoss"]["contour_width_mm"] == 2.0 and mm_row.contour == "2 mm"
    with pytest.raises(ValueError, match="CWCD rows"):
        loss_settings("Dice+CE", contour_width_mm=2.0)
    with pytest.raises(ValueError, match="adaptive"):
        build_loss(adaptive, 3)


def test_contour_widths_from_labels_follow_the_adaptive_rule():
    """w_c = clip(0.1 r_c, s_min, 6 s_min): a ball of radius 20 mm gets 2 mm, a tiny blob the minimum,
    a huge one the maximum; the same rule as ``monai-cwcd contours --adaptive``."""
    import math

    from monai_cwcd.evaluation.configs import contour_widths_from_labels

    spacing = (0.5, 0.5, 2.0)
    lab = torch.zeros(1, 1, 200, 200, 60, dtype=torch.long)
    zz, yy, xx = torch.meshgrid(torch.arange(200) * 0.5, torch.arange(200) * 0.5, torch.arange(60) * 2.0, indexing="ij")
    ball = ((zz - 50) ** 2 + (yy - 50) ** 2 + (xx - 60) ** 2) <= 20.0**2
    lab[0, 0][ball] = 1
    lab[0, 0, 0, 0, 0] = 2  # one voxel: 0.5 mm^3
    lab[0, 0, 150:, :, :] = 3  # a slab of 25 x 100 x 120 mm
    w = contour_widths_from_labels(lab, [spacing], 5)
    r1 = (3 * int(ball.sum()) * 0.5 * 0.5 * 2.0 / (4 * math.pi)) ** (1 / 3)
    assert w[1] == pytest.approx(0.1 * r1, abs=1e-3) and 1.9 < w[1] < 2.1
    assert w[0] == w[2] == w[4] == 0.5 and w[3] == 3.0  # background/absent/tiny: s_min; huge: 6 s_min
    assert contour_widths_from_labels(lab, [spacing], 5, fraction=0.05)[1] == pytest.approx(0.05 * r1, abs=1e-3)
    with pytest.raises(ValueError, match="spacings"):
        contour_widths_from_labels(lab, [spacing, spacing], 5)


def test_compare_runs_millimetre_and_adaptive_contours(tmp_path):
    """The mm and adaptive rows train on maps made from each case's spacing, and the tables name them."""
    out = compare_losses(output_dir=str(tmp_path), quick=True, verbose=False, losses=["CWCD"], networks=("unet",),
                         contour_settings=[(3, 1), "1.2mm", "adaptive"], lr_grid=[2e-3], epoch_grid=[1])
    names = {c["name"]: c for c in out["settings"]["configs"]}
    assert names["CWCD 1.2mm"]["contour"] == "1.2 mm" and names["CWCD adaptive"]["loss_settings"]["CWCDLoss"]["contour_width_mm"] == "adaptive"
    widths = out["settings"]["adaptive_contour_widths"]["CWCD adaptive"]["all"]
    assert len(widths) == 16 and all(v > 0 for v in widths.values())
    md = (tmp_path / "results.md").read_text()
    assert "| CWCD 1.2mm | unet | 1.2 mm |" in md and "| CWCD adaptive | unet | adaptive |" in md
    # per-structure HD95, ASSD and Wilcoxon p against the reference row (issue 12, item 3)
    for title in ("Per-structure HD95 (mm)", "Per-structure ASSD (mm)", "Per-structure Wilcoxon p"):
        assert title in md
    with open(tmp_path / "per_structure.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert {r["reference"] for r in rows} == {"CWCD"} and all(r["n_units"] in ("0", "2") for r in rows)
    assert any(r["wilcoxon_p"] not in ("", "nan") for r in rows if r["config"] == "CWCD adaptive")
    claims = {c["claim"] for c in out["claims"]}
    assert "adaptive per-structure contour widths (0.1 x equivalent radius) mean DSC > uniform (3, 1)" in claims
    assert any(c.startswith("CWCD 1.2mm") for c in claims)
    # the mm map differs from the voxel map on this anisotropic grid (1 voxel in plane, none across slices)
    from monai_cwcd.evaluation.compare import precompute_maps

    cfgs = {c.name: c for c in default_configs(["CWCD"], [(3, 1), "1.2mm"])}
    lab = torch.zeros(1, 1, 8, 8, 8, dtype=torch.long)
    lab[0, 0, 2:6, 2:6, 2:6] = 1
    vox = precompute_maps(cfgs["CWCD"], lab, 2)
    mm = precompute_maps(cfgs["CWCD 1.2mm"], lab, 2, spacings=[(1.2, 1.2, 4.0)])
    assert vox.shape == mm.shape and int(vox.sum()) > int(mm.sum()) > 0
    with pytest.raises(ValueError, match="spacing"):
        precompute_maps(cfgs["CWCD 1.2mm"], lab, 2)


def test_network_that_cannot_train_fails_before_any_run(tmp_path):
    """PDANet's deepest BatchNorm sees one value per channel with one 32x32x16 case per batch: the
    comparison refuses before training anything, naming the network and what to change."""
    from monai_cwcd.evaluation.compare import check_networks

    with pytest.raises(ValueError, match=r"network 'pdanet' cannot train on batches of 1 case\(s\) of \(32, 32, 16\)"):
        check_networks({"pdanet": network_settings("pdanet", (32, 32, 16), (4, 8, 16, 32))}, 1, 3, (32, 32, 16), 1)
    check_networks({"pdanet": network_settings("pdanet", (32, 32, 16), (4, 8, 16, 32))}, 1, 3, (32, 32, 16), 2)
    with pytest.raises(ValueError, match="leave pdanet out of --networks"):
        compare_losses(output_dir=str(tmp_path / "cmp"), verbose=False, losses=["CWCD"], networks=("unet", "pdanet"),
                       contour_settings=[(3, 1)], batch_size=1, epochs=1, num_train=3, num_test=2, spatial_size=(32, 32, 16),
                       widths={"pdanet": (4, 8, 16, 32), "unet": (4, 8, 16, 32)})
    assert not (tmp_path / "cmp" / "runs").exists()


@pytest.mark.slow
def test_ctrl_c_during_worker_runs_ends_in_one_line(tmp_path, cache):
    """Ctrl-C (SIGINT to the process group, as a terminal sends it) while worker processes train: one
    plain line, exit 130, no traceback from the parent or the workers, no worker left running."""
    import os
    import signal

    env = {**os.environ, "MONAI_CWCD_CACHE": cache, "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, str(REPO / "benchmarks" / "compare_losses.py"), "--quick", "--losses", "CE,Dice+CE,CWCD",
           "--networks", "unet,segresnet", "--num_workers", "2", "--output_dir", str(tmp_path / "o")]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    for line in proc.stdout:
        if "worker run 1/" in line:  # the pool is up and the parent handles Ctrl-C again
            break
    os.killpg(proc.pid, signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130 and "Traceback" not in err
    assert err.strip().splitlines()[-1].startswith("compare_losses: interrupted; every finished run is saved")
    alive = subprocess.run(["pgrep", "-f", str(tmp_path / "o")], capture_output=True, text=True).stdout.split()
    assert not alive


def test_affine_augmentation_is_seeded_aligned_and_keeps_sides():
    """``affine`` draws the same transform for the same seed, moves image and label together (the image
    is the label here, so bilinear and nearest must agree almost everywhere) and never mirrors: a
    structure on the left stays on the left."""
    from monai_cwcd.evaluation import AUGMENTATIONS, build_augmentation
    from monai_cwcd.evaluation.compare import _augment_batch

    y = torch.zeros(3, 1, 48, 40, 16, dtype=torch.long)
    y[:, :, 6:18, 10:30, 4:12] = 1  # "right" structure: low first index
    y[:, :, 30:42, 12:28, 4:12] = 2
    x = y.float() * 100.0
    a1, b1 = _augment_batch(build_augmentation("affine", 3), x, y)
    a2, b2 = _augment_batch(build_augmentation("affine", 3), x, y)
    a3, b3 = _augment_batch(build_augmentation("affine", 4), x, y)
    assert torch.equal(a1, a2) and torch.equal(b1, b2) and not torch.equal(b1, b3)
    assert not torch.equal(b1, y)  # it does move the cases
    assert b1.dtype == torch.long and set(b1.unique().tolist()) <= {0, 1, 2} and a1.shape == x.shape
    # the intensity terms (scale +-10 %, shift +-0.1) leave the 0/100/200 steps recognisable
    agree = ((a1 / 100.0).round().long() == b1).float().mean()
    assert agree > 0.97, float(agree)
    for i in range(3):
        centre = [torch.nonzero(b1[i, 0] == c).float().mean(0)[0] for c in (1, 2)]
        assert centre[0] < centre[1]
    assert set(AUGMENTATIONS) == {"affine"}
    with pytest.raises(ValueError, match="augmentation must be one of"):
        build_augmentation("flip", 0)


def test_augmented_training_recomputes_the_loss_maps_from_the_augmented_labels():
    """With augmentation the contour map of each step is made from the augmented label: the maps handed
    in are not used (zeros give the same run), and without augmentation they are (zeros change it)."""
    from monai_cwcd.evaluation.compare import precompute_maps, train_and_evaluate

    torch.manual_seed(0)
    y = torch.zeros(4, 1, 32, 32, 16, dtype=torch.long)
    for i in range(4):
        y[i, :, 6 + i : 20 + i, 8:22, 3:12] = 1
        y[i, :, 22:30, 10 - i : 24 - i, 5:14] = 2
    x = y.float() + 0.1 * torch.randn(y.shape)
    data = {"image": x, "label": y, "case_id": [f"c{i}" for i in range(4)], "spacing": [(1.0, 1.0, 1.0)] * 4}
    spec = {"num_classes": 3, "class_names": ["background", "a", "b"], "regions": None}
    cfg = {c.name: c for c in default_configs(["CWCD"], [(3, 1)], ("unet",))}["CWCD"]
    maps = precompute_maps(cfg, y, 3)
    net = network_settings("unet", (32, 32, 16), (4, 8, 16, 32))

    def run(m, augmentation):
        r = train_and_evaluate(cfg, 0, data, data, m, spec, 2, [2], 2, 1e-2, net, torch.device("cpu"), augmentation=augmentation)
        return r["final_loss"], r["per_epoch"]["2"]

    assert run(maps, "affine") == run(torch.zeros_like(maps), "affine")
    assert run(maps, None) != run(torch.zeros_like(maps), None)
    assert run(maps, "affine") != run(maps, None)


def test_augmentation_is_part_of_each_run_and_of_the_page(tmp_path, monkeypatch, cache):
    """An augmented comparison trains its own runs (own files, ``augmentation`` in each run's identity), the
    report says which augmentation, and a name that is not in AUGMENTATIONS fails before any run."""
    monkeypatch.setenv("MONAI_CWCD_CACHE", cache)
    runs = tmp_path / "runs"
    kw = {"verbose": False, "losses": ["CWCD"], "contour_settings": [(3, 1)], "networks": ("unet",), "seeds": (0, 1),
          "epochs": 1, "spatial_size": (32, 32, 16), "num_train": 3, "num_test": 2, "batch_size": 2,
          "widths": {"unet": (4, 8, 16, 32)}, "runs_dir": str(runs)}
    plain = compare_losses("amos", output_dir=str(tmp_path / "plain"), **kw)
    aug = compare_losses("amos", output_dir=str(tmp_path / "aug"), augmentation="affine", **kw)
    assert aug["settings"]["reused_runs"] == 0 and aug["settings"]["augmentation"] == "affine"
    assert plain["settings"]["augmentation"] is None
    files = sorted(p.name for p in runs.rglob("test_*.json"))
    assert len(files) == 4 and sum("_aug-affine" in n for n in files) == 2, files
    for p in runs.rglob("test_*aug-affine*.json"):
        assert json.loads(p.read_text())["ident"]["augmentation"] == "affine"
    assert "augmentation `affine` (MONAI RandAffined" in (tmp_path / "aug" / "results.md").read_text()
    assert "no augmentation" in (tmp_path / "plain" / "results.md").read_text()
    assert compare_losses("amos", output_dir=str(tmp_path / "aug"), augmentation="affine", **kw)["settings"]["reused_runs"] == 2
    none = compare_losses("amos", output_dir=str(tmp_path / "plain"), augmentation="none", **kw)["settings"]
    assert none["augmentation"] is None and none["reused_runs"] == 2  # "none" is the plain comparison
    with pytest.raises(ValueError, match=r"augmentation must be one of \['affine'\] or 'none', got 'elastic'"):
        compare_losses("amos", output_dir=str(tmp_path / "bad"), augmentation="elastic", **kw)
    assert not (tmp_path / "bad").exists()
