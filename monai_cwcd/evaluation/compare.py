"""Train networks with a list of losses under one budget, seeds and data, select each row's
learning rate and epochs on a validation split of the training cases, and compare them on held-out
cases (issues 6 and 11; journal paper Tables I, II, IV, V and Fig. 8 at CPU scale).

Protocol (:func:`compare_losses`):

1. data: a bundle dataset (``amos``/``brats``/``pengwin`` layout, synthetic by default) or a real
   example of :mod:`monai_cwcd.data.examples` with its own leakage-free split (axial slabs of one CT,
   or train-on-one-subject/test-on-the-other, both directions = 2 folds). Every case is z-score
   normalised, resampled to one fixed grid and cached in memory with the maps the losses need;
2. rows (:func:`~monai_cwcd.evaluation.configs.default_configs`): each loss with all its settings
   written out (an argument a loss does not take is an error), one ``include_background`` for every
   Dice-family loss; ``Dice+CE`` and ``CWCD`` with every network of the model-independence table;
3. budget selection (optional, ``lr_grid``/``epoch_grid``): each row trains once (first seed) on the
   training cases minus ``val_cases`` of them, is scored on those validation cases after each epoch
   of ``epoch_grid`` for each learning rate of ``lr_grid``, and keeps the best (lr, epochs) by mean
   validation DSC. The test cases are never used for it;
4. every row and seed trains from the same initial weights and case order (``set_determinism``)
   with Adam, without augmentation or with one of :data:`AUGMENTATIONS` (drawn per step from the
   seed; the loss maps are recomputed from each augmented label); the model after the ``matched``
   budget (``learning_rate``, ``epochs``, the same for every row) and after the row's ``selected``
   budget predicts every test case (full volume, argmax) and
   :func:`~monai_cwcd.evaluation.metrics.segmentation_metrics` scores it.

Every run is saved at once in ``output_dir/runs`` and reused by a re-run with the same settings. The
report (tables, paired tests, detection rates, collapse flags, plots, claims) is written by
:mod:`monai_cwcd.evaluation.report`.
"""

from __future__ import annotations

import hashlib
import inspect
import json
import math
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
import torch.nn as nn

from monai_cwcd.evaluation._io import write_json
from monai_cwcd.evaluation.configs import (
    BASELINE_LOSSES,
    CONTOUR_LOSSES,
    NETWORKS,
    RunConfig,
    _BoundaryDice,
    build_loss,
    adaptive_fraction,
    build_network,
    contour_widths_from_labels,
    class_weights,
    count_parameters,
    default_configs,
    network_settings,
)
from monai_cwcd.evaluation.metrics import segmentation_metrics

__all__ = ["DATASETS", "BASELINE_LOSSES", "NETWORKS", "AUGMENTATIONS", "RunConfig", "QUICK", "default_configs", "load_tensors",
           "build_augmentation", "compare_losses", "run_plan"]

AMOS_NAMES = ["background", "Sp", "RK", "LK", "Ga", "Es", "Li", "St", "Ao", "Po", "Pa", "RAG", "LAG", "Du", "Bl", "P/U"]

#: per bundle dataset: classes after label preparation, class names, evaluated regions.
DATASETS: dict[str, dict[str, Any]] = {
    "amos": {"num_classes": 16, "class_names": AMOS_NAMES, "regions": None},
    # BraTS labels 0/1/2/4 are trained as indices 0/1/2/3; metrics on the nested regions.
    "brats": {"num_classes": 4, "class_names": ["background", "NCR", "ED", "ET"], "regions": {"TC": [1, 3], "WT": [1, 2, 3], "ET": [3]}},
    "pengwin": {"num_classes": 15, "class_names": ["background"] + [f"F{i}" for i in range(1, 15)], "regions": None},
}

#: training augmentations of :func:`compare_losses` (``augmentation=``): name -> what it draws per case
#: and step. No flips: left and right structures (kidneys, adrenal glands) keep their side.
AUGMENTATIONS: dict[str, str] = {
    "affine": "MONAI RandAffined on image and label (prob 1; in-plane rotation up to ±15°, in-plane scaling ±15 %, "
    "translation up to ±8 voxels in-plane and ±2 across slices; bilinear image, nearest label, border padding), then "
    "RandScaleIntensityd (±10 %) and RandShiftIntensityd (±0.1), each with prob 0.5",
}


def build_augmentation(name: str, seed: int) -> Callable[[dict[str, Any]], dict[str, Any]]:
    """The MONAI dictionary transform of :data:`AUGMENTATIONS` ``name`` (keys ``image``, ``label``; one
    3D case, channel first), its random state seeded with ``seed``.

    Raises:
        ValueError: unknown ``name``.
    """
    from monai.transforms import Compose, RandAffined, RandScaleIntensityd, RandShiftIntensityd

    if name not in AUGMENTATIONS:
        raise ValueError(f"augmentation must be one of {sorted(AUGMENTATIONS)}, got {name!r}.")
    xform = Compose([
        RandAffined(keys=["image", "label"], prob=1.0, rotate_range=(0.0, 0.0, math.radians(15)), scale_range=(0.15, 0.15, 0.0),
                    translate_range=(8, 8, 2), mode=("bilinear", "nearest"), padding_mode="border"),
        RandScaleIntensityd(keys="image", factors=0.1, prob=0.5),
        RandShiftIntensityd(keys="image", offsets=0.1, prob=0.5),
    ])
    xform.set_random_state(seed=seed)
    return xform


def _augment_batch(xform: Callable, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``xform`` applied to each case of a batch (``x`` (B, C, *spatial) float, ``y`` (B, 1, *spatial) long)."""
    from monai.utils import convert_to_tensor

    outs = [xform({"image": x[i], "label": y[i]}) for i in range(x.shape[0])]
    xa = torch.stack([convert_to_tensor(o["image"], track_meta=False) for o in outs]).float()
    ya = torch.stack([convert_to_tensor(o["label"], track_meta=False) for o in outs]).round().long()
    return xa, ya


# ---------------------------------------------------------------------------------------------
# data


def load_tensors(
    dataset: str,
    dataset_dir: str,
    split: str,
    spatial_size: Sequence[int],
    max_cases: int | None = None,
    split_counts: Sequence[int] | None = None,
) -> dict[str, Any]:
    """Load a split of a bundle dataset once, normalise, resample to ``spatial_size``.

    Returns:
        ``{"image": (N, C_in, *spatial) float, "label": (N, 1, *spatial) long, "case_id": [...],
        "spacing": [(sx, sy, sz), ...]}``, spacing in mm of the resampled grid.

    Raises:
        ValueError: unknown dataset or an empty split.
    """
    from monai.transforms import Compose, EnsureChannelFirstd, LoadImaged, MapLabelValued

    from monai_cwcd.data import load_datalist

    if dataset not in DATASETS:
        raise ValueError(f"dataset must be one of {sorted(DATASETS)}, got {dataset!r}.")
    items = list(load_datalist(dataset, dataset_dir, split, split_counts=split_counts))
    if not items:
        raise ValueError(f"the {split!r} split of {dataset_dir!r} ({dataset}) is empty.")
    items = items[:max_cases] if max_cases else items
    steps: list[Any] = [LoadImaged(keys=["image", "label"], image_only=True), EnsureChannelFirstd(keys=["image", "label"])]
    if dataset == "brats":
        steps.append(MapLabelValued(keys="label", orig_labels=[4], target_labels=[3]))
    if dataset == "pengwin":
        from monai_cwcd.data import PengwinLabelRemapd

        steps.append(PengwinLabelRemapd(keys="label"))
    load = Compose(steps)
    return stack_cases([(str(it.get("case_id", i)), *_pair(load(dict(it)))) for i, it in enumerate(items)], spatial_size)


def _pair(d: Mapping[str, Any]) -> tuple[Any, Any]:
    return d["image"], d["label"]


def stack_cases(cases: Sequence[tuple[str, Any, Any]], spatial_size: Sequence[int]) -> dict[str, Any]:
    """``[(case_id, image (C, *spatial) MetaTensor, label (1, *spatial))]`` -> z-score normalised
    (per channel), resampled (trilinear image, nearest label) tensors, as :func:`load_tensors`."""
    from monai.transforms import Compose, EnsureTyped, NormalizeIntensityd, Resized

    xform = Compose([
        NormalizeIntensityd(keys="image", channel_wise=True),
        Resized(keys=["image", "label"], spatial_size=tuple(int(s) for s in spatial_size), mode=("trilinear", "nearest")),
        EnsureTyped(keys=["image", "label"]),
    ])
    images, labels, spacing, ids = [], [], [], []
    for case, image, label in cases:
        d = xform({"image": image, "label": label})
        images.append(d["image"].as_tensor().float())
        labels.append(d["label"].as_tensor().round().long())
        spacing.append(tuple(float(s) for s in d["label"].pixdim))
        ids.append(case)
    return {"image": torch.stack(images), "label": torch.stack(labels), "case_id": ids, "spacing": spacing}


def _subset(data: Mapping[str, Any], idx: Sequence[int]) -> dict[str, Any]:
    idx = list(idx)
    return {"image": data["image"][idx], "label": data["label"][idx], "case_id": [data["case_id"][i] for i in idx],
            "spacing": [data["spacing"][i] for i in idx]}


def prepare_folds(
    dataset: str, dataset_dir: str | None, spatial_size: Sequence[int], num_train: int | None, num_test: int | None,
    num_cases: int | None,
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """The train/test folds and the dataset description (classes, names, regions, source, protocol).

    Each fold: ``{"name", "train", "test"}`` (tensor dicts); a bundle dataset gives one fold.

    Raises:
        ValueError: unknown dataset, bad counts.
    """
    from monai_cwcd.data import examples

    if dataset in examples.EXAMPLE_PROTOCOLS:
        folds, spec = examples.example_folds(dataset, dataset_dir, spatial_size)
    else:
        spec = DATASETS.get(dataset)
        if spec is None:
            raise ValueError(f"dataset must be one of {sorted(DATASETS) + sorted(examples.EXAMPLE_PROTOCOLS)}, got {dataset!r}.")
        spec = dict(spec, source=dataset_dir, synthetic=dataset_dir is None, protocol="the dataset's own train/test split")
        split_counts = None
        if dataset_dir is None:  # synthetic: exactly the cases needed, split train / 1 val / test
            from monai_cwcd.data import ensure_demo_dataset

            if not (num_train and num_test):
                raise ValueError("num_train and num_test are required for the synthetic dataset (dataset_dir=None).")
            total = int(num_cases) if num_cases else int(num_train) + 1 + int(num_test)
            if total < int(num_train) + 1 + int(num_test):
                raise ValueError(f"num_cases={num_cases} < num_train + 1 + num_test = {int(num_train) + 1 + int(num_test)}.")
            split_counts = (total - 1 - int(num_test), 1, int(num_test))
            dataset_dir = ensure_demo_dataset(dataset, num_cases=total)
            spec["source"] = str(dataset_dir)
            spec["protocol"] = f"synthetic cases, {split_counts[0]} train / {split_counts[2]} test (disjoint generated cases)"
        train = load_tensors(dataset, dataset_dir, "train", spatial_size, num_train, split_counts)
        test = load_tensors(dataset, dataset_dir, "test", spatial_size, num_test, split_counts)
        folds = [{"name": "", "train": train, "test": test}]
    return folds, spec


# ---------------------------------------------------------------------------------------------
# maps, training and evaluation


def _map_argument(loss: nn.Module) -> str | None:
    """Name of the precomputed-map argument of ``loss.forward`` after (input, target), if any."""
    params = list(inspect.signature(loss.forward).parameters)
    return params[2] if len(params) > 2 else None


def precompute_maps(
    cfg: RunConfig, labels: torch.Tensor, num_classes: int, spacings: Sequence[Sequence[float]] | None = None,
    contour_widths: Mapping[int, float] | None = None,
) -> torch.Tensor | None:
    """Per-case maps for the losses that take one, computed once with the row's own settings:
    ``ContourWeightMap`` (CWCE, SDL, CWCD; a ``contour_width_mm`` setting with each case's
    ``spacings``, ``"adaptive"`` with ``contour_widths``), ``DistanceWeightMap`` (DWCE), ``RRWMap``
    (RW, RW+CE) and MONAI ``BoundaryLoss``'s signed distance maps (Boundary+Dice).

    Raises:
        ValueError: a millimetre setting without ``spacings``, ``"adaptive"`` without ``contour_widths``.
    """
    from monai_cwcd import transforms as T

    s = cfg.settings
    if cfg.loss in CONTOUR_LOSSES:
        comp = next(v for v in s.values())
        width = comp.get("contour_width_mm")
        if width is not None:
            if spacings is None:
                raise ValueError(f"{cfg.name}: a contour_width_mm setting needs each case's voxel spacing.")
            if adaptive_fraction(width) is not None:
                if contour_widths is None:
                    raise ValueError(f"{cfg.name}: contour_width_mm='adaptive' needs the training labels' widths.")
                width = dict(contour_widths)
            return torch.stack([
                torch.as_tensor(T.ContourWeightMap(contour_width_mm=width, spacing=tuple(sp),
                                                   edge_is_contour=comp.get("edge_is_contour", False))(lab))
                for lab, sp in zip(labels, spacings)
            ])
        xf: Callable = T.ContourWeightMap(kernel_size=comp["kernel_size"], iterations=comp["iterations"],
                                          edge_is_contour=comp.get("edge_is_contour", False))
    elif cfg.loss == "DWCE":
        xf = T.DistanceWeightMap(w0=s["DistanceWeightedCELoss"]["w0"], sigma=s["DistanceWeightedCELoss"]["sigma"])
    elif cfg.loss.startswith("RW (RRW)"):
        xf = T.RRWMap(num_classes=num_classes)
    elif cfg.loss == "Boundary+Dice":
        return _BoundaryDice.distance_maps(labels, num_classes)
    else:
        return None
    return torch.stack([torch.as_tensor(xf(lab)) for lab in labels])


def _score(net: nn.Module, data: Mapping[str, Any], fmt: torch.memory_format, device: torch.device, spec: Mapping[str, Any]) -> dict:
    per_case = {}
    net.eval()
    with torch.no_grad():
        for i, case in enumerate(data["case_id"]):
            pred = net(data["image"][i : i + 1].to(device=device, memory_format=fmt)).argmax(1)[0].cpu()
            per_case[case] = segmentation_metrics(
                pred, data["label"][i, 0], num_classes=spec["num_classes"], spacing=data["spacing"][i],
                class_names=spec["class_names"], regions=spec["regions"],
            )
    net.train()
    return per_case


def train_and_evaluate(
    cfg: RunConfig,
    seed: int,
    train: Mapping[str, Any],
    evaluate: Mapping[str, Any],
    maps: torch.Tensor | None,
    spec: Mapping[str, Any],
    epochs: int,
    eval_epochs: Sequence[int],
    batch_size: int,
    learning_rate: float,
    net_settings: Mapping[str, Any],
    device: torch.device,
    weights: torch.Tensor | None = None,
    contour_widths: Mapping[int, float] | None = None,
    augmentation: str | None = None,
) -> dict[str, Any]:
    """Train one row with one seed for ``epochs`` and score ``evaluate`` after each epoch of ``eval_epochs``.

    A loss with a schedule (Boundary+Dice's rebalancing weight) runs its schedule over ``epochs``.
    Cases are drawn in a new random order each epoch; a trailing batch of a single case is skipped
    when ``batch_size > 1`` (as ``drop_last``; that case is seen in the other epochs). With an
    ``augmentation`` of :data:`AUGMENTATIONS` each case of each step is augmented (random state from
    ``seed``) and the row's loss map (``maps``' kind) is recomputed from the augmented label, as a
    bundle computes ``ContourWeightMapd`` after its random transforms.

    Returns:
        ``{"per_epoch": {epoch: per_case_metrics}, "final_loss", "seconds", "parameters"}``.
    """
    from monai.utils import set_determinism

    t0 = time.perf_counter()
    set_determinism(seed=seed)
    # channels-last on CPU: same model, 1.2-1.5x faster oneDNN 3D convolutions with few channels
    fmt = torch.channels_last_3d if train["image"].ndim == 5 and device.type == "cpu" else torch.contiguous_format
    net = build_network(cfg.network, train["image"].shape[1], spec["num_classes"], net_settings).to(device=device, memory_format=fmt)
    loss_fn = build_loss(cfg, spec["num_classes"], weights, contour_widths).to(device)
    arg = _map_argument(loss_fn) if maps is not None else None
    opt = torch.optim.Adam(net.parameters(), lr=learning_rate)
    gen = torch.Generator().manual_seed(seed)
    aug = build_augmentation(augmentation, seed) if augmentation else None
    n = train["image"].shape[0]
    last = float("nan")
    wanted = sorted({int(e) for e in eval_epochs if 1 <= int(e) <= epochs})
    per_epoch: dict[str, Any] = {}
    net.train()
    for epoch in range(epochs):
        if hasattr(loss_fn, "progress"):
            loss_fn.progress = epoch / max(epochs - 1, 1)
        order = torch.randperm(n, generator=gen)
        for i in range(0, n, batch_size):
            idx = order[i : i + batch_size]
            if len(idx) == 1 and batch_size > 1 and n > 1:  # drop_last for a lone trailing case (BatchNorm on 1-voxel maps)
                continue
            x, y = train["image"][idx], train["label"][idx]
            m = maps[idx] if arg else None
            if aug is not None:
                x, y = _augment_batch(aug, x, y)
                if arg:
                    m = precompute_maps(cfg, y, spec["num_classes"], [train["spacing"][int(i)] for i in idx], contour_widths)
            x, y = x.to(device=device, memory_format=fmt), y.to(device)
            kw = {arg: m.to(device)} if arg else {}
            opt.zero_grad(set_to_none=True)
            loss = loss_fn(net(x), y, **kw)
            loss.backward()
            opt.step()
            last = float(loss.detach())
        if epoch + 1 in wanted:
            per_epoch[str(epoch + 1)] = _score(net, evaluate, fmt, device, spec)
    set_determinism(seed=None)
    return {"per_epoch": per_epoch, "final_loss": last, "seconds": time.perf_counter() - t0, "parameters": count_parameters(net)}


def check_networks(
    net_cfg: Mapping[str, Mapping[str, Any]], in_channels: int, num_classes: int, spatial_size: Sequence[int], batch: int
) -> None:
    """One training-mode forward pass of each network on a zero batch of the smallest size training
    will use, before any run starts, so a network that cannot train on this grid fails first.

    Raises:
        ValueError: naming the network, the batch and grid, and what to change (e.g. BatchNorm at a
            1-voxel level with a batch of one case).
    """
    for name, settings in net_cfg.items():
        net = build_network(name, in_channels, num_classes, settings).train()
        try:
            with torch.no_grad():
                net(torch.zeros(batch, in_channels, *[int(v) for v in spatial_size]))
        except (RuntimeError, ValueError) as e:
            raise ValueError(
                f"network {name!r} cannot train on batches of {batch} case(s) of {tuple(int(v) for v in spatial_size)} voxels "
                f"({str(e).splitlines()[0]}); use at least 2 training cases with --batch_size >= 2, a larger --spatial_size, "
                f"or leave {name} out of --networks."
            ) from None


def _mean_dsc(per_case: Mapping[str, Mapping[str, Mapping[str, float]]]) -> float:
    v = [r["dice"] for recs in per_case.values() for r in recs.values() if not math.isnan(r["dice"])]
    return float(sum(v) / len(v)) if v else float("nan")


#: the CI schedule: tiny grid, nets and budget; draws no conclusions.
QUICK = {
    "epochs": 1,
    "seeds": (0, 1),
    "spatial_size": (32, 32, 16),
    "width": (4, 8, 16, 32),
    "num_train": 3,
    "num_test": 2,
    "batch_size": 2,
    "val_cases": 1,
}


def compare_losses(
    dataset: str = "amos",
    dataset_dir: str | None = None,
    output_dir: str = "compare_losses",
    losses: Sequence[str] | None = None,
    contour_settings: Sequence[Sequence[int] | str] = ((2, 1), (3, 1), (3, 2), (3, 3)),
    networks: Sequence[str] = ("unet", "pdanet"),
    include_background: bool = False,
    seeds: Sequence[int] = (0, 1, 2),
    epochs: int = 40,
    batch_size: int = 2,
    learning_rate: float = 2e-3,
    lr_grid: Sequence[float] | None = None,
    epoch_grid: Sequence[int] | None = None,
    val_cases: int = 3,
    spatial_size: Sequence[int] = (48, 48, 32),
    widths: Mapping[str, Sequence[int]] | None = None,
    num_train: int | None = 16,
    num_test: int | None = 10,
    num_cases: int | None = None,
    collapse_dsc: float = 0.3,
    quick: bool = False,
    device: str | None = None,
    verbose: bool = True,
    resume: bool = True,
    runs_dir: str | None = None,
    num_workers: int = 1,
    augmentation: str | None = None,
) -> dict[str, Any]:
    """Train every row of :func:`default_configs` with every seed and write the report.

    Outputs in ``output_dir`` (all atomic): ``per_case.csv`` (budget, row, seed, case, structure),
    ``results.csv``/``results.md`` (per budget and row: DSC, detection rate, HD95/ASSD over detected
    structures, paired per-case test vs CWCD, collapse flag, parameters), ``networks.csv`` (the model
    independence table), ``selection.csv`` (the budget selection), ``configs.json`` (every row's
    full loss and network settings), ``comparison.json`` (settings, runtime, claims), plots, and
    ``runs/*.json`` (one per finished run; what a resumed comparison reuses).

    Example:
        >>> compare_losses("amos", output_dir="/tmp/cmp", quick=True)  # doctest: +SKIP

    Args:
        dataset: bundle layout ``"amos"``, ``"brats"``, ``"pengwin"``, or a real example protocol of
            :data:`monai_cwcd.data.examples.EXAMPLE_PROTOCOLS`. Defaults to ``"amos"``.
        dataset_dir: dataset folder (bundle layout) or fetched example folder. Defaults to ``None``
            (the synthetic dataset, or the example in the cache).
        output_dir: where the outputs go. Defaults to ``"compare_losses"``.
        losses: subset of :data:`BASELINE_LOSSES` plus ``"CWCD"``. Defaults to ``None`` (all).
        contour_settings: the CWCD rows' contour settings: ``(kernel_size, iterations)``, a width
            ``"2mm"`` (per axis from each case's spacing) or ``"adaptive"`` (one width per structure
            from the training labels; :func:`~monai_cwcd.evaluation.configs.parse_contour_setting`).
            Defaults to ``((2, 1), (3, 1), (3, 2), (3, 3))``.
        networks: networks of :data:`NETWORKS` (``"unet"`` carries the loss comparison; every other
            adds ``Dice+CE`` and ``CWCD`` rows). Defaults to ``("unet", "pdanet")``.
        include_background: the one ``include_background`` of every Dice-family loss. Defaults to
            ``False``.
        seeds: one run per seed and row (at least 2). Defaults to ``(0, 1, 2)``.
        epochs: the matched budget's passes over the training cases. Defaults to 40.
        batch_size: cases per step. Defaults to 2.
        learning_rate: the matched budget's Adam learning rate. Defaults to 2e-3.
        lr_grid: learning rates tried by the budget selection. Defaults to ``None`` (no selection
            unless ``epoch_grid`` is given; then ``(learning_rate,)``).
        epoch_grid: epochs at which the selection scores the validation cases. Defaults to ``None``
            (``(epochs,)`` when ``lr_grid`` is given).
        val_cases: training cases held out for the selection (the last ones). Defaults to 3.
        spatial_size: fixed grid every case is resampled to. Defaults to ``(48, 48, 32)``.
        widths: per-network widths (see :func:`~monai_cwcd.evaluation.configs.network_settings`).
            Defaults to ``None`` (each network's CPU-sized default).
        num_train: training cases (first of the "train" split). Defaults to 16.
        num_test: held-out cases (first of the "test" split). Defaults to 10.
        num_cases: synthetic cases to generate. Defaults to ``None`` (``num_train + 1 + num_test``).
        collapse_dsc: a row whose mean DSC is below this with at least half of its structures at
            mean DSC < 0.05 is flagged collapsed and left out of the gain averages. Defaults to 0.3.
        quick: CI mode, :data:`QUICK` schedule (also a 2-point budget selection; the networks not
            named in ``widths`` at the QUICK width); draws no conclusions. Defaults to ``False``.
        device: torch device. Defaults to ``None`` (CUDA if available, else CPU).
        verbose: print one line per run. Defaults to ``True``.
        resume: reuse the runs saved in ``runs_dir`` made with identical settings. Defaults to ``True``.
        runs_dir: where each finished run is saved (several comparisons may share one, e.g. the
            U-Net rows of a loss comparison and of a network comparison on the same data). Defaults
            to ``None`` (``output_dir/runs``).
        num_workers: runs trained at once, each in its own process (``spawn``) with
            ``torch.get_num_threads() // num_workers`` threads; the runs are independent, so the
            results are those of ``num_workers=1`` (up to the last bits of floating-point
            arithmetic with a different thread count; equal with the same count). The gain is
            measured by ``benchmarks/bench_workers.py``. Defaults to 1 (in this process).
        augmentation: a training augmentation of :data:`AUGMENTATIONS` (every run of every row, the
            budget selection's included), e.g. ``"affine"``; ``None`` or ``"none"``: none. Defaults
            to ``None``.

    Returns:
        the content of ``comparison.json``.

    Raises:
        ValueError: fewer than 2 seeds, an unknown loss, network, dataset or augmentation, an empty split.
        TypeError: a loss or network setting its class does not take.
    """
    from monai_cwcd.evaluation.report import write_report

    t_start = time.perf_counter()
    if quick:
        print(
            f"[compare] quick: the QUICK schedule replaces seeds, epochs, spatial_size, batch_size, num_train, num_test, "
            f"val_cases, the widths of the networks not named in widths and the budget grids ({QUICK}); drop quick to use "
            "your own settings",
            flush=True,
        )
        seeds, epochs, spatial_size = QUICK["seeds"], QUICK["epochs"], QUICK["spatial_size"]
        batch_size, num_train, num_test, val_cases = QUICK["batch_size"], QUICK["num_train"], QUICK["num_test"], QUICK["val_cases"]
        widths = {**{n: QUICK["width"] for n in NETWORKS}, **dict(widths or {})}
        lr_grid, epoch_grid = (learning_rate, 2 * learning_rate), (1,)
    seeds = [int(s) for s in seeds]
    if len(seeds) < 2:
        raise ValueError(f"at least 2 seeds are needed for mean/std and the paired tests, got {seeds}.")
    if int(num_workers) < 1:
        raise ValueError(f"num_workers must be >= 1, got {num_workers!r}.")
    if isinstance(augmentation, str) and augmentation.lower() == "none":
        augmentation = None
    if augmentation is not None and augmentation not in AUGMENTATIONS:
        raise ValueError(f"augmentation must be one of {sorted(AUGMENTATIONS)} or 'none', got {augmentation!r}.")
    configs = default_configs(losses, contour_settings, networks, include_background)
    select = lr_grid is not None or epoch_grid is not None
    lr_grid = [float(v) for v in (lr_grid or (learning_rate,))]
    epoch_grid = sorted({int(v) for v in (epoch_grid or (epochs,))})
    dev = torch.device(device) if device else torch.device("cuda" if torch.cuda.is_available() else "cpu")
    t_load = time.perf_counter()
    folds, spec = prepare_folds(dataset, dataset_dir, spatial_size, num_train, num_test, num_cases)
    if verbose and spec.get("synthetic"):
        print(f"[compare] {dataset}: no dataset_dir given, so the synthetic demo cases in {spec['source']} are used "
              "(pass dataset_dir for your own data)", flush=True)
    load_seconds = time.perf_counter() - t_load
    if select:
        too_few = [f["name"] or dataset for f in folds if f["train"]["image"].shape[0] - int(val_cases) < 1]
        if too_few and quick:  # a smoke run on a one-training-case protocol skips the selection
            select = False
        elif too_few:
            raise ValueError(
                f"{too_few[0]!r} has {folds[0]['train']['image'].shape[0]} training case(s); the budget selection needs "
                f"val_cases={val_cases} of them for validation and at least one left to train on."
            )
    widths = dict(widths or {})
    net_cfg = {n: network_settings(n, spatial_size, widths.get(n)) for n in dict.fromkeys(c.network for c in configs)}
    n_min = min(f["train"]["image"].shape[0] for f in folds)
    if select:
        n_min = min(n_min, folds[0]["train"]["image"].shape[0] - int(val_cases))
    check_networks(net_cfg, folds[0]["train"]["image"].shape[1], spec["num_classes"], spatial_size,
                   1 if int(batch_size) == 1 or n_min == 1 else 2)
    out = Path(output_dir)
    runs = Path(runs_dir) if runs_dir else out / "runs"
    budget = {"dataset": dataset, "source": _portable_source(spec.get("source")), "batch_size": int(batch_size),
              "spatial_size": [int(v) for v in spatial_size], "device_type": dev.type}
    if augmentation:  # (absent without: the runs recorded before the option keep their identity)
        budget["augmentation"] = augmentation
    data_key = f"{_slug(dataset)}_{'x'.join(str(int(v)) for v in spatial_size)}_b{int(batch_size)}"
    run_log: list[dict[str, Any]] = []
    per_case_rows: list[list[Any]] = []
    selection_rows: list[list[Any]] = []
    part_seconds = {"selection": 0.0, "matched": 0.0, "selected": 0.0}
    reused = 0
    params: dict[str, int] = {}

    def locate(cfg: RunConfig, fold: Mapping[str, Any], seed: int, lr: float, n_epochs: int, eval_epochs: Sequence[int],
               train: Mapping[str, Any], evaluate: Mapping[str, Any], tag: str) -> tuple[dict[str, Any], Path, list[Path]]:
        """The run's identity, its file and the older files that may hold it (the ident decides): the name
        before the scored epochs were part of it, and the pre-per-data-folder location."""
        at = sorted({int(e) for e in eval_epochs})
        ident = {**budget, "config": cfg.name, "loss": cfg.loss, "network": cfg.network, "loss_settings": cfg.settings,
                 "network_settings": net_cfg[cfg.network], "fold": fold["name"], "seed": seed, "learning_rate": lr,
                 "epochs": int(n_epochs), "eval_epochs": at,
                 "train_cases": list(train["case_id"]), "eval_cases": list(evaluate["case_id"])}
        fname = "_".join(x for x in (tag, _slug(cfg.name), _slug(fold["name"]), f"seed{seed}", f"lr{lr:g}", f"e{n_epochs}",
                                     f"aug-{augmentation}" if augmentation else "") if x)
        if net_cfg[cfg.network] != network_settings(cfg.network, spatial_size):  # a non-default width gets its own file
            fname += "_w" + hashlib.sha1(json.dumps(net_cfg[cfg.network], sort_keys=True).encode()).hexdigest()[:8]
        # a run scored at other epochs than its last one is another run: another file, so that comparisons
        # sharing runs_dir (e.g. with and without a budget selection) never overwrite each other's runs
        name = fname + ("" if at == [int(n_epochs)] else "_at" + "-".join(str(e) for e in at))
        # one folder per dataset, grid and batch: comparisons can share runs_dir
        older = ([runs / data_key / f"{fname}.json"] if name != fname else []) + [runs / f"{fname}.json"]
        return ident, runs / data_key / f"{name}.json", older

    def saved(ident: dict[str, Any], path: Path, older: Sequence[Path]) -> dict[str, Any] | None:
        if path in fresh:  # trained by this invocation's workers
            rec = _load_run(path, ident)
            if rec is not None:
                rec["_reused"] = False
            return rec
        if resume:
            for p in (path, *older):
                rec = _load_run(p, ident)
                if rec is not None:
                    return rec
        return None

    def run(cfg: RunConfig, fold: Mapping[str, Any], seed: int, lr: float, n_epochs: int, eval_epochs: Sequence[int],
            train: Mapping[str, Any], evaluate: Mapping[str, Any], tag: str) -> dict[str, Any]:
        nonlocal reused
        ident, path, older = locate(cfg, fold, seed, lr, n_epochs, eval_epochs, train, evaluate, tag)
        rec = saved(ident, path, older)
        if rec is None:
            key = (cfg.name, fold["name"], tag)
            if key not in map_cache:
                map_cache[key] = _run_inputs(cfg, train, spec)
            rec = train_and_evaluate(cfg, seed, train, evaluate, map_cache[key][0], spec, n_epochs, eval_epochs, batch_size, lr,
                                     net_cfg[cfg.network], dev, map_cache[key][1], map_cache[key][2], augmentation)
            rec["ident"] = ident
            write_json(path, rec)  # atomic: a killed comparison resumes after the last finished run
        elif rec.get("_reused"):
            reused += 1
        params[cfg.name] = int(rec["parameters"])
        if verbose:
            scores = ", ".join(f"e{e}: {_mean_dsc(pc):.3f}" for e, pc in rec["per_epoch"].items())
            origin = " (reused)" if rec.get("_reused") else ""
            fold_txt = f" [{fold['name']}]" if fold["name"] else ""
            print(f"[compare] {tag:<8} {cfg.name:<24}{fold_txt} seed {seed} lr {lr:g}: DSC {scores}, {rec['seconds']:.1f}s{origin}", flush=True)
        return rec

    fresh: set[Path] = set()

    def prefetch(jobs: Sequence[tuple]) -> None:
        """Train the missing runs of ``jobs`` (``run``'s arguments) in ``num_workers`` processes (with one
        worker, ``run`` trains each in this process as it comes)."""
        if int(num_workers) <= 1:
            return
        todo, queued = [], set()
        for job in jobs:
            ident, path, older = locate(*job)
            if path not in fresh and path not in queued and saved(ident, path, older) is None:
                queued.add(path)
                cfg, fold, seed, lr, n_epochs, eval_epochs, train, evaluate, _ = job
                todo.append(({"cfg": cfg, "seed": seed, "train": _as_arrays(train), "evaluate": _as_arrays(evaluate),
                              "spec": spec, "epochs": n_epochs,
                              "eval_epochs": list(eval_epochs), "batch_size": batch_size, "learning_rate": lr,
                              "net_settings": net_cfg[cfg.network], "device": str(dev), "augmentation": augmentation},
                             path, ident))
        if todo:
            fresh.update(_train_in_workers(todo, int(num_workers), verbose))

    map_cache: dict[tuple, torch.Tensor | None] = {}
    if verbose:
        print(f"[compare] {run_plan(len(configs), len(folds), len(seeds), select, len(lr_grid), max(epoch_grid), int(epochs))}; "
              f"runs already saved in {runs} are reused", flush=True)
    # 1. budget selection on a validation split of the training cases (first fold; first seed)
    chosen: dict[str, tuple[float, int]] = {c.name: (float(learning_rate), int(epochs)) for c in configs}
    if select:
        fold = folds[0]
        n = fold["train"]["image"].shape[0]
        tr, va = _subset(fold["train"], range(n - val_cases)), _subset(fold["train"], range(n - val_cases, n))
        prefetch([(cfg, fold, seeds[0], lr, max(epoch_grid), epoch_grid, tr, va, "select") for cfg in configs for lr in lr_grid])
        for cfg in configs:
            best: tuple[float, float, int] | None = None
            for lr in lr_grid:
                rec = run(cfg, fold, seeds[0], lr, max(epoch_grid), epoch_grid, tr, va, "select")
                part_seconds["selection"] += float(rec["seconds"])
                for e in epoch_grid:
                    d = _mean_dsc(rec["per_epoch"][str(e)])
                    selection_rows.append([cfg.name, lr, e, d, len(va["case_id"])])
                    if best is None or (not math.isnan(d) and (math.isnan(best[0]) or d > best[0])):
                        best = (d, lr, e)
            chosen[cfg.name] = (best[1], best[2])
    # 2. final runs: the matched budget for every row, and each row's selected budget
    def plans(cfg: RunConfig) -> list[tuple[float, int, list[tuple[str, int]]]]:
        """``(learning rate, epochs, [(budget, epoch scored)])`` of the row's test runs: the matched budget
        and the selected one, in one run when they share the learning rate."""
        sel_lr, sel_ep = chosen[cfg.name]
        if select and sel_lr == learning_rate and "schedule" not in cfg.settings:
            return [(learning_rate, max(epochs, sel_ep), [("matched", epochs), ("selected", sel_ep)])]
        return [(learning_rate, epochs, [("matched", epochs)])] + ([(sel_lr, sel_ep, [("selected", sel_ep)])] if select else [])

    prefetch([(cfg, fold, seed, lr, n_ep, [e for _, e in evals], fold["train"], fold["test"], "test")
              for cfg in configs for fold in folds for seed in seeds for lr, n_ep, evals in plans(cfg)])
    for cfg in configs:
        for fold in folds:
            for seed in seeds:
                for lr, n_ep, evals in plans(cfg):
                    rec = run(cfg, fold, seed, lr, n_ep, [e for _, e in evals], fold["train"], fold["test"], "test")
                    part_seconds[evals[0][0]] += float(rec["seconds"])
                    run_log.append({"config": cfg.name, "fold": fold["name"], "seed": seed, "learning_rate": lr, "epochs": n_ep,
                                 "final_loss": rec["final_loss"], "seconds": rec["seconds"], "budgets": [b for b, _ in evals]})
                    for b, e in evals:
                        for case, recs in rec["per_epoch"][str(e)].items():
                            for s, r in recs.items():
                                per_case_rows.append([b, cfg.name, seed, case, s, r["dice"], r["hd95"], r["assd"],
                                                      r["label_voxels"], r["pred_voxels"]])
    all_train = torch.cat([f["train"]["label"] for f in folds])
    settings = {
        "dataset": dataset,
        "source": _portable_source(spec.get("source")),
        "synthetic": bool(spec.get("synthetic", False)),
        "protocol": spec.get("protocol", ""),
        "label_note": spec.get("label_note", ""),
        "folds": [{"name": f["name"], "train_cases": f["train"]["case_id"], "test_cases": f["test"]["case_id"]} for f in folds],
        "quick": bool(quick),
        "seeds": seeds,
        "epochs": int(epochs),
        "batch_size": int(batch_size),
        "learning_rate": float(learning_rate),
        "selection": {"enabled": select, "lr_grid": lr_grid, "epoch_grid": epoch_grid, "val_cases": int(val_cases) if select else 0,
                      "seed": seeds[0], "chosen": {k: {"learning_rate": v[0], "epochs": v[1]} for k, v in chosen.items()}},
        "optimizer": "Adam",
        "augmentation": augmentation,
        "augmentation_description": AUGMENTATIONS.get(augmentation) if augmentation else None,
        "include_background": bool(include_background),
        "spatial_size": [int(s) for s in spatial_size],
        "networks": {n: net_cfg[n] for n in net_cfg},
        "num_train": int(folds[0]["train"]["image"].shape[0]),
        "num_test": int(sum(f["test"]["image"].shape[0] for f in folds)),
        "num_classes": spec["num_classes"],
        "class_names": list(spec["class_names"]),
        "regions": spec["regions"],
        "collapse_dsc": float(collapse_dsc),
        "device": str(dev),
        "torch_threads": torch.get_num_threads(),
        # the widths of each adaptive row, per fold (the test runs' training cases)
        "adaptive_contour_widths": {
            c.name: {f["name"] or "all": {str(k): v for k, v in contour_widths_from_labels(
                f["train"]["label"], f["train"]["spacing"], spec["num_classes"], frac).items()} for f in folds}
            for c in configs if (frac := adaptive_fraction(c.settings.get("CWCDLoss", {}).get("contour_width_mm"))) is not None
        },
        "configs": [{"name": c.name, "loss": c.loss, "network": c.network, "kernel_size": c.kernel_size, "iterations": c.iterations,
                     "contour": c.contour,
                     "loss_settings": c.settings, "network_settings": net_cfg[c.network], "parameters": params.get(c.name)} for c in configs],
        "class_weights": [float(v) for v in class_weights(all_train, spec["num_classes"])],
        "load_seconds": load_seconds,
        "part_seconds": part_seconds,
        "total_seconds": time.perf_counter() - t_start,
        # load + every run's own training/evaluation time: the cost of one uninterrupted comparison
        "compute_seconds": load_seconds + sum(part_seconds.values()),
        "reused_runs": reused,
        "num_workers": int(num_workers),
    }
    settings["from_scratch"] = _from_scratch(out, settings, run_log)
    return write_report(out, per_case_rows, run_log, settings, train_voxels=_class_volumes(all_train, spec), selection_rows=selection_rows)


def run_plan(rows: int, folds: int, seeds: int, select: bool, lrs: int, select_epochs: int, epochs: int) -> str:
    """One line saying how many runs a comparison trains: ``lrs`` selection runs per row (loss x
    network; one seed, first fold, ``select_epochs`` epochs each, scored at every epoch of the grid),
    then per row, fold and seed one test run at the matched budget (``epochs``), and a second one at
    the row's selected budget where the selection changes the learning rate (one run otherwise).

    Example:
        >>> print(run_plan(4, 1, 2, True, 2, 40, 40))
        plan: 4 rows (loss x network) x 1 fold(s) x 2 seed(s): 8 budget-selection runs of 40 epochs, then 8 to 16 test runs (matched budget 40 epochs, plus each row's selected budget)
    """
    tests = rows * folds * seeds
    head = f"plan: {rows} rows (loss x network) x {folds} fold(s) x {seeds} seed(s): "
    if not select:
        return head + f"{tests} test runs of {epochs} epochs"
    return head + (f"{rows * lrs} budget-selection runs of {select_epochs} epochs, then {tests} to {2 * tests} test runs "
                   f"(matched budget {epochs} epochs, plus each row's selected budget)")


def _from_scratch(out: Path, settings: Mapping[str, Any], run_log: Sequence[Mapping[str, Any]]) -> dict[str, Any] | None:
    """The wall-clock time of the last invocation that trained every run of this comparison (none
    reused): this one, or the one recorded in ``out/comparison.json`` for the same runs and budget
    selection (a later invocation that reuses the runs keeps it). None when no such invocation is known."""

    def identity(runs: Sequence[Mapping[str, Any]], s: Mapping[str, Any]) -> tuple:
        keys = sorted((r["config"], str(r.get("fold")), int(r["seed"]), float(r["learning_rate"]), int(r["epochs"])) for r in runs)
        sel = s.get("selection", {})
        return tuple(keys), json.dumps(
            [{k: sel.get(k) for k in ("enabled", "lr_grid", "epoch_grid", "val_cases", "seed")},
             [_portable_source(s.get(k)) if k == "source" else s.get(k)
              for k in ("dataset", "source", "spatial_size", "batch_size", "networks", "device", "augmentation")]], sort_keys=True)

    if settings["reused_runs"] == 0:
        return {"wall_seconds": settings["total_seconds"], "num_workers": settings["num_workers"],
                "torch_threads": settings["torch_threads"], "device": settings["device"],
                "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())}
    try:
        prev = json.loads((out / "comparison.json").read_text())
    except (OSError, ValueError):
        return None
    ps = prev.get("settings", {})
    if identity(prev.get("runs", []), ps) != identity(run_log, settings):
        return None
    if ps.get("from_scratch"):
        return ps["from_scratch"]
    if ps.get("reused_runs") == 0 and "total_seconds" in ps:  # written before this record existed
        return {"wall_seconds": ps["total_seconds"], "num_workers": ps.get("num_workers", 1),
                "torch_threads": ps.get("torch_threads"), "device": ps.get("device"), "date": None}
    return None


def _run_inputs(cfg: RunConfig, train: Mapping[str, Any], spec: Mapping[str, Any]) -> tuple:
    """``(maps, class weights, adaptive widths)`` a row needs from its training cases."""
    fraction = adaptive_fraction(cfg.settings.get("CWCDLoss", {}).get("contour_width_mm"))
    widths = None if fraction is None else contour_widths_from_labels(train["label"], train["spacing"], spec["num_classes"], fraction)
    maps = precompute_maps(cfg, train["label"], spec["num_classes"], train["spacing"], widths)
    return maps, class_weights(train["label"], spec["num_classes"]), widths


def _as_arrays(data: Mapping[str, Any]) -> dict[str, Any]:
    """A case dict with its tensors as numpy arrays: plain pickles to a worker (torch's pickling of tensors
    passes file descriptors through a server thread that an interrupted worker leaves in error)."""
    return {k: v.detach().cpu().numpy() if isinstance(v, torch.Tensor) else v for k, v in data.items()}


def _as_tensors(data: Mapping[str, Any]) -> dict[str, Any]:
    import numpy as np

    return {k: torch.from_numpy(v) if isinstance(v, np.ndarray) else v for k, v in data.items()}


def _worker_run(job: dict[str, Any], path: str, ident: dict[str, Any], threads: int) -> str:
    """One run in a worker process (:func:`compare_losses` with ``num_workers > 1``); saves it to ``path``."""
    torch.set_num_threads(threads)
    job = dict(job, train=_as_tensors(job["train"]), evaluate=_as_tensors(job["evaluate"]))
    maps, weights, widths = _run_inputs(job["cfg"], job["train"], job["spec"])
    rec = train_and_evaluate(job["cfg"], job["seed"], job["train"], job["evaluate"], maps, job["spec"], job["epochs"],
                             job["eval_epochs"], job["batch_size"], job["learning_rate"], job["net_settings"],
                             torch.device(job["device"]), weights, widths, job.get("augmentation"))
    rec["ident"] = ident
    write_json(Path(path), rec)
    return path


def _train_in_workers(todo: Sequence[tuple[dict[str, Any], Path, dict[str, Any]]], num_workers: int, verbose: bool) -> list[Path]:
    """Train ``todo`` (``(job, path, ident)``) in a pool of ``num_workers`` spawned processes; return
    the paths written. The first failure cancels the rest and is raised here."""
    import multiprocessing
    import signal
    import threading
    from concurrent.futures import ProcessPoolExecutor, as_completed

    threads = max(1, torch.get_num_threads() // num_workers)
    if verbose:
        print(f"[compare] training {len(todo)} run(s) in {num_workers} worker processes ({threads} thread(s) each)", flush=True)
    done: list[Path] = []
    # the workers start with Ctrl-C ignored (an ignored signal stays ignored across exec): the parent
    # alone handles it, also while a worker is still importing
    main_thread = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN) if main_thread else None
    try:
        pool = ProcessPoolExecutor(max_workers=num_workers, mp_context=multiprocessing.get_context("spawn"),
                                   initializer=_ignore_sigint)
        futures = {pool.submit(_worker_run, job, str(path), ident, threads): path for job, path, ident in todo}
    finally:
        if main_thread:
            signal.signal(signal.SIGINT, previous)
    try:
        for future in as_completed(futures):
            future.result()
            done.append(futures[future])
            if verbose:
                print(f"[compare] worker run {len(done)}/{len(todo)} saved: {futures[future].name}", flush=True)
    except BaseException:
        # a failed run or Ctrl-C: stop the other runs now (their finished runs are saved; resume trains the rest)
        for proc in list((getattr(pool, "_processes", None) or {}).values()):
            proc.terminate()
        pool.shutdown(wait=False, cancel_futures=True)
        raise
    pool.shutdown(wait=True)
    return done


def _ignore_sigint() -> None:
    """Worker initializer: Ctrl-C reaches the whole process group; the parent alone handles it (needed
    when the comparison runs outside the main thread, where the parent cannot start the workers with
    SIGINT ignored)."""
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)


def _slug(name: str) -> str:
    """File-name-safe form of a configuration name (``"CWCD k2 i1"`` -> ``"cwcd_k2_i1"``)."""
    return "_".join("".join(ch if ch.isalnum() else " " for ch in name.lower()).split())


def _load_run(path: Path, ident: dict[str, Any]) -> dict[str, Any] | None:
    """A finished run saved by an earlier invocation, if it was made with exactly ``ident``;
    ``None`` otherwise (missing, other settings, unreadable)."""
    try:
        rec = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(rec, dict) or not isinstance(rec.get("ident"), dict):
        return None
    # a run saved before the identity named the cache portably: its absolute cache path on this machine
    stored = dict(rec["ident"], source=_portable_source(rec["ident"].get("source")))
    if stored != json.loads(json.dumps(ident)):
        return None

    def nan(v: Any) -> float:
        return math.nan if v is None else float(v)

    rec["_reused"] = True
    rec["final_loss"], rec["seconds"] = nan(rec.get("final_loss")), nan(rec.get("seconds"))
    rec["per_epoch"] = {
        e: {case: {s: {k: nan(v) for k, v in r.items()} for s, r in recs.items()} for case, recs in pc.items()}
        for e, pc in rec["per_epoch"].items()
    }
    return rec


def _portable_source(source: Any) -> str:
    """A data folder as a run's identity names it: ``$MONAI_CWCD_CACHE/<folder>`` for a folder in the
    cache (synthetic cases, fetched examples), so that runs recorded on one machine are recognised on
    another with another cache location; any other folder as given."""
    from monai_cwcd.data.synthetic import default_cache_root

    text = str(source)
    if source is None or text.startswith("$MONAI_CWCD_CACHE/"):
        return text
    try:
        return "$MONAI_CWCD_CACHE/" + Path(text).resolve().relative_to(Path(default_cache_root()).resolve()).as_posix()
    except ValueError:
        return text


def _class_volumes(labels: torch.Tensor, spec: Mapping[str, Any]) -> dict[str, float]:
    """Mean fraction of the (resampled) volume each evaluated structure occupies in training labels."""
    n_vox = labels[0].numel()
    if spec["regions"]:
        groups = {k: list(v) for k, v in spec["regions"].items()}
    else:
        groups = {spec["class_names"][c]: [c] for c in range(1, spec["num_classes"])}
    return {k: float(torch.isin(labels, torch.tensor(v)).sum()) / labels.shape[0] / n_vox for k, v in groups.items()}
