"""Separable Dice loss (SDL), journal paper eqs. 13-15."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import torch
from monai.utils import LossReduction

from monai_cwcd.losses._utils import ContourLossBase, reduce_loss

__all__ = ["SeparableDiceLoss"]


class SeparableDiceLoss(ContourLossBase):
    """Dice loss computed separately on each class's erosion contour and on the remaining voxels.

    Shapes: ``input`` ``(B, C, *spatial)`` (1 to 3 spatial dims); ``target`` ``(B, 1, *spatial)``
    class indices (with ``to_onehot_y=True``) or ``(B, C, *spatial)`` one-hot / multi-label;
    ``contour`` (optional) ``(B, 1, *spatial)`` own-class or ``(B, C, *spatial)`` per-class contour.
    Without ``contour`` (and no hand-over, see ``set_contour``) the contour is computed from
    ``target`` on the input's device under ``torch.no_grad()``.

    For each class ``j`` with contour ``C_j = G_j - erode(G_j)`` (journal eq. 8; for exclusive
    classes ``C_j = g_j * w`` with ``w`` the own-class map; a given per-class channel is restricted
    to the voxels of class ``j``), journal eqs. 13-15 (Huang et al., "Partial Decoder Attention
    Network with Contour Weighted Loss Function for Data-Imbalance Medical Image Segmentation")::

        L_c   = 1 - mean_j (2 sum_{C_j} p g + smooth_nr) / (sum_{C_j} p + sum_{C_j} g + smooth_dr)
        L_noc = 1 - mean_j (2 sum_{~C_j} p g + smooth_nr) / (sum_{~C_j} p + sum_{~C_j} g + smooth_dr)
        L_SDL = beta * L_c + (1 - beta) * L_noc

    ``squared_pred=True`` squares ``p`` and ``g`` in the denominators (the conference paper's eqs.
    4-5). ``pool_classes=True`` sums numerators and denominators over the classes before the ratio,
    as the papers' code release does. An empty set (an absent class, or an empty contour or
    non-contour set) gives a ratio of 1 (a term of 0), also with ``smooth_nr = smooth_dr = 0`` where
    the ratio would be 0/0: MONAI's value for an empty set under equal smoothing. So an all-zero
    contour gives ``(1 - beta)`` times MONAI's ``DiceLoss`` with the same flags (when
    ``smooth_nr == smooth_dr``), and with ``beta=0`` exactly MONAI's ``DiceLoss``. The
    mathematics is :func:`monai_cwcd.losses.functional.separable_dice_stats` and
    :func:`~monai_cwcd.losses.functional.separable_dice`. The prediction is the
    activation of ``input`` (``sigmoid`` / ``softmax`` / ``other_act``, as MONAI's ``DiceLoss``), then
    the target is one-hot encoded, then the background channel is dropped, in that order.

    Reduction: per sample, shape (B,) (with ``batch=True`` the sums run over the batch too: shape
    (1,)); ``reduction="none"`` returns it, ``"mean"``/``"sum"`` reduce it to a scalar.

    Example:
        >>> import torch
        >>> from monai_cwcd.losses import SeparableDiceLoss
        >>> logits = torch.randn(2, 3, 16, 16, requires_grad=True)
        >>> label = torch.randint(0, 3, (2, 1, 16, 16))
        >>> loss = SeparableDiceLoss(to_onehot_y=True, softmax=True, beta=0.5)(logits, label)
        >>> loss.backward()

    Args:
        include_background: keep channel 0 in the Dice average; the papers average over target
            regions only. Defaults to False.
        to_onehot_y: one-hot encode a ``(B, 1, *)`` class-index target with ``C`` classes. Defaults to False.
        sigmoid: apply a sigmoid to ``input``. Defaults to False.
        softmax: apply a softmax to ``input``. Defaults to False.
        other_act: another activation applied to ``input``, e.g. ``torch.tanh``. Defaults to None.
        squared_pred: squared ``p`` and ``g`` in the denominators. Defaults to False.
        jaccard: each ratio is the Jaccard index (soft IoU) instead of Dice, as MONAI's
            ``DiceLoss(jaccard=True)``: ``(num + smooth_nr) / (2 den - num + smooth_dr)``. Defaults to False.
        beta: weight of the contour term ``L_c``, in [0, 1]. Defaults to 0.5.
        kernel_size: side of the erosion box (``kernel_size=1`` gives an empty contour). Defaults to 3.
        iterations: number of erosions. Defaults to 1.
        edge_is_contour: the patch edge counts as a boundary (scipy's default border, the papers'
            released behaviour) when True. Defaults to False.
        contour_width_mm: contour thickness in mm for the on-the-fly contour, instead of
            ``kernel_size``/``iterations``: a number, one per spatial axis, or ``{class index: width}``
            (see ``monai_cwcd.transforms.ContourWeightMap``); the spacing comes from a ``MetaTensor``
            target's affine, else from ``spacing``. Defaults to None.
        spacing: voxel spacing in mm (a number or one per spatial axis) for targets without an
            affine. Defaults to None.
        pool_classes: sum numerators and denominators over classes before the ratio. Defaults to False.
        smooth_nr: added to each numerator. Defaults to 1e-5.
        smooth_dr: added to each denominator. Defaults to 1e-5.
        weight: per-class weights multiplying each class's loss terms (``C`` entries, background
            included as in ``DiceCELoss``; its entry is dropped with the background; or one number).
            Defaults to None.
        reduction: ``"none"`` (per sample, (B,) or (1,)), ``"mean"`` or ``"sum"``. Defaults to ``"mean"``.
        batch: sum the numerators and denominators over the batch before the ratio. Defaults to False.

    Raises:
        TypeError: ``other_act`` is not callable.
        ValueError: more than one of ``sigmoid``/``softmax``/``other_act``, ``beta`` outside [0, 1],
            ``kernel_size < 1``, ``iterations < 1``, a negative ``weight``, or in ``forward`` a shape
            mismatch between input/target/contour, class indices outside ``[0, C-1]`` or non-integral.
            A negative or non-finite ``contour_width_mm``/``spacing``; in ``forward`` an on-the-fly
            ``contour_width_mm`` contour for a target without affine and no ``spacing``, or a class
            without a per-class width.
    """

    def __init__(
        self,
        include_background: bool = False,
        to_onehot_y: bool = False,
        sigmoid: bool = False,
        softmax: bool = False,
        other_act: Callable | None = None,
        squared_pred: bool = False,
        jaccard: bool = False,
        beta: float = 0.5,
        kernel_size: int = 3,
        iterations: int = 1,
        edge_is_contour: bool = False,
        contour_width_mm: float | Sequence[float] | Mapping[int, float | Sequence[float]] | None = None,
        spacing: float | Sequence[float] | None = None,
        pool_classes: bool = False,
        smooth_nr: float = 1e-5,
        smooth_dr: float = 1e-5,
        weight: Sequence[float] | float | int | torch.Tensor | None = None,
        reduction: LossReduction | str = LossReduction.MEAN,
        batch: bool = False,
    ) -> None:
        super().__init__(
            include_background=include_background,
            to_onehot_y=to_onehot_y,
            sigmoid=sigmoid,
            softmax=softmax,
            other_act=other_act,
            squared_pred=squared_pred,
            jaccard=jaccard,
            beta=beta,
            kernel_size=kernel_size,
            iterations=iterations,
            edge_is_contour=edge_is_contour,
            contour_width_mm=contour_width_mm,
            spacing=spacing,
            pool_classes=pool_classes,
            smooth_nr=smooth_nr,
            smooth_dr=smooth_dr,
            weight=weight,
            reduction=reduction,
            batch=batch,
        )

    def forward(self, input: torch.Tensor, target: torch.Tensor, contour: torch.Tensor | None = None) -> torch.Tensor:
        """
        Args:
            input: ``(B, C, *spatial)`` logits (with an activation flag) or probabilities.
            target: ``(B, 1, *spatial)`` class indices or ``(B, C, *spatial)`` one-hot / multi-label.
            contour: ``(B, 1, *spatial)`` or ``(B, C, *spatial)`` precomputed contour; None uses a
                contour handed over by ``set_contour`` or computes it on the fly. Defaults to None.

        Returns:
            the loss, reduced as ``reduction`` says.
        """
        _, sdl = self._terms(input, target, contour, ce=False, dice=True)
        return reduce_loss(sdl, self.reduction)
