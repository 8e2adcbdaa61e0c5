"""Tables, statistics, plots and the claims verdicts of the loss comparison.

Everything here is computed from the per-case rows of :func:`~monai_cwcd.evaluation.compare_losses`;
the Markdown tables are rendered from the CSV files on disk (never edited by hand).

Statistics (per budget, "matched" and "selected"):

- score of a row: per seed, the mean DSC over test cases and structures (NaN = structure absent
  and not predicted, skipped; a structure absent from the reference but predicted scores 0); tables
  give mean and sample std (ddof=1) over seeds;
- score over present structures: the same mean over the (case, structure) pairs whose reference is
  non-empty only, so a hallucinated structure does not count; with its own paired test. The number
  of hallucinated structures (false positives) is given beside it;
- detection rate: the fraction of (seed, case, structure) with a non-empty label whose prediction
  overlaps it (DSC > 0); HD95 and ASSD are averaged over those detected structures only (a missed
  structure has no surface distance; it counts in the detection rate, not as an "image diagonal");
- paired test: two-sided Wilcoxon signed-rank (``scipy.stats.wilcoxon``) over independent units =
  test cases, each case's value being its DSC averaged over structures and seeds; the number of
  units is reported with each p-value (with fewer than 6 units no two-sided p can reach 0.05);
- collapsed row: mean DSC < ``collapse_dsc`` with at least half of the structures at mean DSC
  < 0.05; collapsed rows are shown and flagged but left out of the "gain over baselines" averages
  and of the mean difference over networks (a network with a collapsed row is left out);
- claims: "agrees" is the measured direction; "significant" p < 0.05 in that direction, "reversed"
  p < 0.05 in the other; a comparison of two collapsed rows is "n/a" (not evaluable). No correction
  for multiple comparisons is applied: each p-value is that of its own claim.
"""

from __future__ import annotations

import csv
import json
import math
import os
import shutil
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from monai_cwcd.evaluation._io import save_figure, write_csv, write_json, write_text

__all__ = [
    "REFERENCE",
    "write_report",
    "results_markdown",
    "comparison_markdown",
    "compute_claims",
    "plot_dsc_gain_vs_volume",
    "plot_per_class_dsc",
    "plot_contour_settings",
    "write_results_doc",
]

REFERENCE = "CWCD"
PER_CASE_HEADER = ["budget", "config", "seed", "case", "structure", "dice", "hd95", "assd", "label_voxels", "pred_voxels"]
RESULTS_HEADER = [
    "budget", "config", "network", "loss", "kernel_size", "iterations", "contour", "parameters", "learning_rate", "epochs", "seeds",
    "dsc_mean", "dsc_std", "dsc_present_mean", "dsc_present_std", "detection_rate", "false_positives", "absent_structures",
    "hd95_detected_mean", "hd95_detected_std", "assd_detected_mean", "assd_detected_std", "reference", "delta_dsc", "wilcoxon_p",
    "n_units", "wilcoxon_p_present", "collapsed", "seconds_per_run", "loss_settings",
]
STRUCT_HEADER = ["budget", "config", "structure", "volume_fraction", "dsc_mean", "dsc_std", "detection_rate", "hd95_detected",
                 "assd_detected", "reference", "wilcoxon_p", "n_units"]
NETWORK_HEADER = [
    "budget", "network", "parameters", "dsc_dice_ce", "dsc_cwcd", "delta_dsc", "wilcoxon_p", "n_units",
    "hd95_dice_ce", "hd95_cwcd", "delta_hd95", "assd_dice_ce", "assd_cwcd", "delta_assd", "detection_dice_ce", "detection_cwcd",
    "dsc_present_dice_ce", "dsc_present_cwcd", "wilcoxon_p_present", "false_positives_dice_ce", "false_positives_cwcd", "collapsed",
]
SELECTION_HEADER = ["config", "learning_rate", "epochs", "val_dsc", "val_cases"]


def _mean_std(values: Sequence[float]) -> tuple[float, float]:
    v = np.asarray(values, dtype=float)
    v = v[~np.isnan(v)]
    if v.size == 0:
        return float("nan"), float("nan")
    return float(v.mean()), float(v.std(ddof=1)) if v.size > 1 else 0.0


def _nanmean(a: np.ndarray, axis: Any = None) -> Any:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN slices -> NaN, intended
        return np.nanmean(a, axis=axis)


def paired_wilcoxon(x: Sequence[float], y: Sequence[float]) -> tuple[float, int]:
    """Two-sided paired Wilcoxon signed-rank p over the units where both values are finite, and
    the number of those units (p = 1.0 when all differences are 0, NaN with no unit)."""
    from scipy.stats import wilcoxon

    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    ok = ~(np.isnan(x) | np.isnan(y))
    x, y = x[ok], y[ok]
    if x.size == 0:
        return float("nan"), 0
    if np.allclose(x, y):
        return 1.0, int(x.size)
    return float(wilcoxon(x, y).pvalue), int(x.size)


def reference_of(config: str, network: str) -> str:
    """The CWCD row a row is compared with: ``CWCD`` for U-Net rows, ``CWCD [net]`` otherwise."""
    return REFERENCE if network == "unet" else f"{REFERENCE} [{network}]"


class _Values:
    """value[budget][config][metric] as arrays (seed, case, structure)."""

    def __init__(self, rows: Sequence[Sequence[Any]], seeds: Sequence[int]) -> None:
        self.structures = list(dict.fromkeys(r[4] for r in rows))
        self.cases = list(dict.fromkeys(r[3] for r in rows))
        self.seeds = list(seeds)
        si = {s: i for i, s in enumerate(self.seeds)}
        ci = {c: i for i, c in enumerate(self.cases)}
        ti = {t: i for i, t in enumerate(self.structures)}
        self.val: dict[tuple[str, str], dict[str, np.ndarray]] = {}
        shape = (len(self.seeds), len(self.cases), len(self.structures))
        for r in rows:
            key = (r[0], r[1])
            if key not in self.val:
                self.val[key] = {m: np.full(shape, np.nan) for m in ("dice", "hd95", "assd", "label_voxels", "pred_voxels")}
            for j, m in enumerate(("dice", "hd95", "assd", "label_voxels", "pred_voxels")):
                self.val[key][m][si[int(r[2])], ci[r[3]], ti[r[4]]] = float(r[5 + j])

    def get(self, budget: str, config: str) -> dict[str, np.ndarray] | None:
        return self.val.get((budget, config))


def _row_stats(v: Mapping[str, np.ndarray]) -> dict[str, Any]:
    present = v["label_voxels"] > 0
    detected = present & (v["dice"] > 0)
    seeds = v["dice"].shape[0]
    out: dict[str, Any] = {}
    out["dsc_seed"] = [float(_nanmean(v["dice"][s])) for s in range(seeds)]
    out["dsc_mean"], out["dsc_std"] = _mean_std(out["dsc_seed"])
    dice_present = np.where(present, v["dice"], np.nan)  # a structure absent from the reference does not count
    out["dsc_present_mean"], out["dsc_present_std"] = _mean_std([float(_nanmean(dice_present[s])) for s in range(seeds)])
    out["detection_rate"] = float(detected.sum() / present.sum()) if present.any() else float("nan")
    absent = (v["label_voxels"] == 0) & ~np.isnan(v["label_voxels"])
    out["absent_structures"] = int(absent.sum())
    out["false_positives"] = int((absent & (v["pred_voxels"] > 0)).sum())
    for m in ("hd95", "assd"):
        per_seed = [float(_nanmean(np.where(detected[s], v[m][s], np.nan))) for s in range(seeds)]
        out[f"{m}_detected_mean"], out[f"{m}_detected_std"] = _mean_std(per_seed)
    out["per_case"] = _nanmean(_nanmean(v["dice"], 2), 0) if v["dice"].size else np.array([])
    out["per_case_present"] = _nanmean(_nanmean(dice_present, 2), 0) if v["dice"].size else np.array([])
    per_struct = _nanmean(v["dice"], (0, 1))
    finite = per_struct[~np.isnan(per_struct)]
    out["low_structures"] = float((finite < 0.05).mean()) if finite.size else float("nan")
    return out


def write_report(
    output_dir: Path,
    per_case_rows: Sequence[Sequence[Any]],
    runs: Sequence[Mapping[str, Any]],
    settings: Mapping[str, Any],
    train_voxels: Mapping[str, float],
    selection_rows: Sequence[Sequence[Any]] = (),
) -> dict[str, Any]:
    """Write ``per_case.csv``, ``results.csv``, ``per_structure.csv``, ``networks.csv``,
    ``selection.csv``, ``configs.json``, ``results.md``, the PNG plots and ``comparison.json``
    into ``output_dir``; return the JSON content."""
    output_dir = Path(output_dir)
    write_csv(output_dir / "per_case.csv", PER_CASE_HEADER, per_case_rows)
    write_csv(output_dir / "selection.csv", SELECTION_HEADER, selection_rows)
    write_json(output_dir / "configs.json", settings["configs"])
    configs = [c["name"] for c in settings["configs"]]
    meta = {c["name"]: c for c in settings["configs"]}
    chosen = settings.get("selection", {}).get("chosen", {})
    budgets = [b for b in ("matched", "selected") if any(r[0] == b for r in per_case_rows)]
    values = _Values(per_case_rows, settings["seeds"])
    # s/run of a budget: the runs that produced its scores (a run scored at both budgets counts for both)
    seconds = {(b, c): float(np.mean([r["seconds"] for r in runs if r["config"] == c and b in r.get("budgets", (b,))]
                                     or [float("nan")])) for b in budgets for c in configs}
    collapse = float(settings.get("collapse_dsc", 0.3))
    rows, struct_rows, net_rows = [], [], []
    stats: dict[tuple[str, str], dict[str, Any]] = {}
    for b in budgets:
        for c in configs:
            v = values.get(b, c)
            if v is not None:
                stats[(b, c)] = _row_stats(v)
        for c in configs:
            if (b, c) not in stats:
                continue
            st, m = stats[(b, c)], meta[c]
            ref = reference_of(c, m["network"])
            p_present = float("nan")
            if c != ref and (b, ref) in stats:
                p, n = paired_wilcoxon(st["per_case"], stats[(b, ref)]["per_case"])
                p_present = paired_wilcoxon(st["per_case_present"], stats[(b, ref)]["per_case_present"])[0]
                delta = st["dsc_mean"] - stats[(b, ref)]["dsc_mean"]
            else:
                p, n, delta = float("nan"), 0, float("nan") if c != ref else 0.0
            collapsed = st["collapsed"] = bool(st["dsc_mean"] < collapse and st["low_structures"] >= 0.5)
            contour = m["loss"] in ("CWCE", "SDL", "CWCD")
            lr, ep = (settings["learning_rate"], settings["epochs"]) if b == "matched" else (
                chosen.get(c, {}).get("learning_rate"), chosen.get(c, {}).get("epochs"))
            rows.append([
                b, c, m["network"], m["loss"], m["kernel_size"] if contour else "", m["iterations"] if contour else "",
                m.get("contour") or f"({m['kernel_size']}, {m['iterations']})" if contour else "",
                m.get("parameters") or "", lr, ep, len(settings["seeds"]), st["dsc_mean"], st["dsc_std"], st["dsc_present_mean"],
                st["dsc_present_std"], st["detection_rate"], st["false_positives"], st["absent_structures"], st["hd95_detected_mean"],
                st["hd95_detected_std"], st["assd_detected_mean"], st["assd_detected_std"], ref, delta, p, n, p_present,
                "yes" if collapsed else "no", seconds[(b, c)],
                json.dumps(m.get("loss_settings", {}), sort_keys=True),
            ])
            v = values.get(b, c)
            for ti, t in enumerate(values.structures):
                d = v["dice"][:, :, ti]
                sm, ss = _mean_std([float(_nanmean(d[s])) for s in range(d.shape[0])])
                present = v["label_voxels"][:, :, ti] > 0
                det = present & (d > 0)
                hd = float(_nanmean(np.where(det, v["hd95"][:, :, ti], np.nan))) if det.any() else float("nan")
                asd = float(_nanmean(np.where(det, v["assd"][:, :, ti], np.nan))) if det.any() else float("nan")
                # this structure's DSC per case (mean over seeds) against the reference row's, paired by case
                sp, sn = float("nan"), 0
                if c != ref and values.get(b, ref) is not None:
                    with warnings.catch_warnings():
                        warnings.simplefilter("ignore", RuntimeWarning)
                        sp, sn = paired_wilcoxon(np.nanmean(d, axis=0), np.nanmean(values.get(b, ref)["dice"][:, :, ti], axis=0))
                struct_rows.append([b, c, t, float(train_voxels.get(t, float("nan"))), sm, ss,
                                    float(det.sum() / present.sum()) if present.any() else float("nan"), hd, asd, ref, sp, sn])
        for net in settings.get("networks", {}):
            base, cw = ("Dice+CE", REFERENCE) if net == "unet" else (f"Dice+CE [{net}]", f"{REFERENCE} [{net}]")
            if (b, base) not in stats or (b, cw) not in stats:
                continue
            s0, s1 = stats[(b, base)], stats[(b, cw)]
            p, n = paired_wilcoxon(s1["per_case"], s0["per_case"])
            p_present = paired_wilcoxon(s1["per_case_present"], s0["per_case_present"])[0]
            gone = [name for name, st in (("Dice+CE", s0), ("CWCD", s1)) if st["collapsed"]]
            net_rows.append([
                b, net, meta[cw].get("parameters") or "", s0["dsc_mean"], s1["dsc_mean"], s1["dsc_mean"] - s0["dsc_mean"], p, n,
                s0["hd95_detected_mean"], s1["hd95_detected_mean"], s1["hd95_detected_mean"] - s0["hd95_detected_mean"],
                s0["assd_detected_mean"], s1["assd_detected_mean"], s1["assd_detected_mean"] - s0["assd_detected_mean"],
                s0["detection_rate"], s1["detection_rate"], s0["dsc_present_mean"], s1["dsc_present_mean"], p_present,
                s0["false_positives"], s1["false_positives"], " and ".join(gone),
            ])
    write_csv(output_dir / "results.csv", RESULTS_HEADER, rows)
    write_csv(output_dir / "per_structure.csv", STRUCT_HEADER, struct_rows)
    write_csv(output_dir / "networks.csv", NETWORK_HEADER, net_rows)
    results = _read_csv(output_dir / "results.csv")
    per_struct = _read_csv(output_dir / "per_structure.csv")
    networks = _read_csv(output_dir / "networks.csv")
    main = "selected" if "selected" in budgets else "matched"
    main_struct = [p for p in per_struct if p["budget"] == main]
    collapsed = {r["config"] for r in results if r["budget"] == main and r["collapsed"] == "yes"}
    plot_dsc_gain_vs_volume(main_struct, output_dir / "dsc_gain_vs_volume.png", exclude=collapsed)
    plot_per_class_dsc(main_struct, output_dir / "per_class_dsc.png", budget=main)
    claims = []
    for b in budgets:
        # claims between two rows that are not each other's reference, paired by case here
        pairs = {}
        for a, ref in ((f"{REFERENCE} [pdanet]", REFERENCE), ("CWCE", "CE"), ("SDL", "Dice")):
            if (b, a) in stats and (b, ref) in stats:
                pairs[(a, ref)] = (*paired_wilcoxon(stats[(b, a)]["per_case"], stats[(b, ref)]["per_case"]),
                                   paired_wilcoxon(stats[(b, a)]["per_case_present"], stats[(b, ref)]["per_case_present"])[0])
        claims += compute_claims([r for r in results if r["budget"] == b], [p for p in per_struct if p["budget"] == b],
                                 networks=[r for r in networks if r["budget"] == b], quick=bool(settings.get("quick")), budget=b,
                                 pairs=pairs)
    doc = {"settings": dict(settings), "runs": list(runs), "claims": claims}
    write_json(output_dir / "comparison.json", doc)
    write_text(output_dir / "results.md", comparison_markdown(output_dir))
    return doc


def comparison_markdown(output_dir: str | os.PathLike) -> str:
    """``results.md`` of one comparison: a title, the setup (data, networks, budgets, evaluation,
    statistics, compute), the tables of :func:`results_markdown`, the plots and the claims, from the
    files of ``output_dir`` (a part of docs/results.md is the same block under the part's title)."""
    output_dir = Path(output_dir)
    s = json.loads((output_dir / "comparison.json").read_text())["settings"]
    lines = ["# Loss comparison (generated)", "",
             "<!-- GENERATED by monai_cwcd.evaluation.compare_losses (monai-cwcd compare); do not edit. -->", ""]
    if s.get("quick"):
        lines += ["**Quick run (CI smoke test)**: the QUICK schedule of `monai_cwcd.evaluation.compare`; the numbers draw no "
                  "conclusions.", ""]
    return "\n".join(lines + _part_markdown(f"`{s['dataset']}`", output_dir, ".", figures=True))


def _read_csv(path: str | os.PathLike) -> list[dict[str, Any]]:
    """Rows of a CSV with numeric fields converted to float (empty -> NaN)."""
    out = []
    with open(path, newline="", encoding="utf-8") as f:
        for row in csv.DictReader(f):
            conv: dict[str, Any] = {}
            for k, v in row.items():
                try:
                    conv[k] = float(v) if v != "" else float("nan")
                except ValueError:
                    conv[k] = v
            out.append(conv)
    return out


def _fmt(v: Any, digits: int = 3) -> str:
    if isinstance(v, float):
        if math.isnan(v):
            return "–"
        return f"{v:.{digits}f}" if abs(v) >= 10 ** -digits or v == 0 else f"{v:.2g}"
    return str(v)


def _int(v: Any) -> str:
    return "–" if isinstance(v, float) and math.isnan(v) else str(int(v))


def results_markdown(output_dir: str | os.PathLike) -> str:
    """The result tables in Markdown, rendered from the CSV files of ``output_dir``."""
    output_dir = Path(output_dir)
    res = _read_csv(output_dir / "results.csv")
    per = _read_csv(output_dir / "per_structure.csv")
    nets = _read_csv(output_dir / "networks.csv")
    sel = _read_csv(output_dir / "selection.csv")
    lines: list[str] = []
    for b in dict.fromkeys(r["budget"] for r in res):
        title = "matched budget (the same learning rate and epochs for every row)" if b == "matched" else (
            "selected budget (each row's learning rate and epochs chosen on validation cases drawn from the training cases)")
        lines += [f"#### Loss comparison, {title}", "",
                  "| Configuration | Network | contour | params | lr | epochs | DSC mean ± std | DSC present | detected | "
                  "hallucinated | HD95 detected | ASSD detected | ΔDSC (row − ref) | p (cases) | p present | units | collapsed | s/run |",
                  "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
        for r in (r for r in res if r["budget"] == b):
            kit = str(r.get("contour") or "–") if not math.isnan(r["kernel_size"]) else "–"
            ref = "" if r["reference"] == REFERENCE else f" ({r['reference']})"
            lines.append(
                f"| {r['config']} | {r['network']} | {kit} | {_int(r['parameters'])} | {_fmt(r['learning_rate'], 4)} | {_int(r['epochs'])} | "
                f"{_fmt(r['dsc_mean'])} ± {_fmt(r['dsc_std'])} | {_fmt(r['dsc_present_mean'])} ± {_fmt(r['dsc_present_std'])} | "
                f"{_fmt(r['detection_rate'], 2)} | {_int(r['false_positives'])}/{_int(r['absent_structures'])} | "
                f"{_fmt(r['hd95_detected_mean'], 2)} ± {_fmt(r['hd95_detected_std'], 2)} | "
                f"{_fmt(r['assd_detected_mean'], 2)} ± {_fmt(r['assd_detected_std'], 2)} | {_fmt(r['delta_dsc'])}{ref} | "
                f"{_fmt(r['wilcoxon_p'])} | {_fmt(r['wilcoxon_p_present'])} | {int(r['n_units'])} | "
                f"{'**yes**' if r['collapsed'] == 'yes' else 'no'} | {_fmt(r['seconds_per_run'], 1)} |"
            )
        lines += ["", f"ref: `{REFERENCE}` (the (3, 1) contour) for the U-Net rows, `{REFERENCE} [net]` for a network's rows "
                  "(named after the ΔDSC when it is not the U-Net's); p: two-sided paired Wilcoxon of the row against its ref "
                  "over the test cases (each case's DSC averaged over structures and seeds); – for a ref itself. DSC: a "
                  "structure absent from a test reference scores 0 when it is predicted (hallucinated) and is skipped when it "
                  "is not; *DSC present* and *p present*: the same over the structures present in each reference only; "
                  "*hallucinated*: predicted absent structures / absent (seed, case, structure) triples."]
        rows_b = [n for n in nets if n["budget"] == b]
        if len(rows_b) > 1:  # a table of one network is not a model-independence table
            lines += ["", f"#### Model independence ({b} budget): Dice+CE vs CWCD per network", "",
                      "| Network | params | DSC Dice+CE | DSC CWCD | ΔDSC (CWCD − Dice+CE) | p (cases) | units | DSC present Dice+CE / "
                      "CWCD (p) | HD95 Dice+CE / CWCD | ASSD Dice+CE / CWCD | detected Dice+CE / CWCD | hallucinated Dice+CE / CWCD | "
                      "collapsed |", "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
            for n in rows_b:
                lines.append(
                    f"| {n['network']} | {_int(n['parameters'])} | {_fmt(n['dsc_dice_ce'])} | {_fmt(n['dsc_cwcd'])} | {_fmt(n['delta_dsc'])} | "
                    f"{_fmt(n['wilcoxon_p'])} | {int(n['n_units'])} | {_fmt(n['dsc_present_dice_ce'])} / {_fmt(n['dsc_present_cwcd'])} "
                    f"({_fmt(n['wilcoxon_p_present'])}) | {_fmt(n['hd95_dice_ce'], 2)} / {_fmt(n['hd95_cwcd'], 2)} | "
                    f"{_fmt(n['assd_dice_ce'], 2)} / {_fmt(n['assd_cwcd'], 2)} | {_fmt(n['detection_dice_ce'], 2)} / {_fmt(n['detection_cwcd'], 2)} | "
                    f"{_int(n['false_positives_dice_ce'])} / {_int(n['false_positives_cwcd'])} | {_collapsed_rows(n) or 'no'} |"
                )
            kept = [n for n in rows_b if not _collapsed_rows(n)]
            deltas = np.array([n["delta_dsc"] for n in kept], dtype=float)
            p, k = paired_wilcoxon(deltas, np.zeros_like(deltas))
            gone = [n["network"] for n in rows_b if _collapsed_rows(n)]
            lines += ["", f"Mean ΔDSC over {len(kept)} networks: {_fmt(float(_nanmean(deltas)) if kept else float('nan'))} "
                      f"({int((deltas > 0).sum())} of {len(kept)} improved; Wilcoxon over networks p = {_fmt(p)}, {k} units)"
                      + (f"; left out because a row collapsed: {', '.join(gone)}." if gone else ".")]
        per_b = [p for p in per if p["budget"] == b]
        structs = list(dict.fromkeys(p["structure"] for p in per_b))
        configs = list(dict.fromkeys(p["config"] for p in per_b))
        vol = {p["structure"]: p["volume_fraction"] for p in per_b}
        dsc = {(p["config"], p["structure"]): (p["dsc_mean"], p["dsc_std"]) for p in per_b}
        order = sorted(structs, key=lambda s: -vol[s] if not math.isnan(vol[s]) else 0)
        lines += ["", f"Per-structure DSC ({b} budget; mean ± std over seeds), structures by volume fraction:", "",
                  "| Configuration | " + " | ".join(order) + " |", "|---|" + "---|" * len(order),
                  "| volume fraction (%) | " + " | ".join(_fmt(100 * vol[s], 2) for s in order) + " |"]
        for c in configs:
            lines.append(f"| {c} | " + " | ".join(f"{_fmt(dsc[(c, s)][0], 2)}±{_fmt(dsc[(c, s)][1], 2)}" for s in order) + " |")
        cell = {(p["config"], p["structure"]): p for p in per_b}
        for key, title in (("hd95_detected", "HD95 (mm) over detected cases"), ("assd_detected", "ASSD (mm) over detected cases"),
                           ("wilcoxon_p", "Wilcoxon p of the structure's DSC against the row's ref (per case, "
                                          "averaged over seeds; units = cases; – for a ref itself)")):
            digits = 3 if key == "wilcoxon_p" else 2
            lines += ["", f"Per-structure {title} ({b} budget):", "",
                      "| Configuration | " + " | ".join(order) + " |", "|---|" + "---|" * len(order)]
            for c in configs:
                lines.append(f"| {c} | " + " | ".join(_fmt(cell[(c, s)].get(key, float("nan")), digits) for s in order) + " |")
        lines.append("")
    if sel:
        lines += ["#### Budget selection (validation DSC, first seed; the test cases are not used)", "",
                  "| Configuration | lr | epochs | validation DSC | validation cases |", "|---|---|---|---|---|"]
        lines += [f"| {s['config']} | {_fmt(s['learning_rate'], 4)} | {int(s['epochs'])} | {_fmt(s['val_dsc'])} | {int(s['val_cases'])} |" for s in sel]
        lines.append("")
    return "\n".join(lines)


def _baselines(per_struct: Sequence[Mapping[str, Any]], exclude: Sequence[str] = ()) -> list[str]:
    return [c for c in dict.fromkeys(p["config"] for p in per_struct)
            if not str(c).startswith(REFERENCE) and "[" not in str(c) and c not in exclude]


def _gains(per_struct: Sequence[Mapping[str, Any]], exclude: Sequence[str] = ()) -> tuple[list[str], np.ndarray, dict[str, np.ndarray]]:
    """Structures, their volume fractions and CWCD-minus-baseline DSC per structure per (non-collapsed) baseline."""
    structs = list(dict.fromkeys(p["structure"] for p in per_struct))
    dsc = {(p["config"], p["structure"]): p["dsc_mean"] for p in per_struct}
    vol = np.array([next(p["volume_fraction"] for p in per_struct if p["structure"] == s) for s in structs], dtype=float)
    gains = {b: np.array([dsc.get((REFERENCE, s), np.nan) - dsc[(b, s)] for s in structs]) for b in _baselines(per_struct, exclude)}
    return structs, vol, gains


def plot_dsc_gain_vs_volume(per_struct: Sequence[Mapping[str, Any]], path: str | os.PathLike, exclude: Sequence[str] = ()) -> Path:
    """Journal Fig. 8 analogue: DSC gain of CWCD over each (non-collapsed) baseline and their mean
    per structure against the structure's volume fraction (log scale)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    structs, vol, gains = _gains(per_struct, exclude)
    fig, ax = plt.subplots(figsize=(7.5, 4.5))
    x = np.where(vol > 0, vol, np.nan) * 100
    for b, g in gains.items():
        ax.scatter(x, 100 * g, s=12, alpha=0.5, label=f"vs {b}")
    if gains:
        mean_gain = 100 * _nanmean(np.stack(list(gains.values())), 0)
        ax.plot(x, mean_gain, "k*", ms=10, label="mean over baselines")
        for xi, yi, s in zip(x, mean_gain, structs):
            if not (np.isnan(xi) or np.isnan(yi)):
                ax.annotate(s, (xi, yi), fontsize=7, xytext=(3, 3), textcoords="offset points")
    ax.axhline(0, color="grey", lw=0.8)
    if any(np.any(np.isfinite(g) & np.isfinite(x)) for g in gains.values()):
        ax.set_xscale("log")
    else:
        has_ref = any(p["config"] == REFERENCE for p in per_struct)
        why = (f"no {REFERENCE} row" if not has_ref else "every baseline collapsed" if exclude and not gains
               else "no baseline row" if not gains else "no structure volumes")
        ax.text(0.5, 0.5, f"{why}: nothing to compare", ha="center", transform=ax.transAxes)
    ax.set_xlabel("structure volume fraction (%, log)")
    ax.set_ylabel("DSC gain of CWCD (percentage points)")
    note = f"\n{len(exclude)} collapsed row(s) left out (flagged in the results table)" if exclude else ""
    ax.set_title("DSC gain vs structure volume (journal Fig. 8 analogue)" + note, fontsize=9)
    if gains:
        ax.legend(fontsize=6, ncol=2)
    return save_figure(fig, path)


def plot_per_class_dsc(per_struct: Sequence[Mapping[str, Any]], path: str | os.PathLike, budget: str = "") -> Path:
    """Heat map of the mean DSC per configuration (rows) and structure (columns, by volume)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    structs = list(dict.fromkeys(p["structure"] for p in per_struct))
    vol = {p["structure"]: p["volume_fraction"] for p in per_struct}
    structs.sort(key=lambda s: -np.nan_to_num(vol[s]))
    configs = list(dict.fromkeys(p["config"] for p in per_struct))
    dsc = {(p["config"], p["structure"]): p["dsc_mean"] for p in per_struct}
    a = np.array([[dsc[(c, s)] for s in structs] for c in configs], dtype=float)
    fig, ax = plt.subplots(figsize=(2.0 + 0.55 * len(structs), 1.0 + 0.38 * len(configs)))
    im = ax.imshow(np.nan_to_num(a), vmin=0, vmax=1, cmap="viridis", aspect="auto")
    for i in range(a.shape[0]):
        for j in range(a.shape[1]):
            ax.text(j, i, "–" if np.isnan(a[i, j]) else f"{a[i, j]:.2f}", ha="center", va="center", fontsize=6,
                    color="white" if np.nan_to_num(a[i, j]) < 0.5 else "black")
    ax.set_xticks(range(len(structs)))
    ax.set_xticklabels(structs, rotation=60, ha="right", fontsize=7)
    ax.set_yticks(range(len(configs)))
    ax.set_yticklabels(configs, fontsize=7)
    ax.set_title("mean DSC per structure (largest structure left)" + (f", {budget} budget" if budget else ""))
    fig.colorbar(im, ax=ax, fraction=0.03)
    return save_figure(fig, path)


def plot_contour_settings(path: str | os.PathLike, size: int = 12) -> Path:
    """Contour of a square for each (kernel, iterations) setting: the even kernel 2 erodes only from
    the low-index side (scipy's origin convention), so (2, 1) marks two faces of the object."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import torch

    from monai_cwcd.transforms.functional import label_contour

    lab = torch.zeros(size, size, dtype=torch.long)
    lab[3 : size - 3, 3 : size - 3] = 1
    settings = ((2, 1), (3, 1), (3, 2), (3, 3))
    fig, axes = plt.subplots(1, len(settings), figsize=(3 * len(settings), 3.6), layout="constrained")
    for ax, (k, it) in zip(axes, settings):
        c = label_contour(lab, spatial_dims=2, kernel_size=k, iterations=it) & (lab > 0)
        ax.imshow(lab.numpy() * 1.0 + c.numpy() * 1.0, cmap="magma", vmin=0, vmax=2)
        ax.set_title(f"kernel {k}, iterations {it}: {int(c.sum())} contour px", fontsize=10)
        ax.set_xticks([])
        ax.set_yticks([])
    fig.suptitle("a 6 x 6 object (magenta) and its contour C = G - erode(G) (yellow)")
    return save_figure(fig, path)


def _verdict(cond: bool | None) -> str:
    return "n/a" if cond is None else ("yes" if cond else "no")


def _collapsed_rows(network_row: Mapping[str, Any]) -> str:
    """Which of a ``networks.csv`` row's two rows collapsed ("" when neither; NaN after :func:`_read_csv`)."""
    v = network_row.get("collapsed", "")
    return v if isinstance(v, str) else ""


def compute_claims(
    results: Sequence[Mapping[str, Any]],
    per_struct: Sequence[Mapping[str, Any]],
    networks: Sequence[Mapping[str, Any]] = (),
    quick: bool = False,
    alpha: float = 0.05,
    budget: str = "matched",
    pairs: Mapping[tuple[str, str], tuple[float, ...]] | None = None,
) -> list[dict[str, Any]]:
    """Verdicts on the papers' claims (and the reviewers' questions), computed from one budget's rows.

    Each claim: ``{"claim", "source", "budget", "verdict", "significant", "reversed", "evidence"}``.
    ``verdict`` is "yes" when the measured direction agrees, "no" when it does not, "n/a" when the
    rows were not run or both collapsed (nothing to compare); ``significant``: the paired test over
    test cases gives p < ``alpha`` in the claimed direction; ``reversed``: p < ``alpha`` in the other
    direction (``None`` where no test applies). A comparison with a collapsed row says so in its
    evidence; where some structures are absent from some test references, the evidence also gives
    both rows' DSC over the present structures only (a hallucinated structure scores 0 in the main
    DSC), its paired p and the hallucinated-structure counts. ``pairs``: ``{(row a, row b): (p,
    units[, p over present structures])}``, paired tests of rows that are not each other's reference
    (e.g. PDANet + CWCD against U-Net + CWCD), computed by the caller from the per-case DSC.
    """
    by = {r["config"]: r for r in results}
    claims: list[dict[str, Any]] = []
    nan = float("nan")

    def add(claim: str, source: str, verdict: str, significant: bool | None, evidence: str, reversed_: bool | None = None) -> None:
        claims.append({"claim": claim, "source": source, "budget": budget, "verdict": verdict, "significant": significant,
                       "reversed": reversed_, "evidence": evidence})

    def cmp(a: str, b: str, claim: str, source: str) -> None:
        if a not in by or b not in by:
            add(claim, source, "n/a", None, "not run")
            return
        ra, rb = by[a], by[b]
        da, db = ra["dsc_mean"], rb["dsc_mean"]
        p, n, pp = nan, 0, nan
        if pairs and (a, b) in pairs:
            p, n, *rest = pairs[(a, b)]
            pp = rest[0] if rest else nan
        elif rb["reference"] == a:
            p, n, pp = rb["wilcoxon_p"], int(rb["n_units"]), rb.get("wilcoxon_p_present", nan)
        elif ra["reference"] == b:
            p, n, pp = ra["wilcoxon_p"], int(ra["n_units"]), ra.get("wilcoxon_p_present", nan)
        better = bool(da > db)
        ev = f"{a} {da:.3f} ± {ra['dsc_std']:.3f} vs {b} {db:.3f} ± {rb['dsc_std']:.3f}"
        if not math.isnan(p):
            ev += f", Wilcoxon p = {p:.3g} over {n} cases"
        pa, pb = ra.get("dsc_present_mean", nan), rb.get("dsc_present_mean", nan)
        if not (math.isnan(pa) or math.isnan(pb)) and (abs(pa - da) > 5e-4 or abs(pb - db) > 5e-4):
            ev += (f"; over present structures only {pa:.3f} vs {pb:.3f}" + ("" if math.isnan(pp) else f" (p = {pp:.3g})")
                   + f", hallucinated structures {_int(ra['false_positives'])} vs {_int(rb['false_positives'])} "
                   f"of {_int(ra['absent_structures'])} absent")
        for c in (a, b):
            if by[c].get("collapsed") == "yes":
                ev += f"; {c} collapsed"
        if ra.get("collapsed") == "yes" and rb.get("collapsed") == "yes":
            add(claim, source, "n/a", None, ev + " (both collapsed: not evaluable)")
            return
        tested = not math.isnan(p)
        add(claim, source, _verdict(better), bool(better and p < alpha) if tested else None, ev,
            bool(da < db and p < alpha) if tested else None)

    for b, src in (("GDL", "journal Table IV"), ("GDL (simple)", "journal Table IV (working GDL)"), ("GDL+CE", "journal Table IV (working GDL)"),
                   ("DWCE", "journal Table IV"), ("Dice+CE", "journal Table IV"), ("CE", "journal Table II"),
                   ("CWCE", "journal Table II"), ("SDL", "journal Table II"),
                   ("Dice+CE (class-weighted)", "class reweighting (issue 11)")):
        cmp(REFERENCE, b, f"CWCD mean DSC > {b}", src)
    cmp("CWCE", "CE", "CWCE mean DSC > CE (contour weighting helps CE)", "journal Table II")
    cmp("SDL", "Dice", "SDL mean DSC > Dice (contour separation helps Dice)", "journal Table II")
    its = [(r["iterations"], r["dsc_mean"]) for r in results if r["loss"] == "CWCD" and r["network"] == "unet" and r["kernel_size"] == 3
           and str(r.get("contour", "(")).startswith("(")]
    if len(its) >= 2:
        its.sort()
        best = max(its, key=lambda t: t[1])
        add("thinnest contour (iterations 1) gives the best CWCD DSC", "journal Table I", _verdict(best[0] == its[0][0]), None,
            ", ".join(f"k3 i{int(i)}: {d:.3f}" for i, d in its))
    cmp("CWCD", "CWCD k2 i1", "CWCD (3, 1) mean DSC > CWCD (2, 1)", "our kernel choice vs journal Table I")
    cmp(f"{REFERENCE} [pdanet]", REFERENCE, "PDANet + CWCD mean DSC > U-Net + CWCD", "journal Tables III/V")
    for name in by:  # issue 12: contours in millimetres and adapted to each structure vs the uniform (3, 1)
        if str(name).startswith(f"{REFERENCE} ") and str(name).endswith("mm") and "[" not in str(name):
            cmp(name, REFERENCE, f"{name} (one width in mm, per axis from the spacing) mean DSC > uniform (3, 1)",
                "papers' future work (issue 12)")
    for name in by:
        if str(name).startswith(f"{REFERENCE} adaptive") and "[" not in str(name):
            rule = str(name)[len(f"{REFERENCE} adaptive"):].strip() or "0.1"
            cmp(name, REFERENCE, f"adaptive per-structure contour widths ({rule} x equivalent radius) mean DSC > uniform (3, 1)",
                "papers' future work (issue 12)")
    if len(networks) > 1:
        # a network whose Dice+CE or CWCD row collapsed is left out of the mean (as collapsed baselines are)
        kept = [n for n in networks if not _collapsed_rows(n)]
        gone = [f"{n['network']} ({_collapsed_rows(n)})" for n in networks if _collapsed_rows(n)]
        left = f"; left out, a row collapsed: {', '.join(gone)}" if gone else ""
        deltas = np.array([n["delta_dsc"] for n in kept], dtype=float)
        p, k = paired_wilcoxon(deltas, np.zeros_like(deltas))
        mean = float(_nanmean(deltas)) if deltas.size else nan
        improved = int((deltas > 0).sum())
        add("CWCD improves the mean DSC over networks (model independence)", "journal Table V, Fig. 9",
            _verdict(bool(mean > 0)) if k else "n/a", None if k < 2 else bool(mean > 0 and p < alpha),
            f"mean ΔDSC {mean:+.3f} over {len(kept)} networks ({improved} improved), Wilcoxon over networks p = {p:.3g}{left}",
            None if k < 2 else bool(mean < 0 and p < alpha))
        worse = [n for n in kept if n["delta_dsc"] < 0 and n["wilcoxon_p"] < alpha]
        ahead = [n for n in kept if n["delta_dsc"] > 0 and n["wilcoxon_p"] < alpha]

        def named(rows: Sequence[Mapping[str, Any]]) -> str:
            return ", ".join(f"{n['network']} ({n['delta_dsc']:+.3f}, p = {n['wilcoxon_p']:.2g})" for n in rows) or "none"

        add("CWCD improves DSC on every network (all nine of Table V improved)", "journal Table V",
            _verdict(improved == len(kept)) if kept else "n/a", bool(kept) and len(ahead) == len(kept),
            f"{improved} of {len(kept)} networks improved{left}; p < {alpha} per network (over its test cases) in CWCD's "
            f"favour: {named(ahead)}; against: {named(worse)}", bool(worse))
    collapsed = [r["config"] for r in results if r.get("collapsed") == "yes"]
    structs, vol, gains = _gains(per_struct, collapsed)
    if gains and len(structs) >= 3:
        from scipy.stats import spearmanr

        mean_gain = _nanmean(np.stack(list(gains.values())), 0)
        ok = ~(np.isnan(mean_gain) | np.isnan(vol) | (vol <= 0))
        if ok.sum() >= 3 and np.ptp(mean_gain[ok]) > 0:
            rho, p = spearmanr(np.log(vol[ok]), mean_gain[ok])
            left = f"; collapsed rows left out: {', '.join(collapsed)}" if collapsed else ""
            each = []
            if len(gains) > 1:  # the mean gain depends on which baselines are averaged: each one's own rho
                for name, g in gains.items():
                    okb = ok & ~np.isnan(g)
                    if okb.sum() >= 3 and np.ptp(g[okb]) > 0:
                        each.append(f"{name} {spearmanr(np.log(vol[okb]), g[okb])[0]:+.2f}")
            per = f"; against each baseline alone: {', '.join(each)}" if each else ""
            add("the smaller the structure, the larger the DSC gain of CWCD (negative rank correlation)", "journal Fig. 8",
                _verdict(bool(rho < 0)), bool(rho < 0 and p < alpha),
                f"Spearman rho(volume, {'mean gain over ' + str(len(gains)) + ' baselines' if len(gains) > 1 else 'gain over ' + next(iter(gains))}) = {rho:.2f}, p = {p:.3g}, {int(ok.sum())} structures"
                f"{left}{per}", bool(rho > 0 and p < alpha))
    if quick:
        for c in claims:
            c["verdict"] = "n/a (quick run)"
            c["significant"] = c["reversed"] = None
    return claims


def _significance(claim: Mapping[str, Any]) -> str:
    """The *Significant* cell of a claim: yes, no, reversed (p < 0.05 against the claim) or –."""
    if claim.get("reversed"):
        return "reversed"
    return "–" if claim["significant"] is None else ("yes" if claim["significant"] else "no")


def _claims_summary(claims: Sequence[Mapping[str, Any]]) -> str:
    """One line: how many claims agree (and significantly), which were significantly reversed, which
    did not hold and how many could not be evaluated."""
    evaluable = [c for c in claims if c["verdict"] in ("yes", "no")]
    agree = [c for c in evaluable if c["verdict"] == "yes"]
    text = (f"Agrees: {len(agree)} of {len(evaluable)} evaluable claims, {sum(1 for c in agree if c['significant'])} of them "
            "significant. Did not hold: " + ("; ".join(f"{c['claim']} ({c['budget']}{', significantly reversed' if c.get('reversed') else ''})"
                                                      for c in evaluable if c["verdict"] == "no") or "none") + ".")
    na = len(claims) - len(evaluable)
    if na:
        text += f" Not evaluable: {na} (the evidence column says why)."
    return text


def _display_source(source: str) -> str:
    """A data folder as shown on the page: relative to the cache (``$MONAI_CWCD_CACHE/...``), or its
    name, never a machine's absolute path."""
    from monai_cwcd.evaluation.compare import _portable_source

    shown = _portable_source(source)
    return Path(shown).name if Path(shown).is_absolute() else shown


def _run_claims(claims: Sequence[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """The claims a part could test (the rows it compares were run); the others stay in comparison.json."""
    return [c for c in claims if c.get("evidence") != "not run"]


def _part_markdown(title: str, output_dir: Path, rel: str, figures: bool) -> list[str]:
    doc = json.loads((output_dir / "comparison.json").read_text())
    s = doc["settings"]
    sel = s.get("selection", {})
    nets = ", ".join(f"{n} {json.dumps(v)}" for n, v in s.get("networks", {}).items())
    lines = [
        f"## {title}",
        "",
        f"- data: `{s['dataset']}` ({'synthetic, ' if s.get('synthetic') else ''}`{_display_source(s['source'])}`); protocol: {s.get('protocol', '')}; "
        f"{s['num_train']} training and {s['num_test']} test cases/units, z-score normalised, resampled to "
        f"{' x '.join(map(str, s['spatial_size']))} voxels; {s['num_classes']} classes incl. background.",
    ]
    if s.get("label_note"):
        lines.append(f"- labels: {s['label_note']}")
    lines += [
        f"- networks (CPU widths): {nets}.",
        f"- every Dice-family loss with `include_background={s.get('include_background')}`; each row's full loss settings are in "
        "`configs.json` and the `loss_settings` column of `results.csv`.",
        f"- matched budget: Adam lr {s['learning_rate']}, {s['epochs']} epochs, batch {s['batch_size']}, "
        f"{'augmentation `' + s['augmentation'] + '` (' + s['augmentation_description'] + ')' if s.get('augmentation') else 'no augmentation'}, "
        "last-epoch model; "
        f"seeds {s['seeds']} (same initial weights and case order for every row under a given seed).",
        "- selected budget: " + (
            f"lr from {sel['lr_grid']} and epochs from {sel['epoch_grid']} by the mean DSC of {sel['val_cases']} validation cases drawn from "
            f"the training cases (seed {sel['seed']}){', trained with the same augmentation' if s.get('augmentation') else ''}; "
            "the test cases are never used for it" + _edge_text(sel) + "." if sel.get("enabled") else "not run."),
        "- evaluation: full-volume argmax; MONAI DSC, HD95 and symmetric ASSD (mm of the resampled grid). Detection rate = share "
        "of present structures the prediction overlaps; HD95/ASSD are averaged over detected structures only.",
        "- statistics: mean ± sample std over seeds; two-sided paired Wilcoxon over test cases (each case: DSC averaged over "
        "structures and seeds), the number of units is given; a row with mean DSC < "
        f"{s.get('collapse_dsc', 0.3)} and at least half of its structures below 0.05 is flagged collapsed and left out of "
        "the gain averages, the Fig. 8 analogue and the mean difference over networks.",
        f"- compute: {s['compute_seconds'] / 60:.1f} min on {s['device']} with {s['torch_threads']} torch thread{'' if s['torch_threads'] == 1 else 's'} "
        f"(selection {s['part_seconds']['selection'] / 60:.1f} min, matched {s['part_seconds']['matched'] / 60:.1f} min, "
        f"selected {s['part_seconds']['selected'] / 60:.1f} min, loading {s['load_seconds']:.0f} s)"
        + (f"; {s['reused_runs']} runs reused from earlier invocations (their own compute time is counted)" if s.get("reused_runs") else "") + ".",
        "",
        results_markdown(output_dir),
    ]
    if figures:
        lines += [f"![DSC gain vs volume]({rel}/dsc_gain_vs_volume.png)", "", f"![per-class DSC]({rel}/per_class_dsc.png)", ""]
    lines += ["#### Claims on this data", "", "| Claim | Source | Budget | Agrees | Significant (p < 0.05) or reversed | Evidence |",
              "|---|---|---|---|---|---|"]
    claims = _run_claims(doc["claims"])
    for c in claims:
        lines.append(f"| {c['claim']} | {c['source']} | {c['budget']} | {c['verdict']} | {_significance(c)} | {c['evidence']} |")
    lines += ["", _claims_summary(claims), ""]
    return lines


def _edge_text(selection: Mapping[str, Any]) -> str:
    """How many rows chose the longest training on offer: a selection at the grid's edge shows that
    longer training still helped on validation, not that training converged."""
    chosen = [c.get("epochs") for c in selection.get("chosen", {}).values()]
    grid = selection.get("epoch_grid") or []
    if not chosen or len(grid) < 2:
        return ""
    edge = sum(1 for e in chosen if e == max(grid))
    return (f"; {edge} of {len(chosen)} rows chose the longest training on offer ({max(grid)} epochs)"
            + (", so for them the selected budget shows that longer training still helped, not that training converged" if edge else ""))


def _wall_text(rec: Mapping[str, Any] | None) -> str:
    if not rec:
        return "–"
    workers = int(rec.get("num_workers") or 1)
    threads = max(1, int(rec["torch_threads"]) // workers) if rec.get("torch_threads") else None  # the workers split them
    how = f"{workers} worker processes" if workers > 1 else "1 process"
    how += f", {threads} thread{'s' if threads != 1 else ''}{' each' if workers > 1 else ''}" if threads else ""
    return f"{rec['wall_seconds'] / 60:.1f} ({how}{', ' + rec['date'] if rec.get('date') else ''})"


def write_results_doc(
    output_dir: str | os.PathLike | Mapping[str, str | os.PathLike],
    docs_path: str | os.PathLike = "docs/results.md",
    figures_dir: str | os.PathLike | None = None,
    command: str = "",
    notes: Sequence[str] = (),
) -> Path:
    """Write ``docs/results.md`` from finished comparisons: for each part its settings, compute
    time, tables, paired tests and claims; the plots of the first part are copied next to the doc.

    Args:
        output_dir: one comparison folder, or ``{part title: folder}`` in page order.
        docs_path: the page. Defaults to ``"docs/results.md"``.
        figures_dir: where the PNGs go. Defaults to ``None`` (``<docs dir>/results``).
        command: the command that regenerates the page. Defaults to ``""``.
        notes: paragraphs added after the header (e.g. what a one-subject experiment can show).
            Defaults to ``()``.
    """
    parts = dict(output_dir) if isinstance(output_dir, Mapping) else {"Loss comparison": output_dir}
    docs_path = Path(docs_path)
    figures_dir = Path(figures_dir) if figures_dir else docs_path.parent / "results"
    figures_dir.mkdir(parents=True, exist_ok=True)
    first = Path(next(iter(parts.values())))
    for name in ("dsc_gain_vs_volume.png", "per_class_dsc.png"):
        shutil.copyfile(first / name, figures_dir / (".tmp_" + name))
        os.replace(figures_dir / (".tmp_" + name), figures_dir / name)
    plot_contour_settings(figures_dir / "contour_settings.png")
    rel = os.path.relpath(figures_dir, docs_path.parent)
    total = sum(json.loads((Path(d) / "comparison.json").read_text())["settings"]["compute_seconds"] for d in parts.values())
    lines = [
        "# Evidence: loss comparison, model independence and real anatomy (generated)",
        "",
        "<!-- GENERATED by benchmarks/compare_losses.py (monai_cwcd.evaluation.report.write_results_doc); do not edit. -->",
        "",
        f"Command: `{command or 'python benchmarks/compare_losses.py'}`",
        "",
        "Compute and wall-clock time of each part (2 CPU cores):",
        "",
        "| Part | compute (min) | wall clock, trained from scratch (min) |",
        "|---|---|---|",
    ]
    for title, d in parts.items():
        s = json.loads((Path(d) / "comparison.json").read_text())["settings"]
        lines.append(f"| {title} | {s['compute_seconds'] / 60:.1f} | {_wall_text(s.get('from_scratch'))} |")
    lines += [f"| total | {total / 60:.1f} | |", "",
              "*compute*: the sum of the part's runs' own times (each run's training and evaluation, whenever and however "
              "it was trained); *wall clock*: the last invocation that trained every run of the part (none reused), with "
              "its worker processes and threads, – when no such invocation is recorded.", ""]
    for n in notes:
        lines += [n, ""]
    lines += ["## Summary of claims (every part)", "",
              "Each part's own section gives the tables behind a verdict. *Agrees*: the measured direction is the papers' "
              "(or, for the reviewers' questions, CWCD's), n/a when there is nothing to compare (both rows collapsed); "
              "*significant*: paired Wilcoxon over test units p < 0.05 in the claimed direction, *reversed*: p < 0.05 in "
              "the other direction (\u2013 where no paired test applies). Each p-value is that of its own claim; no "
              "correction for multiple comparisons is applied, so among this many claims a few p < 0.05 are expected by "
              "chance alone.", "",
              "| Part | Claim | Source | Budget | Agrees | Significant | Evidence |", "|---|---|---|---|---|---|---|"]
    for title, d in parts.items():
        for c in _run_claims(json.loads((Path(d) / "comparison.json").read_text())["claims"]):
            lines.append(f"| {title} | {c['claim']} | {c['source']} | {c['budget']} | {c['verdict']} | {_significance(c)} | {c['evidence']} |")
    lines.append("")
    for i, (title, d) in enumerate(parts.items()):
        lines += _part_markdown(title, Path(d), rel, figures=i == 0)
    lines += [
        "## Contour settings",
        "",
        "The journal paper uses an erosion kernel of size 2 (Table I). With an even box the erosion is not centred "
        "(scipy's origin convention, which our kernel follows): it only removes voxels on the low-index face of each "
        "axis, so the (2, 1) contour marks two faces of an object and misses the opposite two, while odd kernels give "
        "symmetric contours of thickness `iterations * (k // 2)`:",
        "",
        f"![contour settings]({rel}/contour_settings.png)",
        "",
    ]
    return write_text(docs_path, "\n".join(lines))
