"""Cached contour vs contour recomputed after augmentation, and the cost of recomputing it.

    PYTHONPATH=. python benchmarks/contour_augmentation.py [--draws 20] [--repeats 3]

Part 1 (agreement). A synthetic AMOS case (``synthetic_amos_case``, 16 classes) of shape
``(352, 352, 72)``; the AMOS bundle's random transforms on a ``(320, 320, 64)`` patch
(``RandSpatialCropd``, nearest ``RandRotated`` about z within 0-15 degrees, ``RandFlipd`` on axes 0
and 1), each applied alone with probability 1, then the bundle's mix (crop always, the others with
p = 0.2). "cached" is ``ContourWeightMapd`` on the whole case, carried through the transforms with
nearest interpolation; "recomputed" is ``ContourWeightMap`` of the transformed label. Reported:
``|cached XOR recomputed| / |recomputed|`` (the share of the true contour's size that is wrong),
over the whole patch and away from the patch border (beyond the erosion reach), mean over the
draws, for ``kernel_size`` 2 and 3 (one iteration, ``edge_is_contour=False``, the bundles' setting).

Part 2 (cost). The loss's on-the-fly contour (``label_contour`` of the target, what ``CWCDLoss``
computes when no contour is handed over) on a bundle-sized batch ``(2, 1, 320, 320, 64)``;
``CWCDLoss`` forward + backward on ``(2, 16, 320, 320, 64)`` logits with and without a precomputed
contour; and one PDANet training step (the bundle's network, features 16-128, forward + CWCD loss +
backward + Adam step) with the on-the-fly contour on ``(2, 1, 128, 128, 64)`` (a bundle-sized step would need
about 20 GB on CPU), with the contour's share of that step.
Medians of ``--repeats`` after one warm-up, as wall time and as CPU time of the process (all its
threads; on a machine shared with other jobs the CPU time is the steadier figure). ``--skip-agreement``
runs part 2 only.
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

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from monai.data import MetaTensor  # noqa: E402
from monai.transforms import Compose, RandFlipd, RandRotated, RandSpatialCropd  # noqa: E402

from monai_cwcd.data.synthetic import synthetic_amos_case  # noqa: E402
from monai_cwcd.losses import CWCDLoss  # noqa: E402
from monai_cwcd.networks.nets import PDANet  # noqa: E402
from monai_cwcd.transforms import ContourWeightMap, ContourWeightMapd  # noqa: E402
from monai_cwcd.transforms.functional import label_contour  # noqa: E402

VOLUME = (352, 352, 72)
PATCH = (320, 320, 64)
KEYS = ["label", "contour_label"]


def augmentations(prob: float | None) -> dict[str, list]:
    p = 1.0 if prob is None else prob
    crop = RandSpatialCropd(keys=KEYS, roi_size=PATCH, random_size=False)
    rotate = RandRotated(keys=KEYS, range_z=(0.0, 0.2618), prob=p, mode="nearest", padding_mode="zeros")
    flip0, flip1 = RandFlipd(keys=KEYS, spatial_axis=0, prob=p), RandFlipd(keys=KEYS, spatial_axis=1, prob=p)
    if prob is not None:
        return {"bundle mix (crop; rotate, flips p=0.2)": [crop, rotate, flip0, flip1]}
    return {"crop only": [crop], "crop + flip axis 0": [crop, flip0], "crop + flip axis 1": [crop, flip1],
            "crop + rotate z 0-15 deg": [crop, rotate]}


def agreement(draws: int) -> list[tuple[str, int, float, float]]:
    _, label, affine = synthetic_amos_case(seed=0, index=0, shape=VOLUME)
    label = MetaTensor(torch.as_tensor(label[None].astype(np.float32)), affine=torch.as_tensor(affine))
    rows = []
    for k in (2, 3):
        cached_case = ContourWeightMapd(keys="label", kernel_size=k)({"label": label})
        reach = k // 2, (k - 1) // 2
        for name, transforms in {**augmentations(None), **augmentations(0.2)}.items():
            pipeline = Compose(transforms)
            pipeline.set_random_state(seed=0)
            wrong, wrong_in, total, total_in = 0, 0, 0, 0
            for _ in range(draws):
                out = pipeline(dict(cached_case))
                cached = out["contour_label"].as_tensor()[0] > 0.5
                recomputed = ContourWeightMap(kernel_size=k)(out["label"].as_tensor())[0] > 0
                inside = torch.zeros_like(recomputed)
                inside[tuple(slice(reach[0], s - reach[1]) for s in recomputed.shape)] = True
                diff = cached ^ recomputed
                wrong += int(diff.sum())
                total += int(recomputed.sum())
                wrong_in += int((diff & inside).sum())
                total_in += int((recomputed & inside).sum())
            rows.append((name, k, 100.0 * wrong / total, 100.0 * wrong_in / total_in))
            print(f"k={k} {name}: {rows[-1][2]:.1f}% whole patch, {rows[-1][3]:.1f}% away from the border", flush=True)
    return rows


def median_time(fn, repeats: int) -> tuple[float, float]:
    """Median wall time and median CPU time of the process (seconds) of ``fn()``."""
    fn()
    wall, cpu = [], []
    for _ in range(repeats):
        t0, c0 = time.perf_counter(), time.process_time()
        fn()
        wall.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - c0)
    return statistics.median(wall), statistics.median(cpu)


def blocky_target(shape: tuple[int, ...], num_classes: int = 16, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    coarse = torch.randint(0, num_classes, (shape[0], 1, *[s // 8 for s in shape[2:]]), generator=g)
    return torch.nn.functional.interpolate(coarse.float(), size=shape[2:], mode="nearest")


def cost(repeats: int) -> list[tuple[str, tuple[float, float]]]:
    rows: list[tuple[str, tuple[float, float]]] = []

    def record(name: str, fn) -> None:
        rows.append((name, median_time(fn, repeats)))
        print(f"{name}: {1000 * rows[-1][1][0]:.1f} ms wall, {1000 * rows[-1][1][1]:.1f} ms CPU", flush=True)

    target = blocky_target((2, 1, *PATCH))
    for k in (2, 3):
        record(f"on-the-fly contour, k={k}, target (2, 1, 320, 320, 64)",
               lambda: label_contour(target, 3, kernel_size=k))
    logits = torch.randn(2, 16, *PATCH, requires_grad=True)
    loss = CWCDLoss(to_onehot_y=True, softmax=True, kernel_size=2)
    contour = label_contour(target, 3, kernel_size=2).to(torch.uint8)

    def loss_step(with_contour: bool) -> None:
        value = loss(logits, target, contour if with_contour else None)
        value.backward()
        logits.grad = None

    record("CWCDLoss fwd+bwd (2, 16, 320, 320, 64), contour on the fly", lambda: loss_step(False))
    record("CWCDLoss fwd+bwd (2, 16, 320, 320, 64), contour handed over", lambda: loss_step(True))
    del logits

    small = (2, 1, 128, 128, 64)
    net = PDANet(spatial_dims=3, in_channels=1, out_channels=16, features=(16, 32, 64, 128))
    opt = torch.optim.Adam(net.parameters(), lr=3e-4)
    image, small_target = torch.randn(small), blocky_target(small)

    def train_step() -> None:
        opt.zero_grad()
        loss(net(image), small_target).backward()
        opt.step()

    record("PDANet training step (2, 1, 128, 128, 64), contour on the fly", train_step)
    record("on-the-fly contour, k=2, target (2, 1, 128, 128, 64)",
           lambda: label_contour(small_target, 3, kernel_size=2))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--draws", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--skip-agreement", action="store_true")
    args = parser.parse_args()
    print(f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, torch {torch.__version__} "
          f"({torch.get_num_threads()} threads), load average {os.getloadavg()}", flush=True)
    agree = [] if args.skip_agreement else agreement(args.draws)
    costs = cost(args.repeats)
    if agree:
        print("\n| augmentation | k | differing, whole patch | differing, away from the border |\n|---|---|---|---|")
    for name, k, whole, inner in agree:
        print(f"| {name} | {k} | {whole:.1f}% | {inner:.1f}% |")
    print("\n| operation | median wall | median CPU |\n|---|---|---|")
    for name, (wall, cpu) in costs:
        print(f"| {name} | {1000 * wall:.1f} ms | {1000 * cpu:.1f} ms |")
    print(f"load average at the end {os.getloadavg()}")


if __name__ == "__main__":
    main()
