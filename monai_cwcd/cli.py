"""The ``monai-cwcd`` command (python-fire); also ``python -m monai_cwcd``.

Thin on purpose: each command parses its arguments, calls one library function and prints the
result. Heavy imports happen inside the commands so ``monai-cwcd --help`` stays fast.

Examples::

    monai-cwcd demo-data amos                      # synthetic AMOS-layout dataset in the cache
    monai-cwcd demo-data brats --output_dir /data/brats_synth --num_cases 20
    monai-cwcd contours amos /data/amos22 --kernel_size 2 --iterations 1
    monai-cwcd contours amos /data/amos22 --adaptive --overwrite   # per-structure widths in mm
    monai-cwcd evaluate runs/amos_demo/predictions /data/amos22/labelsTs --num_classes 16
    monai-cwcd compare --quick --output_dir /tmp/compare
    monai-cwcd export-bundle runs/amos_demo                # run folder -> runs/amos_demo/export
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Callable, Sequence
from typing import Any

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
    ``~/.cache/monai_cwcd``) and is reused when already there. Prints the dataset folder.

    Args:
        dataset: ``amos``, ``brats`` or ``pengwin``.
        output_dir: write here instead of the demo cache.
        num_cases: number of cases (default: the demo's, 12 with ``output_dir``).
        seed: random seed of the synthetic cases.
        shape: image size in voxels, e.g. ``48,48,32`` (needs ``output_dir``)."""
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
    contour_width_mm: float | Sequence[float] | dict | None = None,
    adaptive: bool = False,
    fraction: float = 0.1,
    min_width_mm: float | None = None,
    max_width_mm: float | None = None,
) -> None:
    """Precompute the contour map of every label of a dataset, written beside the labels
    (``<name>_contour.nii.gz`` / ``.mha``), in parallel, skipping files already done. Exits with
    status 1 when any case failed (each failure is printed; no partial file is left).

    ``--contour_width_mm`` gives the thickness in mm (a number, ``[x,y,z]``, or ``{class: width}``)
    instead of ``--kernel_size``/``--iterations``, with each label's own spacing. ``--adaptive``
    derives one width per structure from the training labels (``fraction`` of its equivalent radius,
    clipped to ``[min_width_mm, max_width_mm]``, see ``monai_cwcd.data.adaptive_contour_widths``),
    writes them to ``<dataset_dir>/contour_widths.json`` and makes the maps with them (add
    ``--overwrite`` to replace maps made with another setting).

    Args:
        dataset: ``amos``, ``brats`` or ``pengwin`` (the layout of ``dataset_dir``).
        dataset_dir: the dataset folder (with its ``dataset.json``).
        kernel_size: erosion window of the contour (voxels).
        iterations: erosion iterations (thicker contour).
        edge_is_contour: treat the image edge as a boundary (the papers' convention at patch borders).
        num_workers: cases processed in parallel.
        overwrite: replace existing contour maps.
        contour_width_mm: thickness in mm instead of ``kernel_size``/``iterations``.
        adaptive: one width per structure from the training labels.
        fraction: with ``adaptive``: the width as this fraction of a structure's equivalent radius.
        min_width_mm: with ``adaptive``: the smallest width (default: the finest voxel spacing).
        max_width_mm: with ``adaptive``: the largest width (default: 6 x ``min_width_mm``)."""
    if adaptive and contour_width_mm is not None:
        print("error: --adaptive computes the widths; do not also pass --contour_width_mm.", file=sys.stderr)
        sys.exit(2)
    from monai_cwcd.data import (
        adaptive_contour_widths,
        load_contour_widths,
        precompute_contours,
        write_contour_widths,
    )

    if adaptive:
        result = adaptive_contour_widths(
            dataset, dataset_dir, fraction=fraction, min_width_mm=min_width_mm, max_width_mm=max_width_mm,
            num_workers=num_workers,
        )
        path = write_contour_widths(result, dataset_dir)
        rule = result["rule"]
        print(
            f"contour widths ({len(result['case_ids'])} {result['split']} cases, fraction {rule['fraction']}, "
            f"clip [{rule['min_width_mm']}, {rule['max_width_mm']}] mm): {path}"
        )
        for c, entry in result["structures"].items():
            radius = entry.get("equivalent_radius_mm")
            extra = f"r = {radius} mm, {entry['cases']} cases" if radius is not None else f"{entry['cases']} cases"
            print(f"  {c:>3} {entry['name']:<28} {entry['width_mm']:>7.3f} mm   ({extra})")
        contour_width_mm = load_contour_widths(path)
    summary = precompute_contours(
        dataset,
        dataset_dir,
        kernel_size=kernel_size,
        iterations=iterations,
        edge_is_contour=edge_is_contour,
        num_workers=num_workers,
        overwrite=overwrite,
        progress=True,
        contour_width_mm=contour_width_mm,
    )
    print(f"written {summary['written']}, skipped {summary['skipped']}, failed {summary['failed']}")
    if summary["skipped"] and (adaptive or contour_width_mm is not None) and not overwrite:
        print("note: skipped maps were made earlier, maybe with another setting; --overwrite recomputes them.")
    for path, message in summary.get("errors", {}).items():
        print(f"FAILED {path}: {message}", file=sys.stderr)
    if summary["failed"]:
        sys.exit(1)


def evaluate(
    pred_dir: str,
    label_dir: str,
    output_dir: str | None = None,
    num_classes: int | None = None,
    class_names: Sequence[str] | None = None,
    spacing_aware: bool = True,
    pattern: str | None = None,
    include_background: bool = False,
    regions: dict | None = None,
    label_remap: str | None = None,
) -> None:
    """Per-case and per-class DSC, HD95 and ASSD of the predictions in ``pred_dir`` against the
    labels in ``label_dir`` (NIfTI or MHA), written to ``output_dir`` as ``per_case.csv``,
    ``summary.json`` and a per-class bar chart PNG. Predictions and labels are paired by case id
    (``amos_0001_seg.nii.gz`` <-> ``amos_0001.nii.gz``); contour maps (``*_contour.*``) and labels of
    cases without a prediction are ignored, a prediction without a label is an error (so no
    prediction is left out unnoticed). ``output_dir`` defaults to ``<pred_dir>_evaluation`` beside
    ``pred_dir`` (``runs/amos_demo/predictions`` -> ``runs/amos_demo/predictions_evaluation``).
    ``regions`` (e.g. BraTS ``{"TC": [1, 4], "WT": [1, 2, 4], "ET": [4]}``) scores unions of labels
    instead of classes.

    Args:
        pred_dir: folder of predictions (NIfTI or MHA, searched recursively).
        label_dir: folder of labels.
        output_dir: where the outputs go (default ``<pred_dir>_evaluation``).
        num_classes: classes including background (default: from the ``dataset.json`` beside the
            labels, else the largest value + 1).
        class_names: names of classes ``0..num_classes-1`` (default: that ``dataset.json``, else ``class_<i>``).
        spacing_aware: HD95/ASSD in mm from the label header (default True); False: in voxels.
        pattern: a glob selecting the files in both folders, e.g. ``'*.nii.gz'``.
        include_background: also score class 0.
        regions: score unions of labels, e.g. BraTS ``'{"TC": [1, 4], "WT": [1, 2, 4], "ET": [4]}'``.
        label_remap: ``pengwin``: map raw PENGWIN labels (0-30) to the PENGWIN bundle's 15 classes
            before scoring (its predictions hold those classes)."""
    import os

    from monai_cwcd.evaluation import evaluate_folders

    if output_dir is None:
        output_dir = os.path.normpath(os.fspath(pred_dir)) + "_evaluation"
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
        label_remap=label_remap,
    )
    _print_json({**{k: v for k, v in summary.items() if k != "per_case"}, "output_dir": str(output_dir)})


def _text_list(value: Any, cast: Callable[[str], Any] = str) -> Any:
    """A comma-separated option given as text (``"CE,Dice+CE"``, ``"[unet,pdanet]"``, ``"48x48x32"`` for
    sizes) as a list of ``cast`` values; anything else unchanged."""
    if not isinstance(value, str):
        return value
    text = value.strip().strip("[]()")
    items = [v.strip().strip("'\"") for v in (text.replace("x", ",") if cast is int else text).split(",")]
    return [cast(v) for v in items if v]


def compare(
    output_dir: str = "compare_losses",
    docs: str | None = None,
    dataset: str | None = None,
    dataset_dir: str | None = None,
    losses: list | str | None = None,
    contour_settings: list | str | None = None,
    networks: list | str | None = None,
    include_background: bool | None = None,
    seeds: list | str | None = None,
    epochs: int | None = None,
    batch_size: int | None = None,
    learning_rate: float | None = None,
    lr_grid: list | str | None = None,
    epoch_grid: list | str | None = None,
    val_cases: int | None = None,
    spatial_size: list | str | None = None,
    widths: dict | str | None = None,
    num_train: int | None = None,
    num_test: int | None = None,
    num_cases: int | None = None,
    collapse_dsc: float | None = None,
    quick: bool | None = None,
    device: str | None = None,
    verbose: bool | None = None,
    resume: bool | None = None,
    runs_dir: str | None = None,
    num_workers: int | None = None,
    augmentation: str | None = None,
) -> None:
    """Train each network (``--networks``) with each loss under the same budget, seeds and data and write the
    comparison report (CSV + Markdown tables, Wilcoxon p-values, plots) to ``output_dir``.
    ``--quick`` is the < 3 min smoke run; ``--docs docs/results.md`` also writes the results page.
    Every other option is the argument of the same name of
    :func:`monai_cwcd.evaluation.compare_losses`; an option left out keeps that function's default.
    A list option takes a comma list (``CE,Dice+CE``) or a bracketed one (``[unet,pdanet]``).

    Args:
        output_dir: folder of the report and the saved runs (``<output_dir>/runs``).
        docs: also write the results page here (e.g. ``docs/results.md``).
        dataset: ``amos`` (synthetic unless ``--dataset_dir``) or a real-data protocol (``monai_cwcd.data.examples.EXAMPLE_PROTOCOLS``, e.g. ``pyradiomics-brain-subjects``).
        dataset_dir: a dataset folder with ``dataset.json`` (your own data).
        losses: rows, e.g. ``CE,Dice+CE,GDL,CWCD`` (``monai_cwcd.evaluation.BASELINE_LOSSES`` and ``CWCD``/``CWCE``/``SDL``);
            ``CWCD`` gives one row per ``--contour_settings`` entry (four by default).
        contour_settings: CWCD contours: ``3x1`` (kernel size x iterations), ``2mm``, ``adaptive`` or ``adaptive:0.25``.
        networks: any of ``unet,basicunet,segresnet,dynunet,attentionunet,unetr,pdanet``.
        include_background: the background in every Dice-family loss (default False).
        seeds: e.g. ``0,1,2`` (at least 2).
        epochs: matched-budget epochs.
        batch_size: training batch size.
        learning_rate: matched-budget Adam learning rate.
        lr_grid: learning rates of the budget selection, e.g. ``2e-3,5e-3``.
        epoch_grid: epochs of the budget selection, e.g. ``40,80``.
        val_cases: validation cases (from the training cases) of the budget selection.
        spatial_size: resampled grid, e.g. ``48,48,32``.
        widths: per-network widths as a Python dict, e.g. ``"{'pdanet': [16, 32, 64, 128]}"``.
        num_train: training cases.
        num_test: held-out test cases.
        num_cases: synthetic cases to generate.
        collapse_dsc: DSC below which a row can be flagged collapsed.
        quick: the CI smoke schedule (draws no conclusions).
        device: e.g. ``cpu`` or ``cuda`` (default: CUDA when available).
        verbose: one line per run.
        resume: reuse the saved runs made with identical settings (default True).
        runs_dir: where runs are saved (default ``<output_dir>/runs``).
        num_workers: train independent runs in this many processes (1/N of the threads each).
        augmentation: training augmentation of every run: ``affine`` (``monai_cwcd.evaluation.AUGMENTATIONS``)
            or ``none`` (the default)."""
    # python-fire passes a list that is not a Python literal (`[CE,Dice+CE]`, `CE,Dice+CE`, `3x1,2mm`) as text
    losses, networks, contour_settings = (_text_list(v) for v in (losses, networks, contour_settings))
    seeds, epoch_grid, spatial_size = (_text_list(v, int) for v in (seeds, epoch_grid, spatial_size))
    lr_grid = _text_list(lr_grid, float)
    given = {k: v for k, v in locals().items() if k not in ("output_dir", "docs") and v is not None}
    from monai_cwcd.evaluation import compare_losses, write_results_doc

    compare_losses(output_dir=output_dir, **given)
    print(f"results: {output_dir}/results.md")
    if docs:
        flags = " ".join(f"--{k} {v}" for k, v in given.items())
        print(f"docs: {write_results_doc(output_dir, docs, command=f'monai-cwcd compare --output_dir {output_dir} {flags}'.strip())}")


def export_bundle(source: str, output_dir: str | None = None, checkpoint: str | None = None, overwrite: bool = False) -> None:
    """Export a training run folder (``runs/amos_demo``: its saved config, every override applied,
    and its best checkpoint ``model.pt``) or a bundle (amos, brats, pengwin, or a bundle folder) to
    the MONAI model-zoo layout (``configs/``, ``models/``, ``docs/``, ``LICENSE``) in ``output_dir``
    (default for a run folder: ``<run>/export``). The checkpoint (the run's, or ``checkpoint``) is
    loaded into the network built from the exported config first: one that does not fit fails
    with one line naming both and the first differing tensor. An existing non-empty ``output_dir``
    is refused unless ``--overwrite`` (which replaces it as a whole)."""
    import os

    from monai_cwcd.bundle import RUN_CONFIG
    from monai_cwcd.bundle import export_bundle as _export

    if output_dir is None:
        if not os.path.isfile(os.path.join(source, RUN_CONFIG)):
            raise ValueError(f"'{source}' is not a run folder (no {RUN_CONFIG}): pass the output folder, e.g. "
                             f"monai-cwcd export-bundle {source} zoo/{os.path.basename(os.path.normpath(source))}.")
        output_dir = os.path.join(source, "export")
    print(_export(source, output_dir, checkpoint=checkpoint, overwrite=overwrite))


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


def _plain_help(doc: str | None) -> str | None:
    """A docstring as ``monai-cwcd <command> --help`` shows it: reST roles and double backticks
    (``:func:`x```, ````x````) become plain `x`."""
    if doc is None:
        return None
    doc = re.sub(r":(?:func|class|mod|meth|data|attr|py:\w+):`~?([^`]+)`", r"`\1`", doc)
    return doc.replace("``", "`")


for _command in COMMANDS.values():
    _command.__doc__ = _plain_help(_command.__doc__)


def _check_command_line(args: Sequence[str]) -> None:
    """Refuse, before anything runs, an unknown command, an unknown option (python-fire would run the
    command first and complain afterwards) or a missing argument, naming the closest valid name.

    Raises:
        ValueError: the message names the command, the bad or missing name and the valid ones.
    """
    import difflib
    import inspect

    if not args or args[0].startswith("-"):
        return  # `monai-cwcd`, `monai-cwcd --help`: python-fire's own output
    name, rest = args[0], list(args[1:])
    if name not in COMMANDS:
        close = difflib.get_close_matches(name, list(COMMANDS), n=1)
        hint = f"did you mean '{close[0]}'? " if close else ""
        raise ValueError(f"unknown command '{name}'; {hint}commands: {', '.join(COMMANDS)}.")
    if rest[:1] in (["--help"], ["-h"]) or "--" in rest:
        return
    params = inspect.signature(COMMANDS[name]).parameters
    positional, options, i = [], [], 0
    while i < len(rest):
        tok = rest[i]
        if tok.startswith("--") and len(tok) > 2:
            key, eq, _ = tok[2:].partition("=")
            options.append(key.replace("-", "_"))
            if not eq and i + 1 < len(rest) and not rest[i + 1].startswith("--"):
                i += 1
        else:
            positional.append(tok)
        i += 1
    kinds = {p.kind for p in params.values()}
    for key in options if inspect.Parameter.VAR_KEYWORD not in kinds else ():
        if key not in params and not (key.startswith("no") and key[2:] in params):  # fire's --noflag
            close = difflib.get_close_matches(key, list(params), n=1)
            hint = f"did you mean --{close[0]}? " if close else ""
            raise ValueError(
                f"monai-cwcd {name}: unknown option --{key}; {hint}options: {', '.join('--' + p for p in params)}."
            )
    required = [p.name for p in params.values() if p.default is inspect.Parameter.empty
                and p.kind in (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)]
    missing = [p for p in required[len(positional) :] if p not in options]
    if missing:
        usage = " ".join(p.upper() for p in required)
        raise ValueError(
            f"monai-cwcd {name}: missing argument(s) {', '.join(missing)}; usage: monai-cwcd {name} {usage} [options]"
            f" (monai-cwcd {name} --help)."
        )


def main(argv: Sequence[str] | None = None) -> None:
    """Entry point of the ``monai-cwcd`` console script.

    An error ends the command with one plain line on stderr, printed last, naming the file, key or
    value and what was expected, and exit status 1; ``MONAI_CWCD_DEBUG=1`` prints the full
    traceback before it (:mod:`monai_cwcd.errors`, ``docs/reliability.md``).
    """
    from monai_cwcd.errors import report_error, wait_for_pool_workers

    args = list(sys.argv[1:] if argv is None else argv)
    try:
        _check_command_line(args)
        if "--" not in args and any(a in ("--help", "-h") for a in args):
            # python-fire's own form of a help request: the help alone, without its "INFO: Showing help with
            # the command 'monai-cwcd -- --help'" notice
            args = [a for a in args if a not in ("--help", "-h")] + ["--", "--help"]
        fire.Fire(COMMANDS, command=args, name="monai-cwcd")
    except KeyboardInterrupt:
        print("monai-cwcd: interrupted.", file=sys.stderr, flush=True)
        raise SystemExit(130) from None
    except Exception as e:  # noqa: BLE001 - every error ends in one readable line
        report_error(e)
        wait_for_pool_workers()
        raise SystemExit(1) from None
