"""Compare segmentation losses under one budget and write the report (issue 6).

Thin wrapper over :func:`monai_cwcd.evaluation.compare_losses` (the same function serves
``monai-cwcd compare``). Examples, from the repository root::

    # CI smoke test of the whole pipeline (< 3 min on 2 CPUs, no conclusions)
    python benchmarks/compare_losses.py --quick --output_dir /tmp/compare_quick
    # the full comparison on AMOS-like synthetic data, refreshing docs/results.md
    python benchmarks/compare_losses.py --output_dir runs/compare_amos --docs docs/results.md

Each finished run is saved at once in ``<output_dir>/runs/``; starting the same command again
after an interruption reuses those runs and trains only the missing ones (``--no_resume``
retrains everything).
"""

from __future__ import annotations

import argparse
import os
import shlex
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from monai_cwcd.evaluation import BASELINE_LOSSES, compare_losses, write_results_doc  # noqa: E402


def _ints(text: str) -> tuple[int, ...]:
    return tuple(int(v) for v in text.replace("x", ",").split(",") if v)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--dataset", default="amos", choices=["amos", "brats", "pengwin"])
    p.add_argument("--dataset_dir", default=None, help="dataset folder; default: the synthetic demo dataset")
    p.add_argument("--output_dir", default="compare_losses")
    p.add_argument("--losses", default=None, help=f"comma list of {', '.join((*BASELINE_LOSSES, 'CWCD'))}")
    p.add_argument("--contour_settings", default="2x1,3x1,3x2,3x3", help="CWCD kernel x iterations list")
    p.add_argument("--seeds", default="0,1,2")
    p.add_argument("--epochs", type=int, default=40)
    p.add_argument("--batch_size", type=int, default=2)
    p.add_argument("--learning_rate", type=float, default=2e-3)
    p.add_argument("--spatial_size", default="48,48,32")
    p.add_argument("--channels", default="16,32,64,128,256", help="U-Net widths")
    p.add_argument("--pdanet_features", default="8,16,32,64")
    p.add_argument("--no_pdanet", action="store_true")
    p.add_argument("--num_train", type=int, default=16)
    p.add_argument("--num_test", type=int, default=10)
    p.add_argument("--quick", action="store_true", help="CI mode: 1 tiny epoch, 2 seeds, no conclusions")
    p.add_argument("--device", default=None)
    p.add_argument("--no_resume", action="store_true", help="retrain every run (default: reuse finished runs in output_dir/runs)")
    p.add_argument("--docs", default=None, help="also write this results page (e.g. docs/results.md)")
    a = p.parse_args(argv)
    settings = [tuple(int(v) for v in s.split("x")) for s in a.contour_settings.split(",")]
    compare_losses(
        dataset=a.dataset, dataset_dir=a.dataset_dir, output_dir=a.output_dir,
        losses=a.losses.split(",") if a.losses else None, contour_settings=settings, seeds=_ints(a.seeds),
        epochs=a.epochs, batch_size=a.batch_size, learning_rate=a.learning_rate, spatial_size=_ints(a.spatial_size),
        channels=_ints(a.channels), pdanet=not a.no_pdanet, pdanet_features=_ints(a.pdanet_features),
        num_train=a.num_train, num_test=a.num_test, quick=a.quick, device=a.device, resume=not a.no_resume,
    )
    print(f"results: {os.path.join(a.output_dir, 'results.md')}")
    if a.docs:
        cmd = "python benchmarks/compare_losses.py " + " ".join(shlex.quote(x) for x in (argv if argv is not None else sys.argv[1:]))
        print(f"docs: {write_results_doc(a.output_dir, a.docs, command=cmd)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
