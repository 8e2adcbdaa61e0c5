"""The rows of the comparison: each loss with every one of its settings written out, and the
networks at CPU-sized widths (issue 11, items 1 and 3).

Every loss is built from an explicit settings dict by :func:`build_loss`; an argument the loss
does not take raises ``TypeError`` (nothing is filtered away silently), and the settings a run used
are written into the results. Dice-family losses (Dice, SDL, Dice+CE, GDL, CWCD, Boundary+Dice's
Dice term) share one ``include_background`` value, chosen by the caller.

Baselines as their sources define them and as their users run them:

- ``GDL``: MONAI ``GeneralizedDiceLoss`` with its default ``w_type="square"`` (1 / V^2 class
  weights); on data with a 1:3000 volume range this weights the smallest structure ~10^5 times the
  largest and collapses, so ``GDL (simple)`` (``w_type="simple"``, 1 / V) and ``GDL+CE`` (square
  GDL + cross-entropy, the combination MONAI's ``GeneralizedDiceFocalLoss`` and nnU-Net-style users
  run) are reported beside it;
- ``RW (RRW)``: the region-wise loss with rectified region-wise maps alone (its paper) and
  ``RW (RRW)+CE``, the combination its reference repository trains with;
- ``Boundary+Dice``: Kervadec et al.: foreground-only boundary term (``include_background=False``)
  added to a Dice loss with the rebalancing weight ``a`` raised linearly over training;
- ``DWCE``: ``w0=1.0, sigma=2.0`` voxels, i.e. a map from 1 far from any boundary to 2 on it (the
  journal's DWCE map peaks at about 2); the Ronneberger defaults (10, 5) weight most of each organ
  by up to 11 on a 48 x 48 x 32 grid;
- ``Dice+CE (class-weighted)``: MONAI ``DiceCELoss(weight=w)`` with inverse-frequency class weights
  ``w_c = N / (C * n_c)`` counted on the training labels (MONAI applies them to both terms), the
  plain class-reweighting baseline CWCD's contour weighting must beat.
"""

from __future__ import annotations

import copy
import inspect
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn as nn
import torch.nn.functional as F

__all__ = [
    "BASELINE_LOSSES",
    "NETWORKS",
    "RunConfig",
    "default_configs",
    "loss_settings",
    "build_loss",
    "build_network",
    "network_settings",
    "count_parameters",
    "class_weights",
    "parse_contour_setting",
    "contour_widths_from_labels",
    "adaptive_fraction",
]

#: the baselines, in table order; the CWCD rows are added per contour setting and network.
BASELINE_LOSSES = (
    "CE",
    "CWCE",
    "Dice",
    "SDL",
    "Dice+CE",
    "Dice+CE (class-weighted)",
    "GDL",
    "GDL (simple)",
    "GDL+CE",
    "DWCE",
    "RW (RRW)",
    "RW (RRW)+CE",
    "Boundary+Dice",
)
LOSS_KINDS = (*BASELINE_LOSSES, "CWCD")
CONTOUR_LOSSES = ("CWCE", "SDL", "CWCD")

#: networks of the model-independence table, in table order.
NETWORKS = ("unet", "basicunet", "segresnet", "dynunet", "attentionunet", "unetr", "pdanet")


@dataclass(frozen=True)
class RunConfig:
    """One row of the comparison: a loss kind with its full settings, and a network.

    ``settings`` holds every keyword argument the loss is built with (see :func:`loss_settings`);
    ``kernel_size``/``iterations`` repeat the contour setting of contour-based losses for the tables.
    """

    name: str
    loss: str
    network: str = "unet"
    kernel_size: int = 3
    iterations: int = 1
    settings: dict = field(default_factory=dict, hash=False, compare=False)
    #: the contour setting as shown in the tables: ``"(3, 1)"``, ``"2 mm"``, ``"adaptive"``
    contour: str = "(3, 1)"


#: the adaptive rule of the comparison (as ``monai-cwcd contours --adaptive``): ``w_c = clip(0.1 r_c,
#: s_min, 6 s_min)`` with ``r_c`` the median equivalent radius and ``s_min`` the finest voxel spacing.
ADAPTIVE_FRACTION = 0.1


def parse_contour_setting(setting: Any) -> dict[str, Any]:
    """One contour setting of the comparison, normalised: a voxel setting ``(kernel_size, iterations)``
    (tuple or ``"3x1"``), a uniform width in millimetres (``"2mm"``, ``"2.5 mm"``), ``"adaptive"``
    (one width per structure from the training labels, :func:`contour_widths_from_labels` with its
    default fraction 0.1 of the equivalent radius) or ``"adaptive:F"`` (the same rule with fraction
    ``F`` in (0, 1]).

    Returns:
        ``{"kernel_size", "iterations", "contour_width_mm", "label", "suffix"}``: ``contour_width_mm``
        is ``None`` (voxel setting), a float, ``"adaptive"`` or ``"adaptive:F"``; ``label`` is the
        tables' text and ``suffix`` the row-name suffix (``""`` for the reference (3, 1)).

    Raises:
        ValueError: anything else (the message lists the accepted forms).
    """
    text = setting.strip().lower().replace(" ", "") if isinstance(setting, str) else None
    try:
        if text == "adaptive":
            return {"kernel_size": 3, "iterations": 1, "contour_width_mm": "adaptive", "label": "adaptive", "suffix": " adaptive"}
        if text is not None and text.startswith("adaptive:"):
            f = float(text.split(":", 1)[1])
            if not 0 < f <= 1:
                raise ValueError
            return {"kernel_size": 3, "iterations": 1, "contour_width_mm": f"adaptive:{f:g}", "label": f"adaptive ({f:g} r)",
                    "suffix": f" adaptive {f:g}"}
        if text is not None and text.endswith("mm"):
            w = float(text[:-2])
            if not (w > 0 and w < float("inf")):
                raise ValueError
            return {"kernel_size": 3, "iterations": 1, "contour_width_mm": w, "label": f"{w:g} mm", "suffix": f" {w:g}mm"}
        k, it = (int(v) for v in (text.split("x") if text is not None else setting))
        if k < 2 or it < 1:
            raise ValueError
    except (ValueError, TypeError):
        raise ValueError(
            f"contour setting {setting!r}: expected (kernel_size, iterations) such as (3, 1) or '3x1' (kernel >= 2, "
            "iterations >= 1), a width in millimetres such as '2mm', 'adaptive', or 'adaptive:F' with 0 < F <= 1."
        ) from None
    suffix = "" if (k, it) == (3, 1) else f" k{k} i{it}"
    return {"kernel_size": k, "iterations": it, "contour_width_mm": None, "label": f"({k}, {it})", "suffix": suffix}


def adaptive_fraction(contour_width_mm: Any) -> float | None:
    """The fraction of an ``"adaptive"``/``"adaptive:F"`` setting, ``None`` for any other value."""
    if isinstance(contour_width_mm, str) and contour_width_mm.startswith("adaptive"):
        return float(contour_width_mm.split(":", 1)[1]) if ":" in contour_width_mm else ADAPTIVE_FRACTION
    return None


def contour_widths_from_labels(
    labels: torch.Tensor, spacings: Sequence[Sequence[float]], num_classes: int, fraction: float = ADAPTIVE_FRACTION
) -> dict[int, float]:
    """The adaptive rule of ``monai-cwcd contours --adaptive`` on in-memory training labels:
    ``w_c = clip(fraction * r_c, s_min, 6 s_min)`` mm, ``r_c`` the median over the cases containing
    ``c`` of its equivalent radius ``(3 V_c / (4 pi))^(1/3)``, ``s_min`` the median finest voxel
    spacing; the background and absent classes get ``s_min``
    (:func:`monai_cwcd.data.contours.equivalent_radius_width`).

    Args:
        labels: class indices ``(N, 1, *spatial)``.
        spacings: voxel spacing in mm of each case, ``N`` sequences.
        num_classes: number of classes incl. background.
        fraction: width as a fraction of the equivalent radius. Defaults to 0.1.

    Returns:
        ``{class: width_mm}`` for every class (rounded to 1 um).

    Raises:
        ValueError: a spacing count that is not ``N``.
    """
    import math

    from monai_cwcd.data.contours import adaptive_clip_range, equivalent_radius_width

    if len(spacings) != labels.shape[0]:
        raise ValueError(f"got {len(spacings)} spacings for {labels.shape[0]} label volumes.")
    lo, hi, _ = adaptive_clip_range(spacings)
    volumes: dict[int, list[float]] = {c: [] for c in range(num_classes)}
    for lab, sp in zip(labels, spacings):
        counts = torch.bincount(lab.reshape(-1).long(), minlength=num_classes)
        voxel = float(math.prod(float(v) for v in sp))
        for c in range(1, num_classes):
            if counts[c] > 0:
                volumes[c].append(float(counts[c]) * voxel)
    out = {0: round(lo, 3)}
    for c in range(1, num_classes):
        out[c] = round(equivalent_radius_width(volumes[c], fraction, lo, hi)[1], 3) if volumes[c] else round(lo, 3)
    return out


def loss_settings(
    loss: str, include_background: bool = False, kernel_size: int = 3, iterations: int = 1,
    contour_width_mm: float | str | None = None,
) -> dict[str, Any]:
    """The full, explicit settings of one loss kind (what :func:`build_loss` passes on).

    ``"weight": "inverse_frequency"`` is replaced by the weights counted on the training labels, and
    ``"contour_width_mm": "adaptive"`` by the widths of :func:`contour_widths_from_labels`, when the
    loss is built. ``contour_width_mm`` (CWCD only) replaces ``kernel_size``/``iterations``.

    Raises:
        ValueError: unknown loss kind.
    """
    ib = bool(include_background)
    dice = {"include_background": ib, "to_onehot_y": True, "softmax": True}
    contour = {"kernel_size": int(kernel_size), "iterations": int(iterations), "edge_is_contour": False}
    table: dict[str, dict[str, Any]] = {
        "CE": {"cross_entropy": {}},
        "CWCE": {"ContourWeightedCELoss": {"lambda_contour": 2.0, **contour}},
        "Dice": {"DiceLoss": dict(dice)},
        "SDL": {"SeparableDiceLoss": {**dice, "beta": 0.5, **contour}},
        "Dice+CE": {"DiceCELoss": {**dice, "lambda_dice": 1.0, "lambda_ce": 1.0}},
        "Dice+CE (class-weighted)": {
            "DiceCELoss": {**dice, "lambda_dice": 1.0, "lambda_ce": 1.0, "weight": "inverse_frequency"}
        },
        "GDL": {"GeneralizedDiceLoss": {**dice, "w_type": "square"}},
        "GDL (simple)": {"GeneralizedDiceLoss": {**dice, "w_type": "simple"}},
        "GDL+CE": {"GeneralizedDiceLoss": {**dice, "w_type": "square"}, "cross_entropy": {}},
        "DWCE": {"DistanceWeightedCELoss": {"w0": 1.0, "sigma": 2.0}},
        # the region-wise loss sums over all channels in its paper and reference code
        "RW (RRW)": {"RegionWiseLoss": {"include_background": True, "softmax": True}},
        "RW (RRW)+CE": {"RegionWiseLoss": {"include_background": True, "softmax": True}, "cross_entropy": {}},
        "Boundary+Dice": {
            "DiceLoss": dict(dice),
            "BoundaryLoss": {"include_background": False, "to_onehot_y": True, "softmax": True},
            "schedule": {"a_start": 0.01, "a_max": 0.5},
        },
        "CWCD": {"CWCDLoss": {**dice, "alpha": 0.5, "beta": 0.5, "lambda_contour": 2.0, **contour}},
    }
    if loss not in table:
        raise ValueError(f"unknown loss {loss!r}; expected one of {list(LOSS_KINDS)}.")
    out = copy.deepcopy(table[loss])
    if contour_width_mm is not None:
        if loss != "CWCD":
            raise ValueError(f"contour_width_mm is a setting of the CWCD rows, not of {loss!r}.")
        out["CWCDLoss"]["contour_width_mm"] = contour_width_mm
    return out


def default_configs(
    losses: Sequence[str] | None = None,
    contour_settings: Sequence[Sequence[int]] = ((2, 1), (3, 1), (3, 2), (3, 3)),
    networks: Sequence[str] = ("unet",),
    include_background: bool = False,
) -> list[RunConfig]:
    """The comparison rows: each wanted loss with the U-Net, CWCD with the U-Net for every contour
    setting, and ``Dice+CE`` and ``CWCD`` (3, 1) with every other network of ``networks``.

    Args:
        losses: subset of :data:`BASELINE_LOSSES` plus ``"CWCD"``. Defaults to ``None`` (all).
        contour_settings: the CWCD rows' contour settings (:func:`parse_contour_setting`: ``(kernel_size,
            iterations)``, ``"2mm"``, ``"adaptive"``); CWCE and SDL use (3, 1). Defaults to ``((2, 1),
            (3, 1), (3, 2), (3, 3))``.
        networks: networks of :data:`NETWORKS`; ``"unet"`` carries the loss comparison, each other
            one adds a ``Dice+CE [net]`` and a ``CWCD [net]`` row (and the U-Net gets its ``Dice+CE``
            and ``CWCD`` rows whatever ``losses`` says). Defaults to ``("unet",)``.
        include_background: the one ``include_background`` of every Dice-family loss. Defaults to
            ``False``.

    Raises:
        ValueError: an unknown loss or network name.
    """
    wanted = list(losses) if losses else list(LOSS_KINDS)
    unknown = [w for w in wanted if w not in LOSS_KINDS]
    if unknown:
        raise ValueError(f"unknown loss name(s) {unknown}; expected any of {list(LOSS_KINDS)}.")
    bad = [n for n in networks if n not in NETWORKS]
    if bad:
        raise ValueError(f"unknown network(s) {bad}; expected any of {list(NETWORKS)}.")
    ib = bool(include_background)
    parsed = [parse_contour_setting(c) for c in contour_settings]
    if "unet" in networks and len(networks) > 1:  # the model-independence table needs the U-Net pair too
        wanted += [w for w in ("Dice+CE", "CWCD") if w not in wanted]
        if not any(p["suffix"] == "" for p in parsed):
            parsed.append(parse_contour_setting((3, 1)))
    rows: list[RunConfig] = []
    if "unet" in networks:
        rows += [RunConfig(name=w, loss=w, settings=loss_settings(w, ib)) for w in BASELINE_LOSSES if w in wanted]
        if "CWCD" in wanted:
            for p in parsed:
                k, it = p["kernel_size"], p["iterations"]
                rows.append(RunConfig(f"CWCD{p['suffix']}", "CWCD", "unet", k, it,
                                      loss_settings("CWCD", ib, k, it, p["contour_width_mm"]), p["label"]))
            if not any(r.name == "CWCD" for r in rows):  # the reference row must exist
                rows.append(RunConfig("CWCD", "CWCD", settings=loss_settings("CWCD", ib)))
    for net in networks:
        if net == "unet":
            continue
        for w in ("Dice+CE", "CWCD"):
            rows.append(RunConfig(f"{w} [{net}]", w, net, settings=loss_settings(w, ib)))
    return rows


# ---------------------------------------------------------------------------------------------
# losses


def class_weights(labels: torch.Tensor, num_classes: int) -> torch.Tensor:
    """Inverse-frequency class weights ``w_c = N / (C * n_c)`` of class-index ``labels`` (any
    shape); a class absent from ``labels`` gets the largest weight of the present classes.

    Raises:
        ValueError: a label value outside ``[0, num_classes)``.
    """
    flat = labels.reshape(-1).long()
    if flat.numel() and (int(flat.min()) < 0 or int(flat.max()) >= num_classes):
        raise ValueError(f"label values in [{int(flat.min())}, {int(flat.max())}]; expected 0..{num_classes - 1}.")
    counts = torch.bincount(flat, minlength=num_classes).double()
    w = torch.where(counts > 0, counts.sum() / (num_classes * counts.clamp_min(1)), torch.zeros_like(counts))
    w[counts == 0] = w.max()
    return w.float()


class _IndexCrossEntropy(nn.Module):
    """Plain softmax cross-entropy on a (B, 1, *) class-index target (journal eq. 10 up to the 1/M)."""

    def forward(self, input: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return F.cross_entropy(input, target[:, 0].long())


class _SumLoss(nn.Module):
    """``first + second``, the first taking an optional precomputed map (GDL+CE, RW+CE)."""

    def __init__(self, first: nn.Module, second: nn.Module) -> None:
        super().__init__()
        self.first, self.second = first, second

    def forward(self, input: torch.Tensor, target: torch.Tensor, weight_map: torch.Tensor | None = None) -> torch.Tensor:
        kw = {"weight_map": weight_map} if weight_map is not None else {}
        return self.first(input, target, **kw) + self.second(input, target)


def _boundary_loss_class() -> type:
    """MONAI ``BoundaryLoss`` that can take its signed distance maps precomputed (same values)."""
    from monai.losses import BoundaryLoss

    class _PrecomputedBoundaryLoss(BoundaryLoss):
        precomputed: torch.Tensor | None = None

        def compute_distance_map(self, target: torch.Tensor) -> torch.Tensor:
            pre = self.precomputed
            if pre is not None:
                if pre.shape[1] == target.shape[1] + 1:  # maps of every class, background already dropped from target
                    pre = pre[:, 1:]
                return pre.to(device=target.device, dtype=torch.float32)
            return super().compute_distance_map(target)

    return _PrecomputedBoundaryLoss


class _BoundaryDice(nn.Module):
    """Kervadec et al.'s rebalanced ``(1 - a) Dice + a Boundary``, with ``a`` raised linearly from
    ``a_start`` to ``a_max`` over training (their +0.01/epoch schedule compressed to our budget).

    The boundary term is MONAI's ``BoundaryLoss``; its signed distance maps (one SciPy EDT per case
    and class, which dominates the step time on CPU) can be passed precomputed as ``distance_map``
    ``(B, C, *spatial)``, from :meth:`distance_maps`, since the labels do not change."""

    def __init__(self, dice: Mapping[str, Any], boundary: Mapping[str, Any], a_start: float = 0.01, a_max: float = 0.5) -> None:
        super().__init__()
        from monai.losses import DiceLoss

        self.dice = _strict(DiceLoss, dice)
        self.boundary = _strict(_boundary_loss_class(), boundary)
        self.a_start, self.a_max, self.progress = float(a_start), float(a_max), 0.0

    @staticmethod
    def distance_maps(labels: torch.Tensor, num_classes: int) -> torch.Tensor:
        """MONAI ``BoundaryLoss.compute_distance_map`` of each one-hot label ``(N, 1, *spatial)``."""
        from monai.networks.utils import one_hot

        loss = _boundary_loss_class()(to_onehot_y=True, softmax=True)
        return torch.cat([loss.compute_distance_map(one_hot(lab[None], num_classes)) for lab in labels])

    def forward(self, input: torch.Tensor, target: torch.Tensor, distance_map: torch.Tensor | None = None) -> torch.Tensor:
        a = self.a_start + (self.a_max - self.a_start) * self.progress
        self.boundary.precomputed = distance_map
        try:
            boundary = self.boundary(input, target)
        finally:
            self.boundary.precomputed = None
        return (1 - a) * self.dice(input, target) + a * boundary


def _strict(cls: Callable, kwargs: Mapping[str, Any]) -> Any:
    """``cls(**kwargs)``, ``TypeError`` naming the arguments ``cls`` does not take (never dropped)."""
    params = inspect.signature(cls).parameters
    if not any(p.kind == p.VAR_KEYWORD for p in params.values()):
        unknown = sorted(set(kwargs) - set(params))
        if unknown:
            raise TypeError(f"{getattr(cls, '__name__', cls)} does not take argument(s) {unknown}; it takes {sorted(params)}.")
    return cls(**kwargs)


def _resolve_weight(kw: dict[str, Any], weights: torch.Tensor | None, widths: Mapping[int, float] | None = None) -> dict[str, Any]:
    if kw.get("weight") == "inverse_frequency":
        if weights is None:
            raise ValueError("a loss with weight='inverse_frequency' needs the training labels' class weights.")
        kw = dict(kw, weight=weights.clone())
    if adaptive_fraction(kw.get("contour_width_mm")) is not None:
        if widths is None:
            raise ValueError("a loss with contour_width_mm='adaptive' needs the training labels' contour widths.")
        kw = dict(kw, contour_width_mm=dict(widths))
    return kw


def build_loss(
    cfg: RunConfig, num_classes: int, weights: torch.Tensor | None = None, contour_widths: Mapping[int, float] | None = None
) -> nn.Module:
    """The loss module of one configuration, built from ``cfg.settings`` (softmax over logits,
    class-index targets).

    Args:
        cfg: the row; ``cfg.settings`` maps each component (``"DiceCELoss"``, ``"cross_entropy"``,
            ...) to its keyword arguments, see :func:`loss_settings`.
        num_classes: number of classes incl. background.
        weights: inverse-frequency class weights (:func:`class_weights`) for
            ``weight="inverse_frequency"``. Defaults to ``None``.
        contour_widths: per-class widths in mm (:func:`contour_widths_from_labels`) for
            ``contour_width_mm="adaptive"``. Defaults to ``None``.

    Raises:
        TypeError: a setting the loss does not take.
        ValueError: unknown components, or ``"inverse_frequency"``/``"adaptive"`` without their values.
    """
    from monai.losses import BoundaryLoss, DiceCELoss, DiceLoss, GeneralizedDiceLoss

    import monai_cwcd.losses as L

    s = cfg.settings or loss_settings(cfg.loss, kernel_size=cfg.kernel_size, iterations=cfg.iterations)
    classes: dict[str, Callable] = {
        "DiceLoss": DiceLoss,
        "DiceCELoss": DiceCELoss,
        "GeneralizedDiceLoss": GeneralizedDiceLoss,
        "BoundaryLoss": BoundaryLoss,
        "ContourWeightedCELoss": L.ContourWeightedCELoss,
        "SeparableDiceLoss": L.SeparableDiceLoss,
        "CWCDLoss": L.CWCDLoss,
        "DistanceWeightedCELoss": L.DistanceWeightedCELoss,
        "RegionWiseLoss": L.RegionWiseLoss,
    }
    unknown = sorted(set(s) - set(classes) - {"cross_entropy", "schedule"})
    if unknown:
        raise ValueError(f"{cfg.name}: unknown loss component(s) {unknown}; expected any of {sorted(classes)}.")
    if "BoundaryLoss" in s:
        return _BoundaryDice(s["DiceLoss"], s["BoundaryLoss"], **s.get("schedule", {}))
    parts = [_strict(classes[k], _resolve_weight(dict(v), weights, contour_widths)) for k, v in s.items() if k in classes]
    if "cross_entropy" in s:
        if s["cross_entropy"]:
            raise TypeError(f"{cfg.name}: the plain cross-entropy takes no settings, got {sorted(s['cross_entropy'])}.")
        parts.append(_IndexCrossEntropy())
    if len(parts) == 1:
        return parts[0]
    if len(parts) == 2:
        return _SumLoss(*parts)
    raise ValueError(f"{cfg.name}: expected one or two loss components, got {list(s)}.")


# ---------------------------------------------------------------------------------------------
# networks


def network_settings(network: str, spatial_size: Sequence[int], width: Sequence[int] | None = None) -> dict[str, Any]:
    """Keyword arguments of ``network`` at a CPU-sized width (``in_channels``/``out_channels`` are
    added by :func:`build_network`). ``width``: the 4-5 channel counts of the encoder levels.

    Defaults per network: MONAI ``UNet`` (16, 32, 64, 128, 256) (the conference paper, BatchNorm,
    ReLU), ``BasicUNet`` (8, 16, 32, 64, 128, 8), ``SegResNet`` init_filters 8, ``DynUNet``
    (nnU-Net style, 4 levels) filters (16, 32, 64, 128), ``AttentionUnet`` (8, 16, 32, 64),
    ``UNETR`` feature size 8, hidden 192, 4 heads, MLP 384, ``PDANet`` (8, 16, 32, 64) (half the
    journal's width).

    Raises:
        ValueError: unknown network.
    """
    w = [int(c) for c in width] if width else None

    def levels(default: list[int], n: int) -> list[int]:  # the first n widths, doubling past the given ones
        out = list(w or default)[:n]
        while len(out) < n:
            out.append(2 * out[-1])
        return out

    size = [int(v) for v in spatial_size]
    if network == "unet":
        ch = w or [16, 32, 64, 128, 256]
        return {"channels": ch, "strides": [2] * (len(ch) - 1), "norm": "batch", "act": "relu"}
    if network == "basicunet":
        f = levels([8, 16, 32, 64, 128], 5)
        return {"features": [*f, f[0]]}
    if network == "segresnet":
        f0 = (w or [8])[0]
        return {"init_filters": f0, "norm": ["group", {"num_groups": min(8, f0)}], "blocks_down": [1, 2, 2, 4], "blocks_up": [1, 1, 1]}
    if network == "dynunet":
        f = levels([16, 32, 64, 128], 4)
        return {"kernel_size": [3] * len(f), "strides": [1] + [2] * (len(f) - 1), "upsample_kernel_size": [2] * (len(f) - 1), "filters": f}
    if network == "attentionunet":
        ch = levels([8, 16, 32, 64], 4)
        return {"channels": ch, "strides": [2] * (len(ch) - 1)}
    if network == "unetr":
        fs = (w or [8])[0]
        return {"img_size": size, "feature_size": fs, "hidden_size": 24 * fs, "mlp_dim": 48 * fs, "num_heads": 4, "norm_name": "instance"}
    if network == "pdanet":
        return {"features": levels([8, 16, 32, 64], 4), "pad_input": True}
    raise ValueError(f"unknown network {network!r}; expected one of {list(NETWORKS)}.")


def build_network(network: str, in_channels: int, out_channels: int, settings: Mapping[str, Any]) -> nn.Module:
    """The network ``network`` (3D) with ``settings`` from :func:`network_settings`; returns raw logits.

    Raises:
        ValueError: unknown network. TypeError: a setting the network does not take.
    """
    from monai.networks import nets as N

    from monai_cwcd.networks.nets import PDANet

    classes = {"unet": N.UNet, "basicunet": N.BasicUNet, "segresnet": N.SegResNet, "dynunet": N.DynUNet,
               "attentionunet": N.AttentionUnet, "unetr": N.UNETR, "pdanet": PDANet}
    if network not in classes:
        raise ValueError(f"unknown network {network!r}; expected one of {list(NETWORKS)}.")
    kw = {"spatial_dims": 3, "in_channels": in_channels, "out_channels": out_channels, **settings}
    return _strict(classes[network], kw)


def count_parameters(net: nn.Module) -> int:
    """Number of trainable parameters."""
    return int(sum(p.numel() for p in net.parameters() if p.requires_grad))
