"""Baseline losses the papers compare CWCD against: distance-weighted cross-entropy (DWCE) and the
region-wise loss with rectified region-wise maps (RRW). MONAI already ships the others
(``GeneralizedDiceLoss``, ``DiceCELoss``, ``FocalLoss``); use those."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from monai.utils import LossReduction
from torch.nn.modules.loss import _Loss

from monai_cwcd.losses import functional as LF
from monai_cwcd.losses._utils import as_class_weight, check_activation, check_non_negative, reduce_loss
from monai_cwcd.losses.functional import _plain
from monai_cwcd.transforms.functional import distance_weight_map, rrw_map

__all__ = ["DistanceWeightedCELoss", "RegionWiseLoss"]


def _check_map(weight_map: torch.Tensor, input: torch.Tensor, channels: tuple[int, ...], owner: str) -> torch.Tensor:
    """``weight_map`` as float32 on the input's device, ``ValueError`` unless it is (B, c, *spatial)
    with ``c`` in ``channels`` and the input's batch size and spatial shape."""
    weight_map = _plain(weight_map)
    if (
        weight_map.ndim != input.ndim
        or weight_map.shape[0] != input.shape[0]
        or weight_map.shape[2:] != input.shape[2:]
        or weight_map.shape[1] not in channels
    ):
        expected = " or ".join(f"(B, {c}, *spatial)" for c in channels)
        raise ValueError(
            f"{owner}: weight_map shape {tuple(weight_map.shape)} does not match input shape "
            f"{tuple(input.shape)}; expected {expected}."
        )
    return weight_map.to(device=input.device, dtype=torch.float32)


class DistanceWeightedCELoss(_Loss):
    """Cross-entropy weighted by a boundary distance map (DWCE), the baseline of both papers.

    Shapes: ``input`` logits ``(B, C, *spatial)`` (2 or 3 spatial dims for the on-the-fly map);
    ``target`` ``(B, 1, *spatial)`` class indices or ``(B, C, *spatial)`` one-hot / multi-label;
    ``weight_map`` (optional) ``(B, 1, *spatial)``, e.g. from
    ``monai_cwcd.transforms.DistanceWeightMapd``. Without it the map is computed from ``target``
    under ``torch.no_grad()`` by ``monai_cwcd.transforms.functional.distance_weight_map``::

        w(x) = 1 + w0 * exp(-d(x)^2 / (2 sigma^2)),   d(x) = distance to the nearest class boundary
        L_DWCE = sum_i cw_{y_i} w_i (-log softmax(x_i)_{y_i}) / sum_i cw_{y_i}

    (Caliva et al., "Distance map loss penalty term for semantic segmentation", 2019; the weight map
    of Ronneberger et al.'s U-Net; cited as DWCE by the journal and conference CWCD papers.) The
    cross-entropy and its normalisation are those of
    :class:`~monai_cwcd.losses.ContourWeightedCELoss` with the voxel weight ``w`` in place of
    ``1 + lambda * contour`` (:func:`monai_cwcd.losses.functional.cross_entropy_stats` and
    :func:`~monai_cwcd.losses.functional.normalise_cross_entropy`: PyTorch's weighted mean over the
    batch, a class of weight 0 ignored, never 0/0); ``sigmoid=True`` (or C == 1) gives per-channel BCE with logits, each
    channel weighted by ``w``.

    Reduction: per sample, shape (B,) (with ``batch=True`` the sums run over the batch too: shape
    (1,)); ``reduction="none"`` returns it, ``"mean"``/``"sum"`` reduce it to a scalar.

    Example:
        >>> import torch
        >>> from monai_cwcd.losses import DistanceWeightedCELoss
        >>> logits = torch.randn(2, 3, 16, 16, requires_grad=True)
        >>> label = torch.randint(0, 3, (2, 1, 16, 16))
        >>> DistanceWeightedCELoss()(logits, label).backward()

    Args:
        to_onehot_y: convert a class-index ``target`` to one-hot for the per-channel BCE path.
            Defaults to False.
        sigmoid: per-channel BCE with logits instead of softmax cross-entropy. Defaults to False.
        w0: weight added at the boundary, >= 0. Defaults to 10.0.
        sigma: decay length in voxels, > 0. Defaults to 5.0.
        weight: per-class weights (``C`` entries or one number), as ``weight`` of
            ``torch.nn.CrossEntropyLoss`` (``pos_weight`` per channel for BCE). Defaults to None.
        reduction: ``"none"`` (per sample, (B,) or (1,)), ``"mean"`` or ``"sum"``. Defaults to ``"mean"``.
        batch: sum over the batch before the ratio. Defaults to False.

    Raises:
        ValueError: ``w0 < 0``, ``sigma <= 0``, a negative ``weight``, or in ``forward`` a shape
            mismatch between input/target/weight_map, class indices outside ``[0, C-1]`` or
            non-integral.
    """

    def __init__(
        self,
        to_onehot_y: bool = False,
        sigmoid: bool = False,
        w0: float = 10.0,
        sigma: float = 5.0,
        weight: Sequence[float] | float | int | torch.Tensor | None = None,
        reduction: LossReduction | str = LossReduction.MEAN,
        batch: bool = False,
    ) -> None:
        super().__init__(reduction=LossReduction(reduction).value)
        self.to_onehot_y = bool(to_onehot_y)
        self.sigmoid = bool(sigmoid)
        self.w0 = check_non_negative("w0", w0)
        if isinstance(sigma, bool) or not float(sigma) > 0:
            raise ValueError(f"sigma must be > 0, got {sigma!r}.")
        self.sigma = float(sigma)
        self.batch = bool(batch)
        self.register_buffer("class_weight", as_class_weight(weight))
        self.class_weight: torch.Tensor | None

    def forward(
        self, input: torch.Tensor, target: torch.Tensor, weight_map: torch.Tensor | None = None
    ) -> torch.Tensor:
        """
        Args:
            input: logits ``(B, C, *spatial)``.
            target: ``(B, 1, *spatial)`` class indices or ``(B, C, *spatial)`` one-hot / multi-label.
            weight_map: ``(B, 1, *spatial)`` precomputed distance weight map; None computes it from
                ``target``. Defaults to None.

        Returns:
            the loss, reduced as ``reduction`` says.
        """
        owner = type(self).__name__
        with torch.autocast(device_type=_plain(input).device.type, enabled=False):
            prep = LF.prepare_target(
                input, target, to_onehot_y=self.to_onehot_y, sigmoid=self.sigmoid, need_one_hot=False, owner=owner
            )
            if weight_map is None:
                with torch.no_grad():
                    label = prep.index if prep.index is not None else prep.dense
                    weight_map = distance_weight_map(
                        label, prep.spatial_dims, w0=self.w0, sigma=self.sigma, multi_label=prep.index is None
                    )
            weight_map = _check_map(weight_map, prep.logits, (1,), owner)
            num, den = LF.cross_entropy_stats(prep, weight_map, self.class_weight)
            return reduce_loss(LF.normalise_cross_entropy(num, den, self.batch), self.reduction)


class RegionWiseLoss(_Loss):
    """Region-wise loss with rectified region-wise (RRW) maps (Valverde et al., "Region-wise loss for
    biomedical image segmentation", paper ``004``): the mean of the predicted probabilities times the
    RRW map.

    Shapes: ``input`` ``(B, C, *spatial)`` (2 or 3 spatial dims for the on-the-fly map); ``target``
    ``(B, 1, *spatial)`` class indices or ``(B, C, *spatial)`` one-hot / multi-label; ``weight_map``
    (optional) ``(B, C, *spatial)`` RRW map, e.g. from ``monai_cwcd.transforms.RRWMapd``. Without it
    the map is computed from ``target`` under ``torch.no_grad()`` by
    ``monai_cwcd.transforms.functional.rrw_map``::

        RRW_c(x) = -d(x) / max_{G_c} d   inside G_c,   1 elsewhere
        L_RW = mean_{c, x} p_c(x) * RRW_c(x)

    with ``d`` the Euclidean distance to the nearest voxel outside ``G_c`` and ``p`` the activation of
    ``input`` (``softmax=True`` is the paper's setting). The loss is bounded, in [-1, 1], and lowest
    when all probability mass sits deep inside the right class.

    Reduction: per sample, shape (B,) (with ``batch=True`` the mean runs over the batch too: shape
    (1,)); ``reduction="none"`` returns it, ``"mean"``/``"sum"`` reduce it to a scalar.

    Example:
        >>> import torch
        >>> from monai_cwcd.losses import RegionWiseLoss
        >>> logits = torch.randn(2, 3, 16, 16, requires_grad=True)
        >>> label = torch.randint(0, 3, (2, 1, 16, 16))
        >>> RegionWiseLoss(softmax=True)(logits, label).backward()

    Args:
        include_background: keep channel 0 in the mean. Defaults to True.
        sigmoid: apply a sigmoid to ``input``. Defaults to False.
        softmax: apply a softmax to ``input``. Defaults to False.
        other_act: another activation applied to ``input``. Defaults to None.
        reduction: ``"none"`` (per sample, (B,) or (1,)), ``"mean"`` or ``"sum"``. Defaults to ``"mean"``.
        batch: average over the batch as well (one value for the batch). Defaults to False.

    Raises:
        TypeError: ``other_act`` is not callable.
        ValueError: more than one of ``sigmoid``/``softmax``/``other_act``, or in ``forward`` a shape
            mismatch between input/target/weight_map, class indices outside ``[0, C-1]`` or
            non-integral.
    """

    def __init__(
        self,
        include_background: bool = True,
        sigmoid: bool = False,
        softmax: bool = False,
        other_act: Callable | None = None,
        reduction: LossReduction | str = LossReduction.MEAN,
        batch: bool = False,
    ) -> None:
        super().__init__(reduction=LossReduction(reduction).value)
        check_activation(sigmoid, softmax, other_act)
        self.include_background = bool(include_background)
        self.sigmoid = bool(sigmoid)
        self.softmax = bool(softmax)
        self.other_act = other_act
        self.batch = bool(batch)

    def forward(
        self, input: torch.Tensor, target: torch.Tensor, weight_map: torch.Tensor | None = None
    ) -> torch.Tensor:
        """
        Args:
            input: ``(B, C, *spatial)`` logits (with an activation flag) or probabilities.
            target: ``(B, 1, *spatial)`` class indices or ``(B, C, *spatial)`` one-hot / multi-label.
            weight_map: ``(B, C, *spatial)`` precomputed RRW map; None computes it from ``target``.
                Defaults to None.

        Returns:
            the loss, reduced as ``reduction`` says.
        """
        owner = type(self).__name__
        with torch.autocast(device_type=_plain(input).device.type, enabled=False):
            prep = LF.prepare_target(input, target, to_onehot_y=False, sigmoid=False, need_one_hot=False, owner=owner)
            if weight_map is None:
                with torch.no_grad():
                    if prep.index is not None:
                        weight_map = rrw_map(prep.index, prep.spatial_dims, num_classes=prep.num_classes)
                    else:
                        weight_map = rrw_map(prep.dense, prep.spatial_dims, multi_label=True)
            weight_map = _check_map(weight_map, prep.logits, (prep.num_classes,), owner)
            p, _ = LF.activate(prep, self.sigmoid, self.softmax, self.other_act)
            f = p * weight_map
            if not self.include_background and f.shape[1] > 1:
                f = f[:, 1:]
            f = f.mean(dim=tuple(range(1, f.ndim)))
            if self.batch:
                f = f.mean(0, keepdim=True)
            return reduce_loss(f, self.reduction)
