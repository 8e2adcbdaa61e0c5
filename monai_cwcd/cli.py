"""The ``monai-cwcd`` command (python-fire); also ``python -m monai_cwcd``.

Thin on purpose: each command parses its arguments, calls one library function and prints the
result. Heavy imports happen inside the commands so ``monai-cwcd --help`` stays fast.

Examples::

    monai-cwcd demo-data amos                      # synthetic AMOS-layout dataset in the cache
    monai-cwcd demo-data brats --output_dir /data/brats_synth --num_cases 20
    monai-cwcd contours amos /data/amos22 --kernel_size 2 --iterations 1
    monai-cwcd evaluate preds/ labels/ eval_out/ --num_classes 16
    monai-cwcd compare --quick --output_dir /tmp/compare
    monai-cwcd export-bundle amos /tmp/amos_bundle --checkpoint runs/amos/model.pt
"""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence

import fire

__all__ = ["main", "demo_data", "contours", "evaluate", "compare", "export_bundle"]


def _print_json(obj) -> None:
    print(json.dumps(obj, indent=2, default=str))


def demo_data(
    dataset: str = "amos",
    output_dir: str | None = None,
    num_cases: int | None = None,
    seed: int = 0,
    shape: Sequence[int] | None = None,
) -> None:
    """Write a deterministic synthetic dataset in the real layout of ``dataset`` (amos, brats,
    pengwin). Without ``output_dir`` it goes to the demo cache (``$MONAI_CWCD_CACHE`` or
    ``~/.cache/monai_cwcd``) and is reused when already there. Prints the dataset folder."""
    from monai_cwcd.data import ensure_demo_dataset, write_synthetic_dataset

    if output_dir is None:
        if shape is not None:
            raise ValueError("--shape needs --output_dir (the demo cache holds the default shape only).")
        path = ensure_demo_dataset(dataset, num_cases=num_cases, seed=seed)
    else:
        path = write_synthetic_dataset(dataset, output_dir, num_cases or 12, seed=seed, shape=shape)
    print(path)


def contours(
    dataset: str,
    dataset_dir: str,
    kernel_size: int = 3,
    iterations: int = 1,
    edge_is_contour: bool = False,
    num_workers: int = 2,
    overwrite: bool = False,
) -> None:
    """Precompute the contour map of every label of a dataset, written beside the labels
    (``<name>_contour.nii.gz`` / ``.mha``), in parallel, skipping files already done. Exits with
    status 1 when any case failed (each failure is printed; no partial file is left)."""
    from monai_cwcd.data import precompute_contours

    summary = precompute_contours(
        dataset,
        dataset_dir,
        kernel_size=kernel_size,
        iterations=iterations,
        edge_is_contour=edge_is_contour,
        num_workers=num_workers,
        overwrite=overwrite,
        progress=True,
    )
    print(f"written {summary['written']}, skipped {summary['skipped']}, failed {summary['failed']}")
    for path, message in summary.get("errors", {}).items():
        print(f"FAILED {path}: {message}", file=sys.stderr)
    if summary["failed"]:
        sys.exit(1)


def evaluate(
    pred_dir: str,
    label_dir: str,
    output_dir: str,
    num_classes: int | None = None,
    class_names: Sequence[str] | None = None,
    spacing_aware: bool = True,
    pattern: str | None = None,
    include_background: bool = False,
    regions: dict | None = None,
) -> None:
    """Per-case and per-class DSC, HD95 and ASSD of the predictions in ``pred_dir`` against the
    labels in ``label_dir`` (NIfTI or MHA), written to ``output_dir`` as ``per_case.csv``,
    ``summary.json`` and a per-class bar chart PNG. ``regions`` (e.g. BraTS
    ``{"TC": [1, 4], "WT": [1, 2, 4], "ET": [4]}``) scores unions of labels instead of classes."""
    from monai_cwcd.evaluation import evaluate_folders

    summary = evaluate_folders(
        pred_dir,
        label_dir,
        output_dir,
        num_classes=num_classes,
        class_names=class_names,
        spacing_aware=spacing_aware,
        pattern=pattern,
        include_background=include_background,
        regions=regions,
    )
    _print_json({k: v for k, v in summary.items() if k != "per_case"})


def compare(output_dir: str = "compare_losses", docs: str | None = None, **kwargs) -> None:
    """Train one network with each loss under the same budget, seeds and data and write the
    comparison report (CSV + Markdown tables, Wilcoxon p-values, plots) to ``output_dir``.
    Keyword arguments are those of :func:`monai_cwcd.evaluation.compare_losses` (``--quick`` for
    the < 3 min smoke run); ``--docs docs/results.md`` also writes the results page."""
    from monai_cwcd.evaluation import compare_losses, write_results_doc

    compare_losses(output_dir=output_dir, **kwargs)
    print(f"results: {output_dir}/results.md")
    if docs:
        flags = " ".join(f"--{k} {v}" for k, v in kwargs.items())
        print(f"docs: {write_results_doc(output_dir, docs, command=f'monai-cwcd compare --output_dir {output_dir} {flags}'.strip())}")


def export_bundle(name: str, output_dir: str, checkpoint: str | None = None) -> None:
    """Export bundle ``name`` (amos, brats, pengwin, or a bundle folder) to the MONAI model-zoo
    layout (``configs/``, ``models/``, ``docs/``, ``LICENSE``) in ``output_dir``, with an optional
    trained ``checkpoint`` copied to ``models/model.pt``."""
    from monai_cwcd.bundle import export_bundle as _export

    print(_export(name, output_dir, checkpoint=checkpoint))


def fetch_example(name: str, cache_dir: str | None = None, force: bool = False) -> None:
    """Download the pinned source distribution that ships the real example ``name``
    (totalsegmentator-ct, totalsegmentator-mr, pyradiomics-brain, pyradiomics-lung) from PyPI,
    verify its sha256 and convert the example's files to the bundles' NIfTI layout in the cache
    (``$MONAI_CWCD_CACHE`` or ``~/.cache/monai_cwcd``). Prints the dataset folder; exits with
    status 1 and one line on stderr when offline or the checksum differs. TotalSegmentator labels
    are that model's output, not manual annotation."""
    from monai_cwcd.data.examples import ExampleDownloadError
    from monai_cwcd.data.examples import fetch_example as _fetch

    try:
        print(_fetch(name, cache_dir=cache_dir, force=force))
    except ExampleDownloadError as e:
        print(f"monai-cwcd fetch-example: {e}", file=sys.stderr)
        sys.exit(1)


COMMANDS = {
    "demo-data": demo_data,
    "contours": contours,
    "evaluate": evaluate,
    "compare": compare,
    "export-bundle": export_bundle,
    "fetch-example": fetch_example,
}


def main(argv: Sequence[str] | None = None) -> None:
    """Entry point of the ``monai-cwcd`` console script."""
    fire.Fire(COMMANDS, command=list(argv) if argv is not None else None, name="monai-cwcd")
