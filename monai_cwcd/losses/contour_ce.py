"""Contour-weighted cross-entropy (CWCE), journal paper eq. 11."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
from monai.utils import LossReduction

from monai_cwcd.losses._utils import ContourLossBase, reduce_loss

__all__ = ["ContourWeightedCELoss"]


class ContourWeightedCELoss(ContourLossBase):
    """Cross-entropy with the voxels on the erosion contour of their own class weighted up.

    Shapes: ``input`` logits ``(B, C, *spatial)`` (1 to 3 spatial dims); ``target`` ``(B, 1,
    *spatial)`` class indices or ``(B, C, *spatial)`` one-hot / multi-label; ``contour`` (optional)
    ``(B, 1, *spatial)`` own-class or ``(B, C, *spatial)`` per-class contour, e.g. from
    ``monai_cwcd.transforms.ContourWeightMapd``. Without ``contour`` (and no hand-over, see
    ``set_contour``) the contour ``C = G - erode(G)`` (journal eq. 8) is computed from ``target`` on
    the input's device, under ``torch.no_grad()``, with ``kernel_size``, ``iterations`` and
    ``edge_is_contour``.

    Softmax cross-entropy (journal eq. 11, Huang et al., "Partial Decoder Attention Network with
    Contour Weighted Loss Function for Data-Imbalance Medical Image Segmentation")::

        L_CWCE = sum_i cw_{y_i} (1 + lambda_contour * w_i) (-log softmax(x_i)_{y_i})  /  sum_i cw_{y_i}

    with ``w`` the own-class contour map (1 on the contour of the voxel's own class) and ``cw`` the
    class ``weight`` (1 when None, then the denominator is the voxel count: a mean over voxels). The
    journal's ``1/M`` factor is a constant and is left out. ``lambda_contour=0`` is
    ``torch.nn.functional.cross_entropy(input, target, weight, label_smoothing=...)`` exactly,
    including its normalisation over the whole batch: with class weights the denominator runs over
    the batch, and sample ``b``'s value is ``num_b / mean_b' den_b'``, so that the ``"mean"`` is
    PyTorch's weighted mean; a one-hot / probability target is normalised by the voxel count, as
    PyTorch does for probability targets. A sample whose voxels all have class weight 0 contributes
    0 and is left out of the normalisation (never 0/0). As in MONAI's ``DiceCELoss`` the
    cross-entropy always works on the logits and uses every class. The mathematics is
    :func:`monai_cwcd.losses.functional.contour_weighted_cross_entropy`.

    ``sigmoid=True`` (or a single output channel) switches to per-channel binary cross-entropy with
    logits (multi-label targets, e.g. BraTS regions), each channel weighted by its own contour
    ``1 + lambda_contour * C_c`` and ``weight`` used as per-channel ``pos_weight``; mean over channels
    and voxels.

    Reduction: per sample, shape (B,) (with ``batch=True`` the sums run over the batch too: shape
    (1,)); ``reduction="none"`` returns it, ``"mean"``/``"sum"`` reduce it to a scalar. The
    ``"mean"`` does not depend on ``batch``.

    Example:
        >>> import torch
        >>> from monai_cwcd.losses import ContourWeightedCELoss
        >>> logits = torch.randn(2, 3, 16, 16, requires_grad=True)
        >>> label = torch.randint(0, 3, (2, 1, 16, 16))
        >>> loss = ContourWeightedCELoss(lambda_contour=2.0)(logits, label)
        >>> loss.backward()

    Args:
        to_onehot_y: convert a class-index ``target`` to one-hot where needed (the per-channel BCE
            path); the softmax cross-entropy reads class indices directly. Defaults to False.
        sigmoid: per-channel BCE with logits instead of softmax cross-entropy. Defaults to False.
        lambda_contour: weight ``lambda`` of the contour voxels, >= 0. Defaults to 2.0.
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
        weight: per-class weights (``C`` entries or one number), as ``weight`` of
            ``torch.nn.CrossEntropyLoss`` (softmax) or ``pos_weight`` per channel (BCE); a weight of 0
            ignores a class. Defaults to None.
        label_smoothing: in [0, 1], as ``torch.nn.CrossEntropyLoss``; softmax cross-entropy only
            (the BCE path ignores it, as ``BCEWithLogitsLoss`` has none). Defaults to 0.0.
        reduction: ``"none"`` (per sample, (B,) or (1,)), ``"mean"`` or ``"sum"``. Defaults to ``"mean"``.
        batch: sum over the batch before the ratio (one value for the batch). Defaults to False.

    Raises:
        ValueError: ``lambda_contour < 0``, ``kernel_size < 1``, ``iterations < 1``, a negative
            ``weight``, ``label_smoothing`` outside [0, 1], or in ``forward`` a shape mismatch between input/target/contour, class indices
            outside ``[0, C-1]`` or non-integral.
            A negative or non-finite ``contour_width_mm``/``spacing``; in ``forward`` an on-the-fly
            ``contour_width_mm`` contour for a target without affine and no ``spacing``, or a class
            without a per-class width.
    """

    def __init__(
        self,
        to_onehot_y: bool = False,
        sigmoid: bool = False,
        lambda_contour: float = 2.0,
        kernel_size: int = 3,
        iterations: int = 1,
        edge_is_contour: bool = False,
        contour_width_mm: float | Sequence[float] | Mapping[int, float | Sequence[float]] | None = None,
        spacing: float | Sequence[float] | None = None,
        weight: Sequence[float] | float | int | torch.Tensor | None = None,
        label_smoothing: float = 0.0,
        reduction: LossReduction | str = LossReduction.MEAN,
        batch: bool = False,
    ) -> None:
        super().__init__(
            to_onehot_y=to_onehot_y,
            sigmoid=sigmoid,
            lambda_contour=lambda_contour,
            kernel_size=kernel_size,
            iterations=iterations,
            edge_is_contour=edge_is_contour,
            contour_width_mm=contour_width_mm,
            spacing=spacing,
            weight=weight,
            label_smoothing=label_smoothing,
            reduction=reduction,
            batch=batch,
        )

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
        ce, _ = self._terms(input, target, contour, ce=True, dice=False)
        return reduce_loss(ce, self.reduction)
