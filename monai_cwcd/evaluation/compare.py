"""Train one network with a list of losses under an identical budget, seeds and data, and compare
them on a held-out split (issue 6; journal paper Tables I, II, IV and Fig. 8 at CPU scale).

Protocol (``compare_losses``):

1. the dataset (``amos``, ``brats`` or ``pengwin`` layout, synthetic or real) is read once with
   MONAI ``LoadImaged`` through ``monai_cwcd.data.<dataset>_datalist``; each case is z-score
   normalised and resampled to one small fixed grid (``spatial_size``, trilinear for the image,
   nearest for the label) and the tensors are cached in memory, together with the precomputed
   contour maps (``ContourWeightMap``), RRW maps and distance-weight maps the losses need;
2. every configuration (loss x network x contour setting) is trained from the same initial weights
   for a given seed (``monai.utils.set_determinism``), on the same cases in the same order, with
   Adam for the same number of epochs: a plain loop, no augmentation, no early stopping;
3. the model after the last epoch predicts every held-out case (full volume, argmax) and
   :func:`~monai_cwcd.evaluation.metrics.segmentation_metrics` scores it (MONAI DSC, HD95, ASSD,
   distances in mm of the resampled grid).

The report (tables, Wilcoxon tests, plots, claims) is produced by :mod:`monai_cwcd.evaluation.report`.
"""

from __future__ import annotations

import inspect
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn as nn
import torch.nn.functional as F

from monai_cwcd.evaluation._io import write_json
from monai_cwcd.evaluation.metrics import segmentation_metrics

__all__ = ["DATASETS", "BASELINE_LOSSES", "RunConfig", "default_configs", "load_tensors", "compare_losses"]

AMOS_NAMES = ["background", "Sp", "RK", "LK", "Ga", "Es", "Li", "St", "Ao", "Po", "Pa", "RAG", "LAG", "Du", "Bl", "P/U"]

#: per dataset: classes after label preparation, class names, evaluated regions, label preparation.
DATASETS: dict[str, dict[str, Any]] = {
    "amos": {"num_classes": 16, "class_names": AMOS_NAMES, "regions": None},
    # BraTS labels 0/1/2/4 are trained as indices 0/1/2/3; metrics on the nested regions.
    "brats": {
        "num_classes": 4,
        "class_names": ["background", "NCR", "ED", "ET"],
        "regions": {"TC": [1, 3], "WT": [1, 2, 3], "ET": [3]},
    },
    "pengwin": {
        "num_classes": 15,
        "class_names": ["background"] + [f"F{i}" for i in range(1, 15)],
        "regions": None,
    },
}

#: the baseline losses, in table order; "CWCD" rows are added per contour setting and network.
BASELINE_LOSSES = ("CE", "CWCE", "Dice", "SDL", "Dice+CE", "GDL", "DWCE", "RW (RRW)", "Boundary+Dice")


@dataclass(frozen=True)
class RunConfig:
    """One row of the comparison: a loss, its contour setting (if any) and a network."""

    name: str
    loss: str
    network: str = "unet"
    kernel_size: int = 3
    iterations: int = 1
    extra: dict = field(default_factory=dict, hash=False, compare=False)


def default_configs(
    losses: Sequence[str] | None = None,
    contour_settings: Sequence[Sequence[int]] = ((2, 1), (3, 1), (3, 2), (3, 3)),
    pdanet: bool = True,
) -> list[RunConfig]:
    """The comparison rows: each baseline with the U-Net, CWCD with the U-Net for every contour
    setting (kernel, iterations), and CWCD (3, 1) with PDANet.

    Args:
        losses: subset of :data:`BASELINE_LOSSES` plus ``"CWCD"``. Defaults to ``None`` (all).
        contour_settings: (kernel_size, iterations) pairs for the CWCD rows; the contour-based
            baselines (CWCE, SDL) use the first setting with iterations 1 and kernel 3, i.e. the
            CWCD default. Defaults to ``((2, 1), (3, 1), (3, 2), (3, 3))``.
        pdanet: add the PDANet + CWCD row. Defaults to ``True``.
    """
    wanted = list(losses) if losses else [*BASELINE_LOSSES, "CWCD"]
    unknown = [w for w in wanted if w not in (*BASELINE_LOSSES, "CWCD")]
    if unknown:
        raise ValueError(f"unknown loss name(s) {unknown}; expected any of {[*BASELINE_LOSSES, 'CWCD']}.")
    rows = [RunConfig(name=w, loss=w) for w in BASELINE_LOSSES if w in wanted]
    if "CWCD" in wanted:
        for k, it in contour_settings:
            name = "CWCD" if (k, it) == (3, 1) else f"CWCD k{k} i{it}"
            rows.append(RunConfig(name=name, loss="CWCD", kernel_size=int(k), iterations=int(it)))
        if not any(r.name == "CWCD" for r in rows):  # the reference row must exist
            rows.append(RunConfig(name="CWCD", loss="CWCD"))
        if pdanet:
            rows.append(RunConfig(name="CWCD (PDANet)", loss="CWCD", network="pdanet"))
    return rows


# ---------------------------------------------------------------------------------------------
# data


def _datalist(dataset: str, dataset_dir: str, split: str, split_counts: Sequence[int] | None) -> list[dict]:
    from monai_cwcd.data import load_datalist

    return list(load_datalist(dataset, dataset_dir, split, split_counts=split_counts))


def load_tensors(
    dataset: str,
    dataset_dir: str,
    split: str,
    spatial_size: Sequence[int],
    max_cases: int | None = None,
    split_counts: Sequence[int] | None = None,
) -> dict[str, Any]:
    """Load a split once, normalise, resample to ``spatial_size`` and return cached tensors.

    Returns:
        ``{"image": (N, C_in, *spatial) float, "label": (N, 1, *spatial) long, "case_id": [...],
        "spacing": [(sx, sy, sz), ...], "original_voxels": (N, num_classes)}``, where spacing is
        the voxel size (mm) of the resampled grid.

    Raises:
        ValueError: unknown dataset or an empty split.
    """
    from monai.transforms import (
        Compose,
        EnsureChannelFirstd,
        EnsureTyped,
        LoadImaged,
        MapLabelValued,
        NormalizeIntensityd,
        Resized,
    )

    if dataset not in DATASETS:
        raise ValueError(f"dataset must be one of {sorted(DATASETS)}, got {dataset!r}.")
    items = _datalist(dataset, dataset_dir, split, split_counts)
    if not items:
        raise ValueError(f"the {split!r} split of {dataset_dir!r} ({dataset}) is empty.")
    items = items[:max_cases] if max_cases else items
    steps: list[Any] = [LoadImaged(keys=["image", "label"], image_only=True), EnsureChannelFirstd(keys=["image", "label"])]
    if dataset == "brats":
        steps.append(MapLabelValued(keys="label", orig_labels=[4], target_labels=[3]))
    if dataset == "pengwin":
        from monai_cwcd.data import PengwinLabelRemapd

        steps.append(PengwinLabelRemapd(keys="label"))
    steps += [
        NormalizeIntensityd(keys="image", channel_wise=True),
        Resized(keys=["image", "label"], spatial_size=tuple(spatial_size), mode=("trilinear", "nearest")),
        EnsureTyped(keys=["image", "label"]),
    ]
    xform = Compose(steps)
    images, labels, spacing, ids = [], [], [], []
    for item in items:
        d = xform(dict(item))
        images.append(d["image"].as_tensor().float())
        labels.append(d["label"].as_tensor().round().long())
        spacing.append(tuple(float(s) for s in d["label"].pixdim))
        ids.append(str(item.get("case_id", len(ids))))
    return {"image": torch.stack(images), "label": torch.stack(labels), "case_id": ids, "spacing": spacing}


# ---------------------------------------------------------------------------------------------
# losses and networks


class _IndexCrossEntropy(nn.Module):
    """Plain cross-entropy on a (B, 1, *) class-index target (journal eq. 10 up to the 1/M)."""

    def forward(self, input: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return F.cross_entropy(input, target[:, 0].long())


def _boundary_loss_class() -> type:
    """MONAI ``BoundaryLoss`` that can take its signed distance maps precomputed (same values)."""
    from monai.losses import BoundaryLoss

    class _PrecomputedBoundaryLoss(BoundaryLoss):
        precomputed: torch.Tensor | None = None

        def compute_distance_map(self, target: torch.Tensor) -> torch.Tensor:
            if self.precomputed is not None:
                return self.precomputed.to(device=target.device, dtype=torch.float32)
            return super().compute_distance_map(target)

    return _PrecomputedBoundaryLoss


class _BoundaryDice(nn.Module):
    """Kervadec et al.'s rebalanced (1 - a) Dice + a Boundary, with ``a`` raised linearly from 0.01
    to ``a_max`` over training (their +0.01/epoch schedule compressed to our budget).

    The boundary term is MONAI's ``BoundaryLoss``; its signed distance maps (one SciPy EDT per case
    and class, which dominates the step time on CPU) can be passed precomputed as ``distance_map``
    ``(B, C, *spatial)``, from :meth:`distance_maps`, since the labels do not change."""

    def __init__(self, a_max: float = 0.5) -> None:
        super().__init__()
        from monai.losses import DiceLoss

        self.dice = DiceLoss(to_onehot_y=True, softmax=True)
        self.boundary = _boundary_loss_class()(to_onehot_y=True, softmax=True)
        self.a_max, self.progress = a_max, 0.0

    @staticmethod
    def distance_maps(labels: torch.Tensor, num_classes: int) -> torch.Tensor:
        """MONAI ``BoundaryLoss.compute_distance_map`` of each one-hot label ``(N, 1, *spatial)``."""
        from monai.networks.utils import one_hot

        loss = _boundary_loss_class()(to_onehot_y=True, softmax=True)
        return torch.cat([loss.compute_distance_map(one_hot(lab[None], num_classes)) for lab in labels])

    def forward(self, input: torch.Tensor, target: torch.Tensor, distance_map: torch.Tensor | None = None) -> torch.Tensor:
        a = 0.01 + (self.a_max - 0.01) * self.progress
        self.boundary.precomputed = distance_map
        try:
            boundary = self.boundary(input, target)
        finally:
            self.boundary.precomputed = None
        return (1 - a) * self.dice(input, target) + a * boundary


def _kwargs_for(cls: Callable, **kwargs: Any) -> dict:
    """Keep the keyword arguments ``cls`` accepts (the baselines' signatures differ)."""
    params = inspect.signature(cls).parameters
    if any(p.kind == p.VAR_KEYWORD for p in params.values()):
        return kwargs
    return {k: v for k, v in kwargs.items() if k in params}


def build_loss(cfg: RunConfig, num_classes: int) -> nn.Module:
    """The loss module of one configuration (softmax over logits, class-index targets)."""
    from monai.losses import DiceCELoss, DiceLoss, GeneralizedDiceLoss

    common = {"to_onehot_y": True, "softmax": True}
    contour = {"kernel_size": cfg.kernel_size, "iterations": cfg.iterations}
    if cfg.loss == "CE":
        return _IndexCrossEntropy()
    if cfg.loss == "Dice":
        return DiceLoss(**common)
    if cfg.loss == "Dice+CE":
        return DiceCELoss(**common)
    if cfg.loss == "GDL":
        return GeneralizedDiceLoss(**common)
    if cfg.loss == "Boundary+Dice":
        return _BoundaryDice()
    import monai_cwcd.losses as L

    cls = {
        "CWCE": L.ContourWeightedCELoss,
        "SDL": L.SeparableDiceLoss,
        "CWCD": L.CWCDLoss,
        "DWCE": L.DistanceWeightedCELoss,
        "RW (RRW)": L.RegionWiseLoss,
    }[cfg.loss]
    if cfg.loss in ("CWCE", "DWCE"):  # cross-entropy family: softmax CE on class indices
        kw: dict[str, Any] = {"lambda_contour": 2.0, **contour}
    elif cfg.loss == "RW (RRW)":
        kw = {"softmax": True}
    else:  # SDL, CWCD
        kw = dict(common, alpha=0.5, beta=0.5, lambda_contour=2.0, **contour)
    return cls(**_kwargs_for(cls, **kw))


def build_network(cfg: RunConfig, in_channels: int, out_channels: int, channels: Sequence[int], pdanet_features: Sequence[int]) -> nn.Module:
    """MONAI ``UNet`` (BatchNorm, ReLU, stride 2 per level; the conference paper's U-Net when
    ``channels=(16, 32, 64, 128, 256)``) or ``PDANet``."""
    if cfg.network == "pdanet":
        from monai_cwcd.networks.nets import PDANet

        return PDANet(spatial_dims=3, in_channels=in_channels, out_channels=out_channels, features=tuple(pdanet_features), pad_input=True)
    from monai.networks.nets import UNet

    return UNet(
        spatial_dims=3,
        in_channels=in_channels,
        out_channels=out_channels,
        channels=tuple(channels),
        strides=(2,) * (len(channels) - 1),
        norm="batch",
        act="relu",
    )


def _map_argument(loss: nn.Module) -> str | None:
    """Name of the precomputed-map argument of ``loss.forward`` after (input, target), if any."""
    params = list(inspect.signature(loss.forward).parameters)
    return params[2] if len(params) > 2 else None


def precompute_maps(cfg: RunConfig, labels: torch.Tensor, num_classes: int) -> torch.Tensor | None:
    """Per-case maps for the losses that take one, computed once: ``ContourWeightMap`` (CWCE, SDL,
    CWCD), ``DistanceWeightMap`` (DWCE), ``RRWMap`` (RW) and MONAI ``BoundaryLoss``'s signed
    distance maps (Boundary+Dice)."""
    from monai_cwcd import transforms as T

    if cfg.loss in ("CWCE", "SDL", "CWCD"):
        xf: Callable = T.ContourWeightMap(kernel_size=cfg.kernel_size, iterations=cfg.iterations)
    elif cfg.loss == "DWCE":
        xf = T.DistanceWeightMap()
    elif cfg.loss == "RW (RRW)":
        xf = T.RRWMap(num_classes=num_classes)
    elif cfg.loss == "Boundary+Dice":
        return _BoundaryDice.distance_maps(labels, num_classes)
    else:
        return None
    return torch.stack([torch.as_tensor(xf(lab)) for lab in labels])


# ---------------------------------------------------------------------------------------------
# training and evaluation


def train_and_evaluate(
    cfg: RunConfig,
    seed: int,
    train: dict[str, Any],
    test: dict[str, Any],
    maps: torch.Tensor | None,
    num_classes: int,
    epochs: int,
    batch_size: int,
    learning_rate: float,
    channels: Sequence[int],
    pdanet_features: Sequence[int],
    class_names: Sequence[str],
    regions: dict | None,
    device: torch.device,
) -> tuple[dict[str, dict[str, dict[str, float]]], float, float]:
    """Train one configuration with one seed and score it on ``test``.

    Returns:
        ``(per_case_metrics, final_train_loss, seconds)``.
    """
    from monai.utils import set_determinism

    t0 = time.perf_counter()
    set_determinism(seed=seed)
    # channels-last on CPU: same model, 1.2-1.5x faster oneDNN 3D convolutions with few channels (docs/evaluation.md)
    fmt = torch.channels_last_3d if train["image"].ndim == 5 and device.type == "cpu" else torch.contiguous_format
    net = build_network(cfg, train["image"].shape[1], num_classes, channels, pdanet_features)
    net = net.to(device=device, memory_format=fmt)
    loss_fn = build_loss(cfg, num_classes).to(device)
    arg = _map_argument(loss_fn) if maps is not None else None
    opt = torch.optim.Adam(net.parameters(), lr=learning_rate)
    gen = torch.Generator().manual_seed(seed)
    n = train["image"].shape[0]
    last = float("nan")
    net.train()
    for epoch in range(epochs):
        if hasattr(loss_fn, "progress"):
            loss_fn.progress = epoch / max(epochs - 1, 1)
        order = torch.randperm(n, generator=gen)
        for i in range(0, n, batch_size):
            idx = order[i : i + batch_size]
            x, y = train["image"][idx].to(device=device, memory_format=fmt), train["label"][idx].to(device)
            kw = {arg: maps[idx].to(device)} if arg else {}
            opt.zero_grad(set_to_none=True)
            loss = loss_fn(net(x), y, **kw)
            loss.backward()
            opt.step()
            last = float(loss.detach())
    net.eval()
    per_case = {}
    with torch.no_grad():
        for i, case in enumerate(test["case_id"]):
            pred = net(test["image"][i : i + 1].to(device=device, memory_format=fmt)).argmax(1)[0].cpu()
            per_case[case] = segmentation_metrics(
                pred,
                test["label"][i, 0],
                num_classes=num_classes,
                spacing=test["spacing"][i],
                class_names=class_names,
                regions=regions,
            )
    set_determinism(seed=None)
    return per_case, last, time.perf_counter() - t0


QUICK = {
    "epochs": 1,
    "seeds": (0, 1),
    "spatial_size": (16, 16, 16),
    "channels": (4, 8, 16, 32),
    "pdanet_features": (4, 8, 16, 32),
    "num_train": 2,
    "num_test": 2,
    "batch_size": 2,
}


def compare_losses(
    dataset: str = "amos",
    dataset_dir: str | None = None,
    output_dir: str = "compare_losses",
    losses: Sequence[str] | None = None,
    contour_settings: Sequence[Sequence[int]] = ((2, 1), (3, 1), (3, 2), (3, 3)),
    seeds: Sequence[int] = (0, 1, 2),
    epochs: int = 40,
    batch_size: int = 2,
    learning_rate: float = 2e-3,
    spatial_size: Sequence[int] = (48, 48, 32),
    channels: Sequence[int] = (16, 32, 64, 128, 256),
    pdanet: bool = True,
    pdanet_features: Sequence[int] = (8, 16, 32, 64),
    num_train: int | None = 16,
    num_test: int | None = 10,
    num_cases: int | None = None,
    quick: bool = False,
    device: str | None = None,
    verbose: bool = True,
    resume: bool = True,
) -> dict[str, Any]:
    """Train every configuration of :func:`default_configs` with every seed and write the report.

    Outputs in ``output_dir`` (all atomic): ``per_case.csv`` (every config, seed, case and
    structure), ``results.csv`` and ``results.md`` (one row per configuration: mean and std over
    seeds, Wilcoxon p vs CWCD), ``per_structure.csv``, ``comparison.json`` (settings, runtime,
    computed claims), ``dsc_gain_vs_volume.png``, ``per_class_dsc.png`` and ``runs/<config>_seed<n>.json``
    (one per finished run; what a resumed comparison reuses).

    Example:
        >>> compare_losses("amos", output_dir="/tmp/cmp", quick=True)  # doctest: +SKIP

    Args:
        dataset: dataset layout, ``"amos"``, ``"brats"`` or ``"pengwin"``. Defaults to ``"amos"``.
        dataset_dir: dataset folder. Defaults to ``None`` (the synthetic dataset from
            ``monai_cwcd.data.ensure_demo_dataset``).
        output_dir: where the outputs go. Defaults to ``"compare_losses"``.
        losses: subset of :data:`BASELINE_LOSSES` plus ``"CWCD"``. Defaults to ``None`` (all).
        contour_settings: CWCD (kernel_size, iterations) rows. Defaults to ``((2, 1), (3, 1), (3,
            2), (3, 3))``.
        seeds: one run per seed and configuration (at least 2 for the statistics). Defaults to
            ``(0, 1, 2)``.
        epochs: passes over the training cases. Defaults to 40.
        batch_size: cases per step. Defaults to 2.
        learning_rate: Adam learning rate. Defaults to 2e-3 (the papers' 3e-4 is for hundreds of
            epochs; this budget is 40 epochs of 16 cases).
        spatial_size: fixed grid every case is resampled to. Defaults to ``(48, 48, 32)`` (the synthetic AMOS grid: no resampling).
        channels: U-Net widths. Defaults to ``(16, 32, 64, 128, 256)`` (the conference paper).
        pdanet: include the PDANet + CWCD row. Defaults to ``True``.
        pdanet_features: PDANet widths. Defaults to ``(8, 16, 32, 64)``: half the journal paper's
            ``(16, 32, 64, 128)``, whose full-resolution convolutions would take 23 of the 60 CPU
            minutes on their own.
        num_train: training cases used (first of the "train" split). Defaults to 16.
        num_test: held-out cases scored (first of the "test" split). Defaults to 10.
        num_cases: cases of the synthetic dataset to generate when ``dataset_dir`` is None; it is
            split ``(num_train, 1, num_test)``. Defaults to ``None`` (``num_train + 1 + num_test``).
            With a real ``dataset_dir`` the dataset's own (paper) split is used.
        quick: CI mode, overrides the schedule with :data:`QUICK` (1 epoch, tiny grid and nets,
            2 seeds); draws no conclusions. Defaults to ``False``.
        device: torch device. Defaults to ``None`` (CUDA if available, else CPU).
        verbose: print one line per run. Defaults to ``True``.
        resume: reuse the finished runs saved in ``output_dir/runs/`` (one JSON per configuration
            and seed, written atomically as soon as the run ends) when they were made with the same
            configuration, seed, budget and data cases; other runs are (re)trained. ``False``
            retrains everything. Defaults to ``True``.

    Returns:
        the content of ``comparison.json``.

    Raises:
        ValueError: fewer than 2 seeds, an unknown loss or dataset, an empty split.
    """
    from monai_cwcd.evaluation.report import write_report

    t_start = time.perf_counter()
    if quick:
        seeds, epochs, spatial_size = QUICK["seeds"], QUICK["epochs"], QUICK["spatial_size"]
        channels, pdanet_features, batch_size = QUICK["channels"], QUICK["pdanet_features"], QUICK["batch_size"]
        num_train, num_test = QUICK["num_train"], QUICK["num_test"]
    seeds = [int(s) for s in seeds]
    if len(seeds) < 2:
        raise ValueError(f"at least 2 seeds are needed for mean/std and the Wilcoxon test, got {seeds}.")
    configs = default_configs(losses, contour_settings, pdanet)
    spec = DATASETS.get(dataset)
    if spec is None:
        raise ValueError(f"dataset must be one of {sorted(DATASETS)}, got {dataset!r}.")
    split_counts = None
    synthetic = dataset_dir is None
    if dataset_dir is None:  # synthetic: generate exactly the cases needed, split train/1 val/test
        from monai_cwcd.data import ensure_demo_dataset

        if not (num_train and num_test):
            raise ValueError("num_train and num_test are required for the synthetic dataset (dataset_dir=None).")
        total = int(num_cases) if num_cases else int(num_train) + 1 + int(num_test)
        if total < int(num_train) + 1 + int(num_test):
            raise ValueError(f"num_cases={num_cases} < num_train + 1 + num_test = {int(num_train) + 1 + int(num_test)}.")
        split_counts = (total - 1 - int(num_test), 1, int(num_test))
        dataset_dir = ensure_demo_dataset(dataset, num_cases=total)
    dev = torch.device(device) if device else torch.device("cuda" if torch.cuda.is_available() else "cpu")
    t_load = time.perf_counter()
    train = load_tensors(dataset, dataset_dir, "train", spatial_size, num_train, split_counts)
    test = load_tensors(dataset, dataset_dir, "test", spatial_size, num_test, split_counts)
    load_seconds = time.perf_counter() - t_load
    num_classes, class_names, regions = spec["num_classes"], spec["class_names"], spec["regions"]

    per_case_rows: list[list[Any]] = []
    runs: list[dict[str, Any]] = []
    map_cache: dict[tuple, torch.Tensor | None] = {}
    budget = {
        "dataset": dataset, "dataset_dir": str(dataset_dir), "epochs": int(epochs), "batch_size": int(batch_size),
        "learning_rate": float(learning_rate), "spatial_size": [int(v) for v in spatial_size],
        "channels": [int(c) for c in channels], "pdanet_features": [int(c) for c in pdanet_features],
        "train_cases": list(train["case_id"]), "test_cases": list(test["case_id"]), "device_type": dev.type,
    }
    reused = 0
    for cfg in configs:
        key = (cfg.loss, cfg.kernel_size, cfg.iterations)
        for seed in seeds:
            run_file = Path(output_dir) / "runs" / f"{_slug(cfg.name)}_seed{seed}.json"
            ident = {**budget, "config": cfg.name, "loss": cfg.loss, "network": cfg.network,
                     "kernel_size": cfg.kernel_size, "iterations": cfg.iterations, "seed": seed}
            rec = _load_run(run_file, ident) if resume else None
            if rec is None:
                if key not in map_cache:
                    map_cache[key] = precompute_maps(cfg, train["label"], num_classes)
                per_case, last, secs = train_and_evaluate(
                    cfg, seed, train, test, map_cache[key], num_classes, epochs, batch_size, learning_rate,
                    channels, pdanet_features, class_names, regions, dev,
                )
                rec = {"ident": ident, "final_loss": last, "seconds": secs, "per_case": per_case}
                write_json(run_file, rec)  # atomic: a killed comparison resumes after the last finished run
            else:
                reused += 1
            per_case, last, secs = rec["per_case"], rec["final_loss"], rec["seconds"]
            runs.append({"config": cfg.name, "seed": seed, "final_loss": last, "seconds": secs})
            for case, recs in per_case.items():
                for s, r in recs.items():
                    per_case_rows.append([cfg.name, seed, case, s, r["dice"], r["hd95"], r["assd"], r["label_voxels"]])
            if verbose:
                mean_dsc = torch.tensor([r["dice"] for recs in per_case.values() for r in recs.values()]).nanmean()
                origin = " (reused)" if rec.get("_reused") else ""
                print(f"[compare] {cfg.name:<16} seed {seed}: mean DSC {float(mean_dsc):.3f}, loss {last:.4f}, {secs:.1f}s{origin}", flush=True)
    settings = {
        "dataset": dataset,
        "dataset_dir": str(dataset_dir),
        "synthetic": synthetic,
        "quick": bool(quick),
        "seeds": seeds,
        "epochs": int(epochs),
        "batch_size": int(batch_size),
        "learning_rate": float(learning_rate),
        "optimizer": "Adam",
        "spatial_size": [int(s) for s in spatial_size],
        "unet_channels": [int(c) for c in channels],
        "pdanet_features": [int(c) for c in pdanet_features],
        "num_train": int(train["image"].shape[0]),
        "num_test": int(test["image"].shape[0]),
        "num_classes": num_classes,
        "regions": regions,
        "device": str(dev),
        "torch_threads": torch.get_num_threads(),
        "configs": [{"name": c.name, "loss": c.loss, "network": c.network, "kernel_size": c.kernel_size, "iterations": c.iterations} for c in configs],
        "load_seconds": load_seconds,
        "total_seconds": time.perf_counter() - t_start,
        # load + every run's own training/evaluation time: the cost of one uninterrupted comparison
        "compute_seconds": load_seconds + sum(float(r["seconds"]) for r in runs),
        "reused_runs": reused,
    }
    return write_report(Path(output_dir), per_case_rows, runs, settings, train_voxels=_class_volumes(train["label"], spec))


def _slug(name: str) -> str:
    """File-name-safe form of a configuration name (``"CWCD k2 i1"`` -> ``"cwcd_k2_i1"``)."""
    return "".join(ch if ch.isalnum() else "_" for ch in name.lower()).strip("_")


def _load_run(path: Path, ident: dict[str, Any]) -> dict[str, Any] | None:
    """A finished run saved by an earlier invocation, if it was made with exactly ``ident``
    (configuration, seed, budget, data cases); ``None`` otherwise (missing, other settings, unreadable)."""
    import json
    import math

    try:
        rec = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(rec, dict) or rec.get("ident") != json.loads(json.dumps(ident)):
        return None

    def nan(v: Any) -> float:
        return math.nan if v is None else float(v)

    rec["_reused"] = True
    rec["final_loss"], rec["seconds"] = nan(rec.get("final_loss")), nan(rec.get("seconds"))
    rec["per_case"] = {
        case: {s: {k: (nan(v) if k != "label_voxels" else v) for k, v in r.items()} for s, r in recs.items()}
        for case, recs in rec["per_case"].items()
    }
    return rec


def _class_volumes(labels: torch.Tensor, spec: dict[str, Any]) -> dict[str, float]:
    """Mean fraction of the (resampled) volume each evaluated structure occupies in training labels."""
    n_vox = labels[0].numel()
    if spec["regions"]:
        groups = {k: list(v) for k, v in spec["regions"].items()}
    else:
        groups = {spec["class_names"][c]: [c] for c in range(1, spec["num_classes"])}
    return {k: float(torch.isin(labels, torch.tensor(v)).sum()) / labels.shape[0] / n_vox for k, v in groups.items()}

