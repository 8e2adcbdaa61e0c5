from __future__ import annotations

import csv

import matplotlib
import numpy as np
import pytest
from scipy.stats import wilcoxon

from monai_cwcd.evaluation.report import compute_claims, plot_contour_settings, results_markdown, write_report

matplotlib.use("Agg")


def _fake_rows(rng):
    """Per-case rows of 3 configs x 2 seeds x 6 cases x 3 structures with known structure."""
    rows = []
    for c, shift in (("CE", -0.10), ("Dice+CE", -0.02), ("CWCD", 0.0)):
        for s in (0, 1):
            for k in range(6):
                for t, base in (("big", 0.9), ("mid", 0.7), ("small", 0.4)):
                    gain = {"big": 0.0, "mid": 0.5, "small": 1.0}[t]  # CE loses more on small structures
                    d = base + shift * gain * 2 + 0.01 * rng.standard_normal()
                    rows.append([c, s, f"case{k}", t, float(np.clip(d, 0, 1)), 3.0 - d, 1.0 - d / 2, 100.0])
    return rows


def _settings():
    cfgs = [{"name": n, "loss": n, "network": "unet", "kernel_size": 3, "iterations": 1} for n in ("CE", "Dice+CE", "CWCD")]
    return {"configs": cfgs, "seeds": [0, 1], "quick": False}


def test_report_tables_stats_and_claims(tmp_path):
    rows = _fake_rows(np.random.default_rng(0))
    runs = [{"config": c, "seed": s, "final_loss": 0.1, "seconds": 2.0} for c in ("CE", "Dice+CE", "CWCD") for s in (0, 1)]
    doc = write_report(tmp_path, rows, runs, _settings(), {"big": 0.2, "mid": 0.02, "small": 0.002})
    res = {r["config"]: r for r in csv.DictReader(open(tmp_path / "results.csv"))}
    # the seed score is the mean over cases and structures; mean +- sample std over the 2 seeds
    ce = np.array([r[4] for r in rows if r[0] == "CE"]).reshape(2, -1).mean(1)
    assert float(res["CE"]["dsc_mean"]) == pytest.approx(ce.mean(), rel=1e-5)
    assert float(res["CE"]["dsc_std"]) == pytest.approx(ce.std(ddof=1), rel=1e-4, abs=1e-6)
    # Wilcoxon over per-case-per-structure DSC pairs averaged over seeds
    x = np.array([r[4] for r in rows if r[0] == "CE"]).reshape(2, -1).mean(0)
    y = np.array([r[4] for r in rows if r[0] == "CWCD"]).reshape(2, -1).mean(0)
    assert float(res["CE"]["wilcoxon_p"]) == pytest.approx(wilcoxon(x, y).pvalue, rel=1e-4)
    assert int(res["CE"]["n_pairs"]) == 18
    # the Markdown is rendered from the CSV on disk: change the CSV, the table follows
    md = (tmp_path / "results.md").read_text()
    assert md == results_markdown(tmp_path) and f"{float(res['CE']['dsc_mean']):.3f}" in md
    text = (tmp_path / "results.csv").read_text().replace(res["CE"]["dsc_mean"], "0.123456", 1)
    (tmp_path / "results.csv").write_text(text)
    assert "| CE | unet | – | 0.123 ±" in results_markdown(tmp_path)
    claims = {c["claim"]: c for c in doc["claims"]}
    assert claims["CWCD mean DSC > CE"]["verdict"] == "yes" and claims["CWCD mean DSC > CE"]["significant"]
    fig8 = next(c for c in doc["claims"] if c["source"] == "journal Fig. 8")
    assert fig8["verdict"] == "yes"  # gains grow as the volume shrinks in the fake data
    assert claims["CWCD mean DSC > GDL"]["verdict"] == "n/a"
    for png in ("dsc_gain_vs_volume.png", "per_class_dsc.png"):
        img = matplotlib.pyplot.imread(tmp_path / png)
        assert (tmp_path / png).stat().st_size > 10_000 and img.std() > 0


def test_contour_settings_figure(tmp_path):
    path = plot_contour_settings(tmp_path / "c.png")
    img = matplotlib.pyplot.imread(path)
    assert img.shape[1] > 400 and img.std() > 0
