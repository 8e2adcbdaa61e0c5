"""Benchmark the comparison tool's ``num_workers``: runs per hour of N one-process-each workers
against one process using every thread, on the same runs.

Both settings train the same comparison from scratch (``resume=False``, their own output folders
in a temporary directory): synthetic AMOS, the U-Net, Dice+CE and CWCD (3, 1), ``--seeds`` seeds,
``--epochs`` epochs on ``--num_train`` cases of 48 x 48 x 32 voxels, batch 2, no budget selection.
The synthetic cases are generated before the timings. The wall clock of each ``compare_losses`` call
includes loading the cases, the workers' start-up
(``spawn``: one Python process per worker importing torch and MONAI) and the report. The script
checks that both settings saved the same runs, then replaces the "Worker processes" section of
``docs/benchmarks.md`` (atomically) unless ``--no-write``.

Usage::

    python benchmarks/bench_workers.py [--workers 2] [--seeds 4] [--epochs 30] [--num_train 8]
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
DOCS = ROOT / "docs" / "benchmarks.md"
HEADER = "## Worker processes of the comparison (`benchmarks/bench_workers.py`)"


def timed(output_dir: Path, num_workers: int, args: argparse.Namespace) -> tuple[float, list[str]]:
    """Wall clock (s) of one comparison and the names of the runs it saved."""
    from monai_cwcd.evaluation import compare_losses

    t = time.perf_counter()
    compare_losses(
        "amos", output_dir=str(output_dir), losses=["Dice+CE", "CWCD"], contour_settings=[(3, 1)], networks=("unet",),
        seeds=tuple(range(args.seeds)), epochs=args.epochs, num_train=args.num_train, num_test=2, batch_size=2,
        resume=False, verbose=False, num_workers=num_workers,
    )
    return time.perf_counter() - t, sorted(p.name for p in (output_dir / "runs").rglob("*.json"))


def section(args: argparse.Namespace, one: float, par: float, n_runs: int, threads: int, load_start, load_end) -> str:
    import torch

    return "\n".join([
        HEADER,
        "",
        f"Command: `python benchmarks/bench_workers.py --workers {args.workers} --seeds {args.seeds} --epochs "
        f"{args.epochs} --num_train {args.num_train}`",
        f"Machine: {os.cpu_count()} CPU cores ({platform.machine()}), Python {platform.python_version()}, torch "
        f"{torch.__version__}; load average at the start {load_start[0]:.2f} / {load_start[1]:.2f} / {load_start[2]:.2f}, "
        f"at the end {load_end[0]:.2f} / {load_end[1]:.2f} / {load_end[2]:.2f} (1/5/15 min).",
        f"Task: the same {n_runs} runs (synthetic AMOS, U-Net, Dice+CE and CWCD (3, 1), {args.seeds} seeds, "
        f"{args.epochs} epochs on {args.num_train} cases of 48 x 48 x 32, batch 2), trained from scratch by each "
        "setting; wall clock of the whole `compare_losses` call (loading, worker start-up, report).",
        "",
        "| setting | wall clock (s) | runs per hour | vs one process |",
        "|---|---:|---:|---:|",
        f"| one process, {threads} thread(s) | {one:.1f} | {3600 * n_runs / one:.0f} | 1.00x |",
        f"| {args.workers} worker processes, {max(1, threads // args.workers)} thread(s) each | {par:.1f} | "
        f"{3600 * n_runs / par:.0f} | {one / par:.2f}x |",
        "",
        "Both settings saved the same runs (checked by the script). The script rewrites this section; `--no-write` only "
        "prints it. Worker start-up (a few seconds per worker) weighs on short runs: use runs of a minute or more.",
        "",
    ])


def write_section(text: str) -> None:
    doc = DOCS.read_text()
    if HEADER in doc:
        start = doc.index(HEADER)
        nxt = doc.find("\n## ", start + len(HEADER))
        doc = doc[:start] + text + (doc[nxt + 1:] if nxt != -1 else "")
    else:
        doc = doc.rstrip("\n") + "\n\n" + text
    fd, tmp = tempfile.mkstemp(dir=DOCS.parent, prefix=".benchmarks.", suffix=".md")
    with os.fdopen(fd, "w") as f:
        f.write(doc)
    os.replace(tmp, DOCS)


def main(argv: list[str] | None = None) -> int:
    import torch

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--seeds", type=int, default=4)
    p.add_argument("--epochs", type=int, default=30)
    p.add_argument("--num_train", type=int, default=8)
    p.add_argument("--no-write", action="store_true", help="print the section, do not edit docs/benchmarks.md")
    args = p.parse_args(argv)
    from monai_cwcd.data import ensure_demo_dataset

    ensure_demo_dataset("amos", num_cases=args.num_train + 1 + 2)  # generated once, before either timing
    threads = torch.get_num_threads()
    load_start = os.getloadavg()
    with tempfile.TemporaryDirectory() as tmp:
        one, runs_one = timed(Path(tmp) / "one", 1, args)
        par, runs_par = timed(Path(tmp) / "par", args.workers, args)
    if runs_one != runs_par:
        print("the two settings saved different runs", file=sys.stderr)
        return 1
    text = section(args, one, par, len(runs_one), threads, load_start, os.getloadavg())
    print(text)
    if not args.no_write:
        write_section(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
