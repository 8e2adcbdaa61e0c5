"""Figure for docs/transforms.md: uniform voxel vs millimetre vs adaptive contour on one anisotropic slice.

Run from the repository root::

    python benchmarks/figure_contour_widths.py [--output docs/figures/contour_widths.png]

A synthetic AMOS-like case (``monai_cwcd.data.synthetic_amos_case``, 0.8 x 0.8 x 2 mm) keeps every
second slice, i.e. a 0.8 x 0.8 x 4 mm grid, the kind of anisotropy of thick-slice CT. One coronal
slice (x horizontal, z vertical, drawn in millimetres so every voxel has its true shape) shows the
own-class contour of three settings of ``ContourWeightMap``:

1. ``kernel_size=3, iterations=1``: one voxel on every axis, 0.8 mm in plane but 4 mm across slices;
2. ``contour_width_mm=3.2``: 4 voxels in plane and 1 across slices (``r = floor(w / s + 1/2)``),
   about the same thickness in millimetres on both axes;
3. ``contour_width_mm={class: width}`` from the adaptive rule (``clip(fraction * r_c, 0.8, 4.8)`` mm,
   ``r_c`` the equivalent radius of each organ in this case; ``fraction=0.25`` because the synthetic
   organs are small, see docs/transforms.md).
"""

from __future__ import annotations

import argparse
import os
import sys

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from monai_cwcd.data import AMOS_LABELS, SYNTHETIC_SPACINGS, equivalent_radius_width, synthetic_amos_case  # noqa: E402
from monai_cwcd.transforms import ContourWeightMap  # noqa: E402

SHAPE = (192, 192, 48)
FRACTION, MIN_MM, MAX_MM = 0.25, 0.8, 4.8
UNIFORM_MM = 3.2


def settings(label: np.ndarray, spacing: tuple[float, float, float]) -> list[tuple[str, dict]]:
    """The three settings: (panel title, ContourWeightMap arguments)."""
    voxel = float(np.prod(spacing))
    counts = np.bincount(label.ravel(), minlength=len(AMOS_LABELS))
    widths = {0: MIN_MM}
    for c in range(1, len(AMOS_LABELS)):
        widths[c] = equivalent_radius_width([counts[c] * voxel], FRACTION, MIN_MM, MAX_MM)[1] if counts[c] else MIN_MM
    return [
        ("uniform voxels: kernel_size=3, iterations=1\n(1 voxel = 0.8 mm in plane, 4 mm across slices)", {}),
        (f"millimetres: contour_width_mm={UNIFORM_MM}\n(4 voxels in plane, 1 across slices)", {"contour_width_mm": UNIFORM_MM}),
        (f"adaptive: one width per organ\nclip({FRACTION} x equivalent radius, {MIN_MM}, {MAX_MM}) mm", {"contour_width_mm": widths}),
    ]


def make_figure(output: str) -> str:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from monai_cwcd.utils import atomic_output

    _, label, _ = synthetic_amos_case(seed=0, index=0, shape=SHAPE)
    label = np.ascontiguousarray(label[:, :, ::2])  # every second 2 mm slice: a 4 mm grid
    sx, sy, sz = SYNTHETIC_SPACINGS["amos"]
    spacing = (sx, sy, 2 * sz)
    # the coronal slice showing the most organs (then the most organ voxels)
    y = max(range(label.shape[1]), key=lambda j: (len(np.unique(label[:, j])), int((label[:, j] > 0).sum())))
    extent = (0, label.shape[0] * spacing[0], 0, label.shape[2] * spacing[2])
    sl = label[:, y].T  # (z, x): z vertical
    present = [int(c) for c in np.unique(sl) if c > 0]
    palette = plt.get_cmap("tab10")
    colour = {c: palette(i % 10) for i, c in enumerate(present)}
    fig, axes = plt.subplots(1, 3, figsize=(15, 5.4), constrained_layout=True)
    panels = settings(label, spacing)
    for ax, (title, kwargs) in zip(axes, panels):
        contour = ContourWeightMap(spacing=spacing, **kwargs)(label[None])[0]
        cl = contour[:, y].T.astype(bool) & (sl > 0)  # the organs' contours C_c (background side not drawn)
        rgba = np.ones((*sl.shape, 4))
        for c in present:
            inside = sl == c
            rgba[inside & ~cl] = (*colour[c][:3], 1.0)
            rgba[inside & ~cl, :3] = 0.75 + 0.25 * rgba[inside & ~cl, :3]  # pale interior
            rgba[inside & cl] = (*[0.6 * v for v in colour[c][:3]], 1.0)  # dark contour
        ax.imshow(rgba, origin="lower", extent=extent, interpolation="nearest")
        share = cl[sl > 0].mean()
        ax.set_title(f"{title}\ncontour = {100 * share:.0f}% of the organ pixels of this slice", fontsize=10)
        ax.set_xlabel("x (mm), 0.8 mm voxels")
        ax.set_aspect("equal")
    axes[0].set_ylabel("z (mm), 4 mm slices")
    widths = panels[2][1]["contour_width_mm"]
    handles = [
        plt.Rectangle((0, 0), 1, 1, color=[0.6 * v for v in colour[c][:3]], label=f"{AMOS_LABELS[c]}: {widths[c]:.1f} mm")
        for c in present
    ]
    axes[2].legend(handles=handles, loc="upper center", bbox_to_anchor=(0.5, -0.13), ncol=3, fontsize=8,
                   title="adaptive widths", frameon=False)
    fig.suptitle(f"Organ contours (dark) on a coronal slice of a 0.8 x 0.8 x 4 mm synthetic AMOS case (y = {y})",
                 fontsize=12)
    with atomic_output(output) as tmp:
        fig.savefig(tmp, dpi=110)
    plt.close(fig)
    return output


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output", default=os.path.join("docs", "figures", "contour_widths.png"))
    print(make_figure(parser.parse_args().output))
