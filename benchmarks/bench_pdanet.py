"""Benchmark PDANet against MONAI's UNet and SwinUNETR on CPU.

Per model: forward + backward time of one ``1 x 1 x 64 x 128 x 128`` sample and the peak resident
memory it adds, plus the parameter count. Every model runs in a fresh subprocess, so the peak is
that model's own: ``ru_maxrss`` after the timed iterations minus ``ru_maxrss`` right before the
first forward (model and input already built). The result table replaces the "PDANet" section of
``docs/benchmarks.md`` (atomically), unless ``--no-write``.

Usage::

    python benchmarks/bench_pdanet.py [--repeats 3] [--threads N] [--models pdanet,unet,swinunetr]
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
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs" / "benchmarks.md"
HEADER = "## PDANet (`benchmarks/bench_pdanet.py`)"
SHAPE = (1, 1, 64, 128, 128)
OUT_CHANNELS = 16  # AMOS: 15 organs + background
MODELS = {
    "pdanet": "PDANet (paper text: features 16-128, PDM width 32)",
    "pdanet_pdm99": "PDANet, `pdm_channels=99` (near the paper's 31.48M)",
    "unet": "MONAI UNet (16-256, strides 2x4, BatchNorm, ReLU, num_res_units=0)",
    "swinunetr": "MONAI SwinUNETR (feature_size=48)",
}


def build(name: str):
    from monai.networks.nets import SwinUNETR, UNet

    from monai_cwcd.networks.nets import PDANet

    if name == "pdanet":
        return PDANet(3, 1, OUT_CHANNELS)
    if name == "pdanet_pdm99":
        return PDANet(3, 1, OUT_CHANNELS, pdm_channels=99)
    if name == "unet":
        return UNet(3, 1, OUT_CHANNELS, channels=(16, 32, 64, 128, 256), strides=(2, 2, 2, 2), num_res_units=0,
                    norm="batch", act="relu")
    if name == "swinunetr":
        return SwinUNETR(in_channels=1, out_channels=OUT_CHANNELS, feature_size=48, spatial_dims=3)
    raise ValueError(f"unknown model {name!r}, expected one of {sorted(MODELS)}.")


def worker(name: str, repeats: int, threads: int) -> dict:
    import torch

    torch.set_num_threads(threads)
    torch.manual_seed(0)
    net = build(name).train()
    params = sum(p.numel() for p in net.parameters())
    x = torch.rand(*SHAPE)
    target = torch.randint(0, OUT_CHANNELS, (SHAPE[0], *SHAPE[2:]))
    loss_fn = torch.nn.CrossEntropyLoss()
    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    times = []
    for i in range(repeats + 1):  # first iteration is a warm-up
        net.zero_grad(set_to_none=True)
        t0 = time.perf_counter()
        loss_fn(net(x), target).backward()
        if i > 0:
            times.append(time.perf_counter() - t0)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return {"model": name, "params": params, "times": times, "peak_mib": (peak - base) / 1024}


def section(results: list[dict], args: argparse.Namespace, load_start: tuple[float, float, float]) -> str:
    import monai
    import torch

    rows = [
        "| model | parameters | fwd+bwd s/sample (median) | all runs (s) | peak memory added (MiB) | time vs PDANet |",
        "|---|---:|---:|---|---:|---:|",
    ]
    ref = next((r for r in results if r["model"] == "pdanet"), results[0])
    ref_t = statistics.median(ref["times"])
    for r in results:
        med = statistics.median(r["times"])
        rows.append(
            f"| {MODELS[r['model']]} | {r['params'] / 1e6:.2f}M | {med:.2f} | "
            f"{', '.join(f'{t:.2f}' for t in r['times'])} | {r['peak_mib']:.0f} | {med / ref_t:.2f}x |"
        )
    load = os.getloadavg()
    return "\n".join(
        [
            HEADER,
            "",
            f"Command: `python benchmarks/bench_pdanet.py --repeats {args.repeats} --threads {args.threads}"
            f" --models {','.join(args.models)}`",
            f"Machine: {platform.machine()}, {os.cpu_count()} CPU cores, {platform.platform()}, Python "
            f"{platform.python_version()}, torch {torch.__version__}, MONAI {monai.__version__}; "
            f"load average at the start {load_start[0]:.1f} / {load_start[1]:.1f} / {load_start[2]:.1f}, at the end "
            f"{load[0]:.1f} / {load[1]:.1f} / {load[2]:.1f} (1/5/15 min; the benchmark itself adds up to {args.threads}).",
            f"Input {SHAPE}, {OUT_CHANNELS} output channels, training mode, cross-entropy loss, one warm-up "
            f"iteration then {args.repeats} timed forward+backward passes. Peak memory: each model in a fresh "
            "subprocess, `ru_maxrss` after the timed passes minus `ru_maxrss` right before the first forward "
            "(model, input and optimiser-free state already allocated).",
            "",
            *rows,
            "",
            (
                "Note: other jobs were running when the benchmark started (1-min load average above 0.5); "
                "re-run on a quiet machine before quoting absolute times. The ratios are from the same run."
                if load_start[0] > 0.5
                else "Quiet machine: nothing else was running when the benchmark started. The ratios are from the same run."
            ),
            "",
        ]
    )


def write_section(text: str) -> None:
    doc = DOCS.read_text()
    start = doc.index(HEADER)
    nxt = doc.find("\n## ", start + len(HEADER))
    end = len(doc) if nxt == -1 else nxt + 1
    new = doc[:start] + text + ("\n" if nxt != -1 else "") + doc[end:]
    fd, tmp = tempfile.mkstemp(dir=DOCS.parent, prefix=".benchmarks.", suffix=".md")
    with os.fdopen(fd, "w") as f:
        f.write(new)
    os.replace(tmp, DOCS)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--models", type=lambda s: s.split(","), default=list(MODELS))
    parser.add_argument("--no-write", action="store_true", help="print the section, do not edit docs/benchmarks.md")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(worker(args.worker, args.repeats, args.threads)))
        return
    load_start = os.getloadavg()
    results = []
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    for name in args.models:
        cmd = [sys.executable, __file__, "--worker", name, "--repeats", str(args.repeats), "--threads", str(args.threads)]
        out = subprocess.run(cmd, env=env, check=True, capture_output=True, text=True).stdout
        results.append(json.loads(out.strip().splitlines()[-1]))
        print(results[-1], flush=True)
    text = section(results, args, load_start)
    print(text)
    if not args.no_write:
        write_section(text)


if __name__ == "__main__":
    main()
