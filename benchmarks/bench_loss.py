"""Benchmark: CWCDLoss forward + backward against MONAI's DiceCELoss, same run.

Logits ``(2, 16, 64, 128, 128)`` float32 on CPU, class-index target ``(2, 1, 64, 128, 128)`` (float,
as MONAI's loaders give), three variants:

- ``dicece``: ``monai.losses.DiceCELoss(to_onehot_y=True, softmax=True)`` (the baseline),
- ``cwcd_on_the_fly``: ``CWCDLoss(to_onehot_y=True, softmax=True)``, contour computed from the target,
- ``cwcd_precomputed``: the same loss given the contour (``label_contour`` of the target, uint8
  ``(2, 1, *)``, computed once outside the timed region, as ``ContourWeightMapd`` would).

Time: median over ``--repeats`` of one forward + backward, variants interleaved round-robin in one
process after one warm-up call each, as wall time and as CPU time of the process
(``time.process_time``, all threads): on a machine shared with other jobs the wall time mostly
measures the scheduler, the CPU time still measures the work. Peak memory: each variant runs once in a fresh subprocess with
``MALLOC_MMAP_THRESHOLD_`` fixed at 64 KiB (so every large tensor is its own mmap, returned to the OS
when freed); the peak is the growth of ``resource.getrusage(RUSAGE_SELF).ru_maxrss`` across one
forward + backward, i.e. the high-water mark of memory the loss needs beyond its inputs.

Run: ``python benchmarks/bench_loss.py [--repeats 5] [--shape 2 16 64 128 128] [--no-memory]``
(``--no-memory`` skips the memory subprocesses, e.g. to compare two versions of the package by CPU
time: put the one to measure first on ``PYTHONPATH``).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time

import torch

VARIANTS = ("dicece", "cwcd_on_the_fly", "cwcd_precomputed")


def make_inputs(shape: tuple[int, ...], seed: int = 0):
    """Logits (requires grad), float class-index target and its precomputed uint8 contour."""
    from monai_cwcd.transforms.functional import label_contour

    gen = torch.Generator().manual_seed(seed)
    b, c, *spatial = shape
    logits = torch.randn(shape, generator=gen).requires_grad_(True)
    # blocky labels so that the contour is a realistic fraction of the volume
    coarse = torch.randint(0, c, (b, 1, *(max(s // 8, 1) for s in spatial)), generator=gen, dtype=torch.uint8)
    target = coarse
    for dim, s in enumerate(spatial):
        target = target.repeat_interleave(8, dim=2 + dim).narrow(2 + dim, 0, s)
    target = target.float().contiguous()
    contour = label_contour(target, len(spatial)).to(torch.uint8)
    return logits, target, contour


def make_loss(variant: str):
    from monai.losses import DiceCELoss

    from monai_cwcd.losses import CWCDLoss

    if variant == "dicece":
        return DiceCELoss(to_onehot_y=True, softmax=True)
    return CWCDLoss(to_onehot_y=True, softmax=True)


def step(variant: str, loss_fn, logits, target, contour) -> tuple[float, float]:
    """One forward + backward; returns the wall time and the process CPU time in seconds."""
    logits.grad = None
    t0, c0 = time.perf_counter(), time.process_time()
    if variant == "cwcd_precomputed":
        loss = loss_fn(logits, target, contour)
    else:
        loss = loss_fn(logits, target)
    loss.backward()
    return time.perf_counter() - t0, time.process_time() - c0


def measure_memory(variant: str, shape: tuple[int, ...]) -> float:
    """Peak extra memory (MiB) of one forward + backward, in this (fresh) process."""
    logits, target, contour = make_inputs(shape)
    loss_fn = make_loss(variant)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    step(variant, loss_fn, logits, target, contour)
    after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return (after - before) / 1024.0  # ru_maxrss is in KiB on Linux


def memory_in_subprocess(variant: str, shape: tuple[int, ...]) -> float:
    env = dict(os.environ, MALLOC_MMAP_THRESHOLD_="65536")
    cmd = [sys.executable, os.path.abspath(__file__), "--memory-child", variant, "--shape", *map(str, shape)]
    out = subprocess.run(cmd, env=env, check=True, capture_output=True, text=True).stdout
    return float(json.loads(out.strip().splitlines()[-1])["peak_mib"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--shape", type=int, nargs="+", default=[2, 16, 64, 128, 128])
    parser.add_argument("--no-memory", action="store_true", help="time only, no memory subprocesses")
    parser.add_argument("--memory-child", choices=VARIANTS, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    shape = tuple(args.shape)
    if args.memory_child:
        print(json.dumps({"peak_mib": measure_memory(args.memory_child, shape)}))
        return

    print(f"shape {shape}, torch {torch.__version__}, {torch.get_num_threads()} threads, "
          f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
          f"load average at start {os.getloadavg()[0]:.1f} (other jobs inflate absolute times; the ratios "
          "are measured in one interleaved run)")
    # memory first: Linux carries a process's ru_maxrss across fork + exec, so the children must be
    # started while this process is still small (before it allocates the inputs)
    mem = {v: float("nan") if args.no_memory else memory_in_subprocess(v, shape) for v in VARIANTS}
    logits, target, contour = make_inputs(shape)
    losses = {v: make_loss(v) for v in VARIANTS}
    times: dict[str, list[float]] = {v: [] for v in VARIANTS}
    cpu: dict[str, list[float]] = {v: [] for v in VARIANTS}
    for v in VARIANTS:  # warm-up
        step(v, losses[v], logits, target, contour)
    for _ in range(args.repeats):
        for v in VARIANTS:
            wall, used = step(v, losses[v], logits, target, contour)
            times[v].append(wall)
            cpu[v].append(used)
    med = {v: statistics.median(times[v]) for v in VARIANTS}
    med_cpu = {v: statistics.median(cpu[v]) for v in VARIANTS}
    for v in VARIANTS:
        peak = "" if args.no_memory else f"  peak +{mem[v]:7.1f} MiB"
        print(f"{v:18s} fwd+bwd median {med[v] * 1e3:8.1f} ms  (min {min(times[v]) * 1e3:7.1f})  "
              f"CPU {med_cpu[v] * 1e3:8.1f} ms{peak}")
    for v in VARIANTS[1:]:
        peak = "" if args.no_memory else f"   peak memory {mem[v] / mem['dicece']:.2f}x"
        print(f"ratio {v:18s} time {med[v] / med['dicece']:.2f}x   CPU time {med_cpu[v] / med_cpu['dicece']:.2f}x{peak}")
    print(f"load average at end {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
