"""Contour-weighted compound loss (CWCD): separable Dice + contour-weighted cross-entropy."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence

import torch
from monai.utils import LossReduction

from monai_cwcd.losses._utils import ContourLossBase, check_unit_interval, reduce_loss

__all__ = ["CWCDLoss"]


class CWCDLoss(ContourLossBase):
    """``lambda_dice * SDL + lambda_ce * CWCE`` (``alpha * SDL + (1 - alpha) * CWCE``), a drop-in
    replacement for MONAI's ``DiceCELoss``.

    Shapes: ``input`` logits ``(B, C, *spatial)`` (1 to 3 spatial dims); ``target`` ``(B, 1,
    *spatial)`` class indices (with ``to_onehot_y=True``) or ``(B, C, *spatial)`` one-hot /
    multi-label; ``contour`` (optional) ``(B, 1, *spatial)`` own-class or ``(B, C, *spatial)``
    per-class contour from ``monai_cwcd.transforms.ContourWeightMapd``. Without ``contour`` (and no
    hand-over, see ``set_contour``) the erosion contour ``C = G - erode(G)`` (journal eq. 8) is
    computed from ``target`` once, on the input's device under ``torch.no_grad()``, and shared by
    both parts, as is the ``log_softmax`` of the logits.

    Journal eq. 16 (Huang et al., "Partial Decoder Attention Network with Contour Weighted Loss
    Function for Data-Imbalance Medical Image Segmentation")::

        L_CWCD = alpha * L_SDL + (1 - alpha) * L_CWCE

    with ``L_SDL`` of :class:`~monai_cwcd.losses.SeparableDiceLoss` (eqs. 13-15) and ``L_CWCE`` of
    :class:`~monai_cwcd.losses.ContourWeightedCELoss` (eq. 11). ``alpha = beta = 0.5``,
    ``lambda_contour = 2`` are the journal's choices (with ``kernel_size=2, iterations=1,
    edge_is_contour=True`` for its contours). The conference paper's ``SDL + CWCE`` is twice
    ``alpha = 0.5``, up to its weight map.

    ``alpha`` and ``DiceCELoss``'s ``lambda_dice``/``lambda_ce``: the loss is always ``lambda_dice *
    L_SDL + lambda_ce * L_CWCE``. Give either ``alpha`` (then ``lambda_dice = alpha``, ``lambda_ce =
    1 - alpha``: the journal's convex combination; the default ``alpha = 0.5``) or the lambdas as in
    ``DiceCELoss`` (a lambda not given is 1.0, ``DiceCELoss``'s default; ``alpha`` is then reported
    as ``lambda_dice / (lambda_dice + lambda_ce)``). Both may be given only when they agree, i.e.
    ``alpha == lambda_dice / (lambda_dice + lambda_ce)``; the scale of the lambdas is kept.

    As in ``DiceCELoss``: the activation flags (``sigmoid``, ``softmax``, ``other_act``),
    ``squared_pred``, ``jaccard``, ``smooth_nr``/``smooth_dr`` and ``include_background`` concern
    the Dice part only, ``label_smoothing`` the cross-entropy part only; the cross-entropy part
    always uses the logits and every class, with ``torch.nn.functional.cross_entropy``'s
    normalisation over the whole batch (its weighted mean with class weights, whatever ``batch``
    says); ``weight`` serves both parts (the Dice part drops the background entry with the
    background). With the contour switched off (``kernel_size=1`` empties it, so ``lambda_contour``
    changes nothing, and ``beta=0`` drops the empty contour set's Dice term, which would otherwise
    scale the Dice by ``1 - beta``) the ``"mean"`` equals ``DiceCELoss`` with the same arguments
    (tested on a grid of argument combinations), except where ``DiceCELoss``
    is NaN (empty sets with zero smoothing, a batch whose voxels all have class weight 0): there
    ours is finite. What differs (see the README): ``include_background`` defaults to False, as in
    the papers; ``alpha = 0.5`` halves ``DiceCELoss``'s default scale unless the lambdas are given;
    ``reduction="none"`` returns the per-sample ``(B,)`` values (``DiceCELoss`` refuses it) and
    ``"sum"`` is their sum (``DiceCELoss`` adds its Dice summed over batch and classes to its
    cross-entropy summed over voxels); ``sigmoid=True`` with more than one channel makes the
    cross-entropy part per-channel BCE (multi-label regions), where ``DiceCELoss`` keeps the
    softmax cross-entropy.

    Reduction: per sample, shape (B,) (with ``batch=True`` the sums run over the batch too: shape
    (1,)); ``reduction="none"`` returns it, ``"mean"``/``"sum"`` reduce it to a scalar.

    Example:
        >>> import torch
        >>> from monai_cwcd.losses import CWCDLoss
        >>> loss_function = CWCDLoss(to_onehot_y=True, softmax=True)  # was DiceCELoss(to_onehot_y=True, softmax=True)
        >>> logits = torch.randn(2, 4, 16, 16, 16, requires_grad=True)
        >>> label = torch.randint(0, 4, (2, 1, 16, 16, 16)).float()
        >>> loss = loss_function(logits, label)
        >>> loss.backward()

    Args:
        include_background: keep channel 0 in the Dice part. Defaults to False.
        to_onehot_y: one-hot encode a ``(B, 1, *)`` class-index target for the Dice part. Defaults to False.
        sigmoid: sigmoid activation for the Dice part, per-channel BCE for the cross-entropy part.
            Defaults to False.
        softmax: softmax activation for the Dice part. Defaults to False.
        other_act: another activation for the Dice part, e.g. ``torch.tanh``. Defaults to None.
        squared_pred: squared ``p`` and ``g`` in the Dice denominators. Defaults to False.
        jaccard: Jaccard index (soft IoU) instead of Dice in every SDL ratio. Defaults to False.
        alpha: weight of the separable Dice part, in [0, 1] (``lambda_dice = alpha``, ``lambda_ce =
            1 - alpha``). Defaults to None: 0.5 unless ``lambda_dice``/``lambda_ce`` is given.
        beta: weight of the contour Dice term inside SDL, in [0, 1]. Defaults to 0.5.
        lambda_contour: cross-entropy weight ``lambda`` of contour voxels, >= 0. Defaults to 2.0.
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
        pool_classes: SDL sums numerators and denominators over classes before the ratio (the
            papers' code release). Defaults to False.
        smooth_nr: added to each Dice numerator. Defaults to 1e-5.
        smooth_dr: added to each Dice denominator. Defaults to 1e-5.
        weight: per-class weights, ``C`` entries (background included) or one number: cross-entropy
            class weights (``pos_weight`` per channel for BCE; 0 ignores a class) and Dice class
            weights. Defaults to None.
        lambda_dice: factor of the separable Dice part, >= 0, as ``DiceCELoss``. Defaults to None
            (1.0 when ``lambda_ce`` is given, else ``alpha``).
        lambda_ce: factor of the cross-entropy part, >= 0, as ``DiceCELoss``. Defaults to None
            (1.0 when ``lambda_dice`` is given, else ``1 - alpha``).
        label_smoothing: in [0, 1], label smoothing of the softmax cross-entropy, as
            ``DiceCELoss`` / ``torch.nn.CrossEntropyLoss`` (the BCE path has none). Defaults to 0.0.
        reduction: ``"none"`` (per sample, (B,) or (1,)), ``"mean"`` or ``"sum"``. Defaults to ``"mean"``.
        batch: sum over the batch before every ratio (one value for the batch). Defaults to False.

    Raises:
        TypeError: ``other_act`` is not callable.
        ValueError: more than one of ``sigmoid``/``softmax``/``other_act``, ``alpha``, ``beta`` or
            ``label_smoothing`` outside [0, 1], a negative ``lambda_dice``/``lambda_ce``, ``alpha``
            given together with lambdas that disagree with it, ``lambda_contour < 0``,
            ``kernel_size < 1``, ``iterations < 1``, a negative ``weight``, or in ``forward`` a
            shape mismatch between input/target/contour, class indices outside ``[0, C-1]`` or
            non-integral.
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
        alpha: float | None = None,
        beta: float = 0.5,
        lambda_contour: float = 2.0,
        kernel_size: int = 3,
        iterations: int = 1,
        edge_is_contour: bool = False,
        contour_width_mm: float | Sequence[float] | Mapping[int, float | Sequence[float]] | None = None,
        spacing: float | Sequence[float] | None = None,
        pool_classes: bool = False,
        smooth_nr: float = 1e-5,
        smooth_dr: float = 1e-5,
        weight: Sequence[float] | float | int | torch.Tensor | None = None,
        lambda_dice: float | None = None,
        lambda_ce: float | None = None,
        label_smoothing: float = 0.0,
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
            lambda_contour=lambda_contour,
            kernel_size=kernel_size,
            iterations=iterations,
            edge_is_contour=edge_is_contour,
            contour_width_mm=contour_width_mm,
            spacing=spacing,
            pool_classes=pool_classes,
            smooth_nr=smooth_nr,
            smooth_dr=smooth_dr,
            weight=weight,
            label_smoothing=label_smoothing,
            reduction=reduction,
            batch=batch,
        )
        self.lambda_dice, self.lambda_ce, self.alpha = _factors(alpha, lambda_dice, lambda_ce)

    def forward(self, input: torch.Tensor, target: torch.Tensor, contour: torch.Tensor | None = None) -> torch.Tensor:
        """
        Args:
            input: logits ``(B, C, *spatial)``.
            target: ``(B, 1, *spatial)`` class indices or ``(B, C, *spatial)`` one-hot / multi-label.
            contour: ``(B, 1, *spatial)`` or ``(B, C, *spatial)`` precomputed contour; None uses a
                contour handed over by ``set_contour`` or computes it on the fly. Defaults to None.

        Returns:
            the loss, reduced as ``reduction`` says.
        """
        want_dice = self.lambda_dice > 0.0
        want_ce = self.lambda_ce > 0.0 or not want_dice  # both zero: a zero loss that keeps the graph
        ce, sdl = self._terms(input, target, contour, ce=want_ce, dice=want_dice)
        total = 0.0
        if sdl is not None:
            total = self.lambda_dice * sdl
        if ce is not None:
            total = total + self.lambda_ce * ce
        return reduce_loss(total, self.reduction)


def _factors(alpha: float | None, lambda_dice: float | None, lambda_ce: float | None) -> tuple[float, float, float]:
    """``(lambda_dice, lambda_ce, alpha)`` from CWCDLoss's arguments (see its docstring)."""
    if alpha is not None:
        alpha = check_unit_interval("alpha", alpha)
    if lambda_dice is None and lambda_ce is None:
        a = 0.5 if alpha is None else alpha
        return a, 1.0 - a, a
    ld = 1.0 if lambda_dice is None else float(lambda_dice)
    lc = 1.0 if lambda_ce is None else float(lambda_ce)
    if not ld >= 0.0:
        raise ValueError("lambda_dice should be no less than 0.0.")
    if not lc >= 0.0:
        raise ValueError("lambda_ce should be no less than 0.0.")
    implied = ld / (ld + lc) if ld + lc > 0 else None
    if alpha is not None and (implied is None or not math.isclose(alpha, implied, rel_tol=1e-9, abs_tol=1e-12)):
        raise ValueError(
            f"alpha={alpha!r} disagrees with lambda_dice={ld!r}, lambda_ce={lc!r}: the loss is lambda_dice * SDL + "
            f"lambda_ce * CWCE and alpha must equal lambda_dice / (lambda_dice + lambda_ce)"
            + (f" = {implied!r}" if implied is not None else " (undefined when both are 0)")
            + "; give alpha or the lambdas, not both."
        )
    return ld, lc, (0.5 if implied is None else implied)
