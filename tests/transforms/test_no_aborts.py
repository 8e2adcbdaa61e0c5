"""No aborts: the contour transforms, their kernels, the losses and our scipy reference over many tiny
and odd shapes, in a child process with glibc's heap checks on (MALLOC_CHECK_=3, MALLOC_PERTURB_, and
glibc's malloc debug library preloaded where it exists), so a heap overflow ends the child with
SIGABRT instead of passing silently or killing the test run.

Issue 10 item 7: a script mixing scipy's iterated binary_erosion with ContourWeightMap aborted in 6 of
6 runs. The culprit is scipy's ``iterations > 1`` path (NI_BinaryErosion2 writes past its output when
the structure is wider than the input, docs/upstream/scipy_binary_erosion.md); our reference erodes
one step at a time instead (contour_reference.scipy_erosion)."""

from __future__ import annotations

import ctypes.util
import os
import signal
import subprocess
import sys
from pathlib import Path

SCRIPT = r"""
import itertools, sys
import numpy as np
import torch
sys.path.insert(0, sys.argv[1])
from contour_reference import scipy_contour, scipy_per_class
from monai_cwcd.losses import CWCDLoss, ContourWeightedCELoss, DistanceWeightedCELoss, RegionWiseLoss, SeparableDiceLoss
from monai_cwcd.transforms import ContourWeightMap, DistanceWeightMap, RRWMap

torch.set_num_threads(1)
rng = np.random.default_rng(0)
shapes = [(7, 9), (3, 2), (1, 6), (2, 2), (1, 1), (6, 5, 4), (1, 4, 3), (3, 3, 2), (9, 1, 5), (1, 1, 1), (2, 1, 2)]
checked = 0
for shape, k, it, edge in itertools.product(shapes, (1, 2, 3, 4, 5), (1, 2, 3), (False, True)):
    lab = rng.integers(0, 3, size=shape)
    lab[tuple(slice(0, max(1, s // 2)) for s in shape)] = 1
    ref = scipy_per_class(lab, 3, k, it, edge)  # the issue's script, through our one-step reference
    out = ContourWeightMap(kernel_size=k, iterations=it, per_class=True, num_classes=3, edge_is_contour=edge)(lab[None])
    assert np.array_equal(out, ref.astype(np.uint8)), (shape, k, it, edge)
    masks = np.stack([lab == 1, lab > 0])
    out = ContourWeightMap(kernel_size=k, iterations=it, edge_is_contour=edge)(torch.as_tensor(masks))
    assert np.array_equal(out.numpy(), np.stack([scipy_contour(m, k, it, edge) for m in masks])), (shape, k, it, edge)
    checked += 1
for shape in shapes:
    lab = rng.integers(0, 3, size=shape)
    RRWMap(num_classes=3)(lab[None]); DistanceWeightMap()(lab[None])
    for batch, classes in ((1, 2), (2, 3)):
        target = torch.as_tensor(rng.integers(0, classes, size=(batch, 1, *shape)))
        onehot = torch.nn.functional.one_hot(target[:, 0], classes).movedim(-1, 1).float()
        for k, it, edge in itertools.product((1, 2, 3, 5), (1, 3), (False, True)):
            logits = torch.randn(batch, classes, *shape, requires_grad=True)
            kw = dict(kernel_size=k, iterations=it, edge_is_contour=edge)
            for loss in (CWCDLoss(to_onehot_y=True, softmax=True, **kw), ContourWeightedCELoss(to_onehot_y=True, **kw),
                         SeparableDiceLoss(to_onehot_y=True, softmax=True, **kw)):
                loss(logits, target).backward()
            DistanceWeightedCELoss(to_onehot_y=True)(logits, target).backward()
            RegionWiseLoss(softmax=True)(logits, onehot).backward()
            checked += 1
print("ok", checked)
"""


def _heap_checked_env() -> dict[str, str]:
    env = {**os.environ, "MALLOC_CHECK_": "3", "MALLOC_PERTURB_": "165", "OMP_NUM_THREADS": "1"}
    debug = ctypes.util.find_library("c_malloc_debug")  # glibc >= 2.34 reads MALLOC_CHECK_ only with it
    if debug:
        env["LD_PRELOAD"] = " ".join(filter(None, [env.get("LD_PRELOAD"), debug]))
    return env


def test_tiny_and_odd_shapes_never_abort():
    proc = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(Path(__file__).parent)],
        env=_heap_checked_env(), capture_output=True, text=True, timeout=600,
    )
    if proc.returncode < 0:
        how = f"killed by {signal.Signals(-proc.returncode).name}"
    else:
        how = f"exit code {proc.returncode}"
    assert proc.returncode == 0, f"child process {how}:\n{proc.stderr[-3000:]}"
    assert proc.stdout.startswith("ok "), proc.stdout
