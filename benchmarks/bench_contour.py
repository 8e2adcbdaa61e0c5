"""Benchmark: ``ContourWeightMap`` vs the papers' released contour procedure.

Run from the repository root::

    python benchmarks/bench_contour.py [--repeats 7] [--baseline-repeats 3]

A deterministic 64x320x320 label map with 16 classes (15 ellipsoid "organs" on background) is turned
into its contour map with ``kernel_size=3, iterations=1`` (and ``kernel_size=2``, the journal's
setting). The baseline is the procedure of the papers' code release, implemented here from its
description: one-hot the label, ``scipy.ndimage.binary_erosion`` of every class channel with scipy's
default border (``border_value=0``), subtract, stack into a float64 ``(C, *spatial)`` array. Both run
in the same process; the figures are medians of several repeats. The script asserts that our output
(``edge_is_contour=True``) equals the union of the baseline's channels, voxel for voxel.

Second table (issue 12, ``--widths`` section): the same label on an anisotropic 4 x 1 x 1 mm grid
(axis 0 is the 64-slice axis) with one contour width per class from the adaptive rule of
``monai_cwcd.data.adaptive_contour_widths`` (``w_c = clip(0.1 * r_c, 1 mm, 6 mm)``, ``r_c`` the
equivalent radius of class ``c``; background 1 mm). Timed in the same run, interleaved: today's
uniform map ``kernel_size=3, iterations=1``; the uniform map with the per-class setting's widest
window (one ``contour_width_mm``); the per-class map (one sweep); and the per-class map made the
obvious way, one erosion per class (the reference it must equal, voxel for voxel).
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time

import numpy as np
import torch
from scipy import ndimage

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from monai_cwcd.transforms import ContourWeightMap  # noqa: E402
from monai_cwcd.transforms.functional import binary_contour, contour_radius  # noqa: E402

SHAPE = (64, 320, 320)
NUM_CLASSES = 16
TARGET_RATIO = 25.0
SPACING = (4.0, 1.0, 1.0)  # mm; axis 0 is the 64-slice axis
WIDTH_RULE = (0.1, 1.0, 6.0)  # fraction of the equivalent radius, lower and upper clip (mm)
TARGET_WIDTHS_RATIO = 2.0


def make_label(shape=SHAPE, num_classes=NUM_CLASSES, seed=0) -> np.ndarray:
    """Class-index map: ``num_classes - 1`` random ellipsoids (organ-like sizes) on background 0."""
    rng = np.random.default_rng(seed)
    label = np.zeros(shape, dtype=np.int64)
    grid = np.ogrid[tuple(slice(0, s) for s in shape)]
    for c in range(1, num_classes):
        radii = rng.uniform(0.05, 0.3, size=3) * np.array(shape)
        centre = rng.uniform(0.15, 0.85, size=3) * np.array(shape)
        dist = sum(((g - m) / r) ** 2 for g, m, r in zip(grid, centre, radii))
        label[dist <= 1.0] = c
    return label


def baseline_contour(label: np.ndarray, num_classes: int, kernel_size: int, iterations: int) -> np.ndarray:
    """The papers' released procedure: one-hot, per-class scipy erosion (default border), subtract,
    stack into float64 ``(C, *spatial)``."""
    # the cheapest one-hot (a boolean comparison per class), so the ratio is not inflated by a slow
    # float64 ``np.eye(C)[label]``; the erosions dominate anyway
    onehot = label[None] == np.arange(num_classes).reshape(-1, *([1] * label.ndim))
    structure = np.ones((kernel_size,) * label.ndim)
    channels = []
    for c in range(num_classes):
        eroded = ndimage.binary_erosion(onehot[c], structure=structure, iterations=iterations)
        channels.append(onehot[c].astype(np.float64) - eroded.astype(np.float64))
    return np.stack(channels)


def timeit(fn, repeats: int) -> tuple[float, object]:
    times, out = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times), out


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def adaptive_widths(label: np.ndarray, spacing=SPACING, rule=WIDTH_RULE) -> dict[int, float]:
    """The adaptive rule on one label: ``clip(fraction * (3 V / (4 pi))^(1/3), lo, hi)`` per class
    (``V`` in mm^3), background ``lo``."""
    fraction, lo, hi = rule
    counts = np.bincount(label.ravel(), minlength=NUM_CLASSES)
    voxel = float(np.prod(spacing))
    widths = {0: lo}
    for c in range(1, NUM_CLASSES):
        radius = (3.0 * counts[c] * voxel / (4.0 * np.pi)) ** (1.0 / 3.0)
        widths[c] = float(min(max(fraction * radius, lo), hi))
    return widths


def one_erosion_per_class(label_t: torch.Tensor, widths: dict[int, float], spacing=SPACING) -> torch.Tensor:
    """The per-class map made the obvious way: the binary contour of every class with its own window."""
    out = torch.zeros(label_t.shape, dtype=torch.bool)
    for c, w in widths.items():
        out |= binary_contour(label_t == c, 3, contour_width_mm=w, spacing=spacing)
    return out


def interleaved(fns: dict, repeats: int) -> dict:
    """Median wall-clock time, its minimum and the median CPU time of this process (``time.process_time``,
    less sensitive than the wall clock to other jobs on a loaded machine) of each function, the
    functions run in turn in every round, after one untimed warm-up round."""
    times: dict = {k: [] for k in fns}
    cpu: dict = {k: [] for k in fns}
    outs: dict = {}
    for fn in fns.values():  # one warm-up round, not timed (first-touch allocations, caches)
        fn()
    for _ in range(repeats):
        for k, fn in fns.items():
            start, start_cpu = time.perf_counter(), time.process_time()
            outs[k] = fn()
            cpu[k].append(time.process_time() - start_cpu)
            times[k].append(time.perf_counter() - start)
    return {k: (statistics.median(v), min(v), outs[k], statistics.median(cpu[k])) for k, v in times.items()}


def widths_table(label: np.ndarray, repeats: int) -> bool:
    """Per-class widths (adaptive rule, anisotropic grid) against the uniform maps, same run."""
    widths = adaptive_widths(label)
    label_t = torch.as_tensor(label.astype(np.uint8))[None]
    windows = sorted({contour_radius(w, SPACING) for w in widths.values()})
    widest = max(widths.values())
    uniform = ContourWeightMap(kernel_size=3, iterations=1)
    widest_map = ContourWeightMap(contour_width_mm=widest, spacing=SPACING)
    per_class = ContourWeightMap(contour_width_mm=widths, spacing=SPACING)
    print(f"per-class widths (mm, adaptive rule fraction/min/max = {WIDTH_RULE}, spacing {SPACING} mm): "
          + ", ".join(f"{c}: {w:.2f}" for c, w in widths.items()))
    print(f"distinct windows (half-widths in voxels per axis): {windows}")
    print()
    res = interleaved(
        {
            "uniform (3, 1)": lambda: uniform(label_t),
            f"uniform {widest:.2f} mm (widest window)": lambda: widest_map(label_t),
            "per-class widths, one sweep": lambda: per_class(label_t),
            "per-class widths, one erosion per class": lambda: one_erosion_per_class(label_t[0], widths),
        },
        repeats,
    )
    ours = res["per-class widths, one sweep"][2]
    assert torch.equal(ours[0].bool(), res["per-class widths, one erosion per class"][2]), "per-class map differs"
    sweep, uniform_k3 = res["per-class widths, one sweep"], res["uniform (3, 1)"]
    widest_res = res[f"uniform {widest:.2f} mm (widest window)"]
    print(f"| map (torch uint8 input, {torch.get_num_threads()} threads) | wall median (min) | CPU time median "
          "| per-class sweep / this (wall) | per-class sweep / this (CPU) |")
    print("|---|---|---|---|---|")
    for k, (med, lo, _, c) in res.items():
        print(f"| {k} | {med * 1e3:.1f} ms ({lo * 1e3:.1f}) | {c * 1e3:.1f} ms | {sweep[0] / med:.2f}x | {sweep[3] / c:.2f}x |")
    print()
    ok = sweep[3] / widest_res[3] <= TARGET_WIDTHS_RATIO
    ok_k3 = sweep[3] / uniform_k3[3] <= TARGET_WIDTHS_RATIO
    print(f"per-class sweep vs uniform (3, 1): {sweep[0] / uniform_k3[0]:.2f}x wall, {sweep[3] / uniform_k3[3]:.2f}x CPU "
          f"(target <= {TARGET_WIDTHS_RATIO:.0f}x CPU: {'met' if ok_k3 else 'NOT met'}); "
          f"vs the uniform map of the same widest window: {sweep[0] / widest_res[0]:.2f}x wall, "
          f"{sweep[3] / widest_res[3]:.2f}x CPU (target <= {TARGET_WIDTHS_RATIO:.0f}x CPU: {'met' if ok else 'NOT met'}); "
          "outputs equal the one-erosion-per-class map: yes")
    return ok


def main(repeats: int = 7, baseline_repeats: int = 3, widths_only: bool = False) -> int:
    label = make_label()
    present = len(np.unique(label))
    label_u8 = label.astype(np.uint8)
    label_f32 = label.astype(np.float32)  # what LoadImaged returns for a NIfTI label
    label_t = torch.as_tensor(label_u8)
    print(f"machine: nproc={os.cpu_count()}, CPU={cpu_model()}, torch={torch.__version__} "
          f"({torch.get_num_threads()} threads), numpy={np.__version__}, python={platform.python_version()}")
    print("load average at start (1/5/15 min): " + "/".join(f"{x:.2f}" for x in os.getloadavg()))
    print(f"label: {SHAPE}, {NUM_CLASSES} classes ({present} present), median of {repeats} runs"
          + ("" if widths_only else f" (baseline: {baseline_repeats})"))
    print()
    if widths_only:
        ok = widths_table(label, repeats)
        print("load average at end (1/5/15 min): " + "/".join(f"{x:.2f}" for x in os.getloadavg()))
        return 0 if ok else 1
    print("| k | it | baseline (per-class scipy, float64 stack) | ours numpy uint8 | ours numpy float32 "
          "| ours torch uint8 | ratio (numpy uint8) | ratio (torch) |")
    print("|---|----|---|---|---|---|---|---|")
    ok = True
    for k in (3, 2):
        transform = ContourWeightMap(kernel_size=k, iterations=1, edge_is_contour=True)
        t_base, base = timeit(lambda: baseline_contour(label, NUM_CLASSES, k, 1), baseline_repeats)
        t_np, ours = timeit(lambda: transform(label_u8[None]), repeats)
        t_f32, ours_f32 = timeit(lambda: transform(label_f32[None]), repeats)
        t_t, ours_t = timeit(lambda: transform(label_t[None]), repeats)
        union = (base != 0).any(axis=0)
        assert np.array_equal(ours[0].astype(bool), union), f"k={k}: output differs from the baseline's union"
        assert np.array_equal(ours_f32, ours) and np.array_equal(ours_t.numpy(), ours)
        r_np, r_t = t_base / t_np, t_base / t_t
        ok &= min(r_np, r_t) >= TARGET_RATIO
        print(f"| {k} | 1 | {t_base * 1e3:.0f} ms | {t_np * 1e3:.1f} ms | {t_f32 * 1e3:.1f} ms | {t_t * 1e3:.1f} ms "
              f"| {r_np:.0f}x | {r_t:.0f}x |")
        del base
    print()
    print(f"outputs equal the baseline's union: yes; target >= {TARGET_RATIO:.0f}x: {'met' if ok else 'NOT met'}")
    print()
    ok &= widths_table(label, repeats)
    print("load average at end (1/5/15 min): " + "/".join(f"{x:.2f}" for x in os.getloadavg()))
    return 0 if ok else 1


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--baseline-repeats", type=int, default=3)
    parser.add_argument("--widths", action="store_true", help="only the per-class widths table (issue 12)")
    args = parser.parse_args()
    sys.exit(main(args.repeats, args.baseline_repeats, widths_only=args.widths))
