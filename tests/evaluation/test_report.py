from __future__ import annotations

import csv
import json

import matplotlib
import numpy as np
import pytest
from scipy.stats import wilcoxon

from monai_cwcd.evaluation.report import (
    comparison_markdown,
    paired_wilcoxon,
    plot_contour_settings,
    results_markdown,
    write_report,
    write_results_doc,
)

matplotlib.use("Agg")
CONFIGS = ("CE", "GDL", "Dice+CE", "CWCD", "Dice+CE [segresnet]", "CWCD [segresnet]")
STRUCTS = (("big", 0.9), ("mid", 0.7), ("small", 0.4))


def _fake_rows(rng):
    """Per-case rows of the configs x 2 seeds x 6 cases x 3 structures with known structure: CE loses
    more on small structures; GDL collapses (only "small" learned); the "small" structure of case 0
    is missed by CE (DSC 0, distance = a huge 'diagonal' that must not enter the HD95 mean)."""
    rows = []
    for c in CONFIGS:
        for s in (0, 1):
            for k in range(6):
                for t, base in STRUCTS:
                    gain = {"big": 0.0, "mid": 0.5, "small": 1.0}[t]
                    shift = {"CE": -0.10, "Dice+CE": -0.02, "Dice+CE [segresnet]": -0.05}.get(c, 0.0)
                    d = float(np.clip(base + shift * gain * 2 + 0.01 * rng.standard_normal() + 0.02 * k, 0, 1))
                    if c == "GDL":
                        d = 0.5 if t == "small" else 0.0
                    hd = 3.0 - d
                    if c == "CE" and k == 0 and t == "small":
                        d, hd = 0.0, 999.0
                    pred = 0.0 if d == 0 else 100.0
                    rows.append(["matched", c, s, f"case{k}", t, d, hd, hd / 2, 100.0, pred])
    return rows


def _settings():
    cfgs = [{"name": n, "loss": n.split(" [")[0], "network": "segresnet" if "[" in n else "unet", "kernel_size": 3,
             "iterations": 1, "loss_settings": {"x": {"include_background": False}}, "parameters": 10} for n in CONFIGS]
    # the settings compare_losses records (the standalone results.md shows them)
    return {"configs": cfgs, "seeds": [0, 1], "quick": False, "learning_rate": 2e-3, "epochs": 40, "collapse_dsc": 0.3,
            "networks": {"unet": {}, "segresnet": {}}, "selection": {"chosen": {}}, "dataset": "amos", "synthetic": True,
            "source": "synthetic", "protocol": "fixed split", "num_train": 6, "num_test": 6, "spatial_size": [8, 8, 8],
            "num_classes": 4, "include_background": False, "batch_size": 2, "compute_seconds": 24.0, "device": "cpu",
            "torch_threads": 1, "part_seconds": {"selection": 0.0, "matched": 24.0, "selected": 0.0}, "load_seconds": 0.0}


def test_report_statistics_detection_collapse_and_networks(tmp_path):
    rows = _fake_rows(np.random.default_rng(0))
    runs = [{"config": c, "seed": s, "final_loss": 0.1, "seconds": 2.0} for c in CONFIGS for s in (0, 1)]
    doc = write_report(tmp_path, rows, runs, _settings(), {"big": 0.2, "mid": 0.02, "small": 0.002})
    res = {r["config"]: r for r in csv.DictReader(open(tmp_path / "results.csv"))}
    arr = {c: np.array([r[5] for r in rows if r[1] == c]).reshape(2, 6, 3) for c in CONFIGS}  # seed, case, structure
    # the seed score is the mean over cases and structures; mean +- sample std over the 2 seeds
    ce = arr["CE"].mean((1, 2))
    assert float(res["CE"]["dsc_mean"]) == pytest.approx(ce.mean(), rel=1e-5)
    assert float(res["CE"]["dsc_std"]) == pytest.approx(ce.std(ddof=1), rel=1e-4, abs=1e-6)
    # paired Wilcoxon over independent units = cases (each averaged over structures and seeds)
    x, y = arr["CE"].mean((0, 2)), arr["CWCD"].mean((0, 2))
    assert float(res["CE"]["wilcoxon_p"]) == pytest.approx(wilcoxon(x, y).pvalue, rel=1e-4)
    assert int(res["CE"]["n_units"]) == 6 and res["CE"]["reference"] == "CWCD"
    assert res["Dice+CE [segresnet]"]["reference"] == "CWCD [segresnet]"
    # detection rate apart from distances: CE missed 2 of 36 present structures; HD95 over detected only
    assert float(res["CE"]["detection_rate"]) == pytest.approx(34 / 36)
    hd = np.array([r[6] for r in rows if r[1] == "CE"]).reshape(2, 6, 3)
    det = arr["CE"] > 0
    expected = np.mean([hd[s][det[s]].mean() for s in (0, 1)])
    assert float(res["CE"]["hd95_detected_mean"]) == pytest.approx(expected, rel=1e-5) and expected < 5
    # the collapsed GDL row is flagged, shown, and left out of the Fig. 8 gain averages
    assert res["GDL"]["collapsed"] == "yes" and res["CE"]["collapsed"] == "no" and res["CWCD"]["collapsed"] == "no"
    assert json.loads(res["CE"]["loss_settings"]) == {"x": {"include_background": False}}
    claims = {c["claim"]: c for c in doc["claims"]}
    fig8 = next(c for c in doc["claims"] if c["source"] == "journal Fig. 8")
    assert "over 2 baselines" in fig8["evidence"] and "collapsed rows left out: GDL" in fig8["evidence"]
    assert "; against each baseline alone: CE -" in fig8["evidence"] and ", Dice+CE " in fig8["evidence"]  # each one's own rho
    assert fig8["verdict"] == "yes"
    assert "GDL collapsed" in claims["CWCD mean DSC > GDL"]["evidence"]
    # 6 cases, all in CWCD's favour: the smallest two-sided exact p, 2 / 2^6
    assert claims["CWCD mean DSC > CE"]["verdict"] == "yes" and claims["CWCD mean DSC > CE"]["significant"] is True
    assert float(res["CE"]["wilcoxon_p"]) == pytest.approx(2 / 64)
    assert claims["CWCD mean DSC > Dice+CE (class-weighted)"]["verdict"] == "n/a"
    # model-independence table: per network CWCD vs Dice+CE, paired over cases
    nets = list(csv.DictReader(open(tmp_path / "networks.csv")))
    assert [n["network"] for n in nets] == ["unet", "segresnet"]
    seg = nets[1]
    assert float(seg["delta_dsc"]) == pytest.approx(float(seg["dsc_cwcd"]) - float(seg["dsc_dice_ce"]), rel=1e-5)
    x, y = arr["CWCD [segresnet]"].mean((0, 2)), arr["Dice+CE [segresnet]"].mean((0, 2))
    assert float(seg["wilcoxon_p"]) == pytest.approx(wilcoxon(x, y).pvalue, rel=1e-4)
    mi = claims["CWCD improves the mean DSC over networks (model independence)"]
    assert mi["verdict"] == "yes" and "over 2 networks (2 improved)" in mi["evidence"]
    every = claims["CWCD improves DSC on every network (all nine of Table V improved)"]
    assert every["verdict"] == "yes" and every["reversed"] is False and "2 of 2 networks improved" in every["evidence"]
    # the Markdown is rendered from the CSV on disk: change the CSV, the table follows
    md = (tmp_path / "results.md").read_text()
    assert md == comparison_markdown(tmp_path) and results_markdown(tmp_path) in md and "Mean ΔDSC over 2 networks" in md
    text = (tmp_path / "results.csv").read_text().replace(res["CE"]["dsc_mean"], "0.123456", 1)
    (tmp_path / "results.csv").write_text(text)
    assert "| CE | unet | – | 10 | 0.0020 | 40 | 0.123 ±" in results_markdown(tmp_path)
    for png in ("dsc_gain_vs_volume.png", "per_class_dsc.png"):
        img = matplotlib.pyplot.imread(tmp_path / png)
        assert (tmp_path / png).stat().st_size > 10_000 and img.std() > 0


def test_seconds_per_run_are_those_of_each_budgets_runs(tmp_path):
    """A row whose selected budget has its own (slower) runs shows each budget's own s/run; a run
    scored at both budgets counts for both."""
    rows = _fake_rows(np.random.default_rng(0))
    rows += [["selected", *r[1:]] for r in rows]
    runs = []
    for c in CONFIGS:
        for s in (0, 1):
            if c == "CE":  # selected at another learning rate: its own runs
                runs += [{"config": c, "seed": s, "final_loss": 0.1, "seconds": 2.0, "budgets": ["matched"]},
                         {"config": c, "seed": s, "final_loss": 0.1, "seconds": 7.0 + s, "budgets": ["selected"]}]
            else:
                runs.append({"config": c, "seed": s, "final_loss": 0.1, "seconds": 3.0, "budgets": ["matched", "selected"]})
    settings = _settings()
    settings["selection"] = {"chosen": {c: {"learning_rate": 5e-3 if c == "CE" else 2e-3, "epochs": 40} for c in CONFIGS}}
    write_report(tmp_path, rows, runs, settings, {"big": 0.2, "mid": 0.02, "small": 0.002})
    res = {(r["budget"], r["config"]): float(r["seconds_per_run"]) for r in csv.DictReader(open(tmp_path / "results.csv"))}
    assert res[("matched", "CE")] == 2.0 and res[("selected", "CE")] == 7.5
    assert res[("matched", "CWCD")] == res[("selected", "CWCD")] == 3.0


def test_pdanet_claim_is_paired_against_the_unet_row(tmp_path):
    """"PDANet + CWCD > U-Net + CWCD" compares two rows that are not each other's reference: the
    report pairs them by case itself (Wilcoxon over the cases, each averaged over structures and seeds)."""
    rng = np.random.default_rng(1)
    configs = ("Dice+CE", "CWCD", "Dice+CE [pdanet]", "CWCD [pdanet]")
    rows = []
    for c in configs:
        for seed in (0, 1):
            for k in range(7):
                for t, base in STRUCTS:
                    d = float(np.clip(base + (0.05 if c == "CWCD [pdanet]" else 0.0) + 0.02 * rng.standard_normal(), 0, 1))
                    rows.append(["matched", c, seed, f"case{k}", t, d, 2.0, 1.0, 100.0, 100.0])
    settings = dict(_settings(), networks={"unet": {}, "pdanet": {}})
    settings["configs"] = [{"name": n, "loss": n.split(" [")[0], "network": "pdanet" if "[" in n else "unet", "kernel_size": 3,
                            "iterations": 1, "loss_settings": {}, "parameters": 10} for n in configs]
    runs = [{"config": c, "seed": s, "final_loss": 0.1, "seconds": 2.0} for c in configs for s in (0, 1)]
    doc = write_report(tmp_path, rows, runs, settings, {"big": 0.2, "mid": 0.02, "small": 0.002})
    claim = next(c for c in doc["claims"] if c["claim"] == "PDANet + CWCD mean DSC > U-Net + CWCD")
    arr = {c: np.array([r[5] for r in rows if r[1] == c]).reshape(2, 7, 3) for c in configs}
    p = wilcoxon(arr["CWCD [pdanet]"].mean((0, 2)), arr["CWCD"].mean((0, 2))).pvalue
    assert claim["verdict"] == "yes" and claim["significant"] is True
    assert f"Wilcoxon p = {p:.3g} over 7 cases" in claim["evidence"]


def _rows(configs, dice, cases=7, structs=STRUCTS, label=lambda k, t: 100.0, seeds=(0, 1)):
    """Per-case rows with ``dice(config, seed, case, structure) -> (dsc, predicted voxels)``."""
    rows = []
    for c in configs:
        for s in seeds:
            for k in range(cases):
                for t, _ in structs:
                    d, pred = dice(c, s, k, t)
                    rows.append(["matched", c, s, f"case{k}", t, d, 2.0, 1.0, label(k, t), pred])
    return rows


def _write(tmp_path, configs, rows, **extra):
    nets = list(dict.fromkeys(n.split("[")[1].rstrip("]") if "[" in n else "unet" for n in configs))
    settings = dict(_settings(), networks={n: {} for n in nets}, **extra)
    settings["configs"] = [{"name": n, "loss": n.split(" [")[0], "network": n.split("[")[1].rstrip("]") if "[" in n else "unet",
                            "kernel_size": 3, "iterations": 1, "loss_settings": {}, "parameters": 10} for n in configs]
    runs = [{"config": c, "seed": s, "final_loss": 0.1, "seconds": 2.0} for c in configs for s in (0, 1)]
    return write_report(tmp_path, rows, runs, settings, {"big": 0.2, "mid": 0.02, "small": 0.002})


def test_hallucinated_structures_score_zero_and_the_present_only_dsc_sets_them_apart(tmp_path):
    """A structure absent from a test reference scores DSC 0 when a row predicts it and is skipped
    when it does not: the main DSC then favours the row that hallucinates less, and the DSC over
    present structures (with its own paired test) and the hallucinated count show where a lead comes from."""
    configs = ("Dice+CE", "CWCD")
    absent = {(k, "small") for k in range(6)}  # 6 of the 7 cases

    def dice(c, s, k, t):
        if (k, t) in absent:  # Dice+CE predicts the absent structure (DSC 0), CWCD does not (NaN: skipped)
            return (0.0, 50.0) if c == "Dice+CE" else (float("nan"), 0.0)
        return 0.6 + 0.03 * k + 0.01 * s, 100.0

    rows = _rows(configs, dice, label=lambda k, t: 0.0 if (k, t) in absent else 100.0)
    doc = _write(tmp_path, configs, rows)
    res = {r["config"]: r for r in csv.DictReader(open(tmp_path / "results.csv"))}
    base, cw = res["Dice+CE"], res["CWCD"]
    assert float(base["dsc_mean"]) < float(cw["dsc_mean"])  # the hallucinated zeros pull Dice+CE down
    assert float(base["dsc_present_mean"]) == pytest.approx(float(cw["dsc_present_mean"]))  # identical where present
    assert (base["false_positives"], base["absent_structures"], cw["false_positives"]) == ("12", "12", "0")
    assert float(base["wilcoxon_p"]) < 0.05 and float(base["wilcoxon_p_present"]) == 1.0
    claim = next(c for c in doc["claims"] if c["claim"] == "CWCD mean DSC > Dice+CE")
    assert claim["verdict"] == "yes" and claim["significant"] is True
    assert "over present structures only" in claim["evidence"] and "(p = 1)" in claim["evidence"]
    assert "hallucinated structures 0 vs 12 of 12 absent" in claim["evidence"]
    assert "| 12/12 |" in results_markdown(tmp_path)


def test_network_mean_leaves_out_collapsed_rows_and_a_significant_loss_is_reversed(tmp_path):
    """The mean difference over networks leaves out a network whose Dice+CE or CWCD row collapsed;
    a network where CWCD is worse on every case makes "every network improves" significantly reversed."""
    configs = ("Dice+CE", "CWCD", "Dice+CE [segresnet]", "CWCD [segresnet]", "Dice+CE [attentionunet]", "CWCD [attentionunet]")

    def dice(c, s, k, t):
        if c == "Dice+CE [attentionunet]":  # collapsed: only the small structure, weakly
            return (0.2 if t == "small" else 0.0), 100.0
        shift = {"CWCD": 0.05, "CWCD [segresnet]": -0.05, "CWCD [attentionunet]": 0.02}.get(c, 0.0)
        return 0.6 + shift + 0.02 * k + 0.001 * s, 100.0

    doc = _write(tmp_path, configs, _rows(configs, dice))
    nets = {n["network"]: n for n in csv.DictReader(open(tmp_path / "networks.csv"))}
    assert nets["attentionunet"]["collapsed"] == "Dice+CE" and nets["unet"]["collapsed"] == ""
    claims = {c["claim"]: c for c in doc["claims"]}
    mean = claims["CWCD improves the mean DSC over networks (model independence)"]
    # (0.05 - 0.05) / 2 = 0: the collapsed network's +0.4 or so is not in the mean
    assert "over 2 networks (1 improved), Wilcoxon" in mean["evidence"]
    assert mean["evidence"].endswith("; left out, a row collapsed: attentionunet (Dice+CE)")
    every = claims["CWCD improves DSC on every network (all nine of Table V improved)"]
    assert every["verdict"] == "no" and every["reversed"] is True and every["significant"] is False
    assert "against: segresnet (-0.050, p = 0.016)" in every["evidence"] and "favour: unet (+0.050" in every["evidence"]
    md = (tmp_path / "results.md").read_text()
    assert "Mean ΔDSC over 2 networks" in md and "left out because a row collapsed: attentionunet." in md
    assert "| matched | no | reversed |" in md
    assert "significantly reversed" in md  # the summary line under the claims


def test_two_collapsed_rows_are_not_evaluable_and_paired_claims_get_their_test(tmp_path):
    """Two collapsed rows compare nothing (n/a, not 'did not hold'); CWCE vs CE and SDL vs Dice,
    rows that are not each other's reference, are paired by case; the Fig. 8 analogue lists each
    baseline's own correlation; the selected-budget bullet says how many rows chose the longest training."""
    configs = ("CE", "CWCE", "Dice", "SDL", "GDL", "CWCD")

    def dice(c, s, k, t):
        if c in ("GDL", "CWCD") and k < 7:
            return 0.0, 0.0
        gain = {"big": 0.0, "mid": 0.02, "small": 0.06}[t]
        return 0.5 + (gain if c in ("CWCE", "SDL") else 0.0) + 0.03 * k - 0.01 * s, 100.0

    sel = {"enabled": True, "lr_grid": [2e-3], "epoch_grid": [40, 80], "val_cases": 3, "seed": 0,
           "chosen": {c: {"learning_rate": 2e-3, "epochs": 80 if c != "CE" else 40} for c in configs}}
    doc = _write(tmp_path, configs, _rows(configs, dice), selection=sel)
    claims = {c["claim"]: c for c in doc["claims"]}
    gdl = claims["CWCD mean DSC > GDL"]
    assert gdl["verdict"] == "n/a" and "both collapsed: not evaluable" in gdl["evidence"] and gdl["significant"] is None
    cwce = claims["CWCE mean DSC > CE (contour weighting helps CE)"]
    assert cwce["verdict"] == "yes" and cwce["significant"] is True and "Wilcoxon p = 0.0156 over 7 cases" in cwce["evidence"]
    assert claims["SDL mean DSC > Dice (contour separation helps Dice)"]["significant"] is True
    md = (tmp_path / "results.md").read_text()
    assert "Not evaluable: " in md and "5 of 6 rows chose the longest training on offer (80 epochs)" in md
    # the page (write_results_doc) renders the same cells
    page = write_results_doc({"part": tmp_path}, tmp_path / "page.md", tmp_path / "figs").read_text()
    assert "| part | CWCD mean DSC > GDL | journal Table IV | matched | n/a | – |" in page and "*reversed*" in page


def test_paired_wilcoxon_units():
    p, n = paired_wilcoxon([0.1, 0.2, np.nan, 0.4], [0.2, 0.3, 0.5, 0.6])
    assert n == 3 and p == pytest.approx(wilcoxon([0.1, 0.2, 0.4], [0.2, 0.3, 0.6]).pvalue)
    assert paired_wilcoxon([0.5, 0.5], [0.5, 0.5]) == (1.0, 2)
    p, n = paired_wilcoxon([np.nan], [0.1])
    assert n == 0 and np.isnan(p)


def test_contour_settings_figure(tmp_path):
    path = plot_contour_settings(tmp_path / "c.png")
    img = matplotlib.pyplot.imread(path)
    assert img.shape[1] > 400 and img.std() > 0
