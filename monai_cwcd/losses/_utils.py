"""Shared machinery of the monai-cwcd losses: argument checks, contour preparation, the reduction
contract, the contour hand-off API and the common base of the three contour losses. The loss
mathematics itself (target preparation, weighted cross-entropy, separable Dice statistics) is the
public functional API, :mod:`monai_cwcd.losses.functional`, which every loss calls.

Every loss of this package runs the same code from here, so the checks, the error messages, the
``reduction`` contract and the numerics cannot drift apart between sibling classes.

Reduction contract (all losses of ``monai_cwcd.losses``): the loss is first computed per sample,
shape ``(B,)`` (classes and voxels already reduced); with ``batch=True`` the sums are taken over the
batch as well before any ratio, giving shape ``(1,)``. ``reduction="none"`` returns that tensor,
``"mean"`` its mean and ``"sum"`` its sum (0-dim tensors). The cross-entropy parts normalise as
``torch.nn.functional.cross_entropy`` does over the whole batch (its weighted mean with class
weights and class-index targets): the value of sample ``b`` is ``num_b / mean_b' den_b'``
(:func:`monai_cwcd.losses.functional.normalise_cross_entropy`), its own mean without class weights,
and the ``"mean"`` of the per-sample values is exactly PyTorch's (and ``DiceCELoss``'s)
cross-entropy, independent of ``batch``.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence

import torch
from monai.utils import LossReduction
from torch.nn.modules.loss import _Loss

from monai_cwcd.losses import functional as LF
from monai_cwcd.losses.functional import PreparedTarget, _plain
from monai_cwcd.transforms.functional import (
    binary_contour,
    check_contour_width,
    check_spacing,
    label_contour,
    resolve_spacing,
)

__all__ = ["ContourHandoffMixin", "ContourLossBase"]

CONTOUR_SOURCES = ("argument", "handed_over", "on_the_fly")


class ContourHandoffMixin:
    """Hand-off API shared by the contour losses.

    ``set_contour(contour)`` stores a precomputed contour map, ``(B, 1, *spatial)`` or
    ``(B, C, *spatial)``, for the NEXT forward call only: that call uses it when its own ``contour``
    argument is None, and clears it in any case (the map belongs to one batch; it never leaks into a
    later step). After every forward call ``last_contour_source`` tells where the contour came from:
    ``"argument"``, ``"handed_over"`` or ``"on_the_fly"``.
    """

    _handed_contour: torch.Tensor | None = None
    last_contour_source: str | None = None

    def set_contour(self, contour: torch.Tensor | None) -> None:
        """Hand over the contour map for the next forward call (None withdraws a pending one).

        Args:
            contour: ``(B, 1, *spatial)`` own-class contour or ``(B, C, *spatial)`` per-class
                contour, e.g. ``batch["label_contour"]`` from ``ContourWeightMapd``.
        """
        if contour is not None and not isinstance(contour, torch.Tensor):
            contour = torch.as_tensor(contour)
        self._handed_contour = contour

    def _take_contour(self, contour: torch.Tensor | None) -> torch.Tensor | None:
        """The contour for this forward call; records ``last_contour_source`` and clears the hand-off."""
        handed, self._handed_contour = self._handed_contour, None
        if contour is not None:
            self.last_contour_source = "argument"
            return contour
        if handed is not None:
            self.last_contour_source = "handed_over"
            return handed
        self.last_contour_source = "on_the_fly"
        return None


# ----------------------------------------------------------------------------------------------------
# argument checks (MONAI's messages where MONAI checks the same thing)


def check_activation(sigmoid: bool, softmax: bool, other_act: Callable | None) -> None:
    """MONAI's DiceLoss checks: ``TypeError`` for a non-callable ``other_act``, ``ValueError`` for
    more than one activation."""
    if other_act is not None and not callable(other_act):
        raise TypeError(f"other_act must be None or callable but is {type(other_act).__name__}.")
    if int(sigmoid) + int(softmax) + int(other_act is not None) > 1:
        raise ValueError("Incompatible values: more than 1 of [sigmoid=True, softmax=True, other_act is not None].")


def check_unit_interval(name: str, value: float) -> float:
    """``value`` as float, ``ValueError`` naming ``name`` unless it lies in [0, 1]."""
    if isinstance(value, bool) or not 0.0 <= float(value) <= 1.0:
        raise ValueError(f"{name} must be in [0, 1], got {value!r}.")
    return float(value)


def check_non_negative(name: str, value: float) -> float:
    """``value`` as float, ``ValueError`` naming ``name`` if it is negative (or NaN)."""
    if isinstance(value, bool) or not float(value) >= 0.0:
        raise ValueError(f"{name} must be >= 0, got {value!r}.")
    return float(value)


def check_positive_int(name: str, value: int) -> int:
    """``value`` as int, ``ValueError`` naming ``name`` unless it is an integer >= 1."""
    if isinstance(value, bool) or int(value) != value or value < 1:
        raise ValueError(f"{name} must be an integer >= 1, got {value!r}.")
    return int(value)


def as_class_weight(weight: Sequence[float] | float | int | torch.Tensor | None) -> torch.Tensor | None:
    """Class weights as a float tensor (0-dim or 1-dim), ``ValueError`` if any is negative."""
    if weight is None:
        return None
    w = torch.as_tensor(weight, dtype=torch.float32).detach().clone()
    if w.ndim > 1:
        raise ValueError(f"weight must be a number or a 1-dim sequence of per-class weights, got shape {tuple(w.shape)}.")
    if w.numel() and not bool((w >= 0).all()):
        raise ValueError(f"the value/values of the `weight` should be no less than 0, got {w.tolist()}.")
    return w


def reduce_loss(f: torch.Tensor, reduction: str) -> torch.Tensor:
    """Apply the package's reduction contract to per-sample values ``f`` of shape (B,) or (1,)."""
    if reduction == LossReduction.MEAN.value:
        return f.mean()
    if reduction == LossReduction.SUM.value:
        return f.sum()
    if reduction == LossReduction.NONE.value:
        return f
    raise ValueError(f'Unsupported reduction: {reduction}, available options are ["mean", "sum", "none"].')


# ----------------------------------------------------------------------------------------------------
# contour preparation (the mathematics lives in monai_cwcd.losses.functional)


def _foreground(x: torch.Tensor) -> torch.Tensor:
    """Boolean foreground of a binary map: nonzero, or > 0.5 for floating dtypes."""
    return x > 0.5 if x.is_floating_point() else x != 0


def attach_contours(
    prep: PreparedTarget,
    contour: torch.Tensor | None,
    *,
    kernel_size: int,
    iterations: int,
    edge_is_contour: bool,
    need_own: bool,
    need_class: bool,
    owner: str,
    contour_width_mm=None,
    spacing=None,
) -> None:
    """Fill ``prep.own_contour`` / ``prep.class_contour`` from ``contour`` or, when it is None, from the
    target on the fly (on the target's device, under ``torch.no_grad()``).

    The per-class contour ``C_j`` is always restricted to the voxels of class ``j`` (as ``G_j -
    erode(G_j)`` is); for exclusive classes ``C_j = g_j * w`` with ``w`` the own-class map.

    Raises:
        ValueError: ``contour`` is not ``(B, 1, *spatial)`` or ``(B, C, *spatial)`` for the input.
    """
    shape = prep.logits.shape
    with torch.no_grad():
        if contour is not None:
            contour = _plain(contour)
            if (
                contour.ndim != len(shape)
                or contour.shape[0] != shape[0]
                or contour.shape[2:] != shape[2:]
                or contour.shape[1] not in (1, shape[1])
            ):
                raise ValueError(
                    f"{owner}: contour shape {tuple(contour.shape)} does not match input shape {tuple(shape)}; "
                    "expected (B, 1, *spatial) own-class or (B, C, *spatial) per-class contour."
                )
            contour = _foreground(contour.to(prep.logits.device))
        kw = dict(kernel_size=kernel_size, iterations=iterations, edge_is_contour=edge_is_contour)
        if contour_width_mm is not None:  # mm widths (issue 12): windows from the voxel spacing
            kw.update(contour_width_mm=contour_width_mm, spacing=spacing)
        if prep.index is not None:
            if contour is None:
                own = label_contour(prep.index, prep.spatial_dims, **kw)
            elif contour.shape[1] == 1:
                own = contour
            else:
                own = contour.gather(1, prep.index)
            prep.own_contour = own
            if need_class:
                prep.class_contour = own & _foreground(prep.dense)
            return
        fg = _foreground(prep.dense)
        if contour is None:
            cls = binary_contour(prep.dense, prep.spatial_dims, **kw)
        else:
            cls = contour & fg
        if need_class:
            prep.class_contour = cls
        if need_own:
            prep.own_contour = cls.any(dim=1, keepdim=True)


# ----------------------------------------------------------------------------------------------------
# the common base of the three contour losses


class ContourLossBase(ContourHandoffMixin, _Loss):
    """Common constructor checks and forward machinery of ``ContourWeightedCELoss``,
    ``SeparableDiceLoss`` and ``CWCDLoss`` (not a public loss). Subclasses pass their own arguments
    and call :meth:`_terms`."""

    def __init__(
        self,
        *,
        include_background: bool = False,
        to_onehot_y: bool = False,
        sigmoid: bool = False,
        softmax: bool = False,
        other_act: Callable | None = None,
        squared_pred: bool = False,
        jaccard: bool = False,
        beta: float = 0.5,
        lambda_contour: float = 2.0,
        kernel_size: int = 3,
        iterations: int = 1,
        edge_is_contour: bool = False,
        contour_width_mm=None,
        spacing=None,
        pool_classes: bool = False,
        smooth_nr: float = 1e-5,
        smooth_dr: float = 1e-5,
        weight: Sequence[float] | float | int | torch.Tensor | None = None,
        label_smoothing: float = 0.0,
        reduction: LossReduction | str = LossReduction.MEAN,
        batch: bool = False,
    ) -> None:
        super().__init__(reduction=LossReduction(reduction).value)
        self.contour_width_mm = check_contour_width(contour_width_mm)
        self.spacing = check_spacing(spacing)
        check_activation(sigmoid, softmax, other_act)
        self.include_background = bool(include_background)
        self.to_onehot_y = bool(to_onehot_y)
        self.sigmoid = bool(sigmoid)
        self.softmax = bool(softmax)
        self.other_act = other_act
        self.squared_pred = bool(squared_pred)
        self.jaccard = bool(jaccard)
        self.beta = check_unit_interval("beta", beta)
        self.lambda_contour = check_non_negative("lambda_contour", lambda_contour)
        self.kernel_size = check_positive_int("kernel_size", kernel_size)
        self.iterations = check_positive_int("iterations", iterations)
        self.edge_is_contour = bool(edge_is_contour)
        self.pool_classes = bool(pool_classes)
        self.smooth_nr = float(smooth_nr)
        self.smooth_dr = float(smooth_dr)
        self.label_smoothing = check_unit_interval("label_smoothing", label_smoothing)
        self.batch = bool(batch)
        self.register_buffer("class_weight", as_class_weight(weight))
        self.class_weight: torch.Tensor | None

    def _terms(
        self, input: torch.Tensor, target: torch.Tensor, contour: torch.Tensor | None, ce: bool, dice: bool
    ) -> tuple[torch.Tensor | None, torch.Tensor | None]:
        """Per-sample CWCE and SDL values ((B,) or (1,)); the one not asked for is None."""
        owner = type(self).__name__
        contour = self._take_contour(contour)
        spacing = None
        if contour is None and self.contour_width_mm is not None:  # before prepare_target drops the metadata
            spacing = resolve_spacing(target, _plain(input).ndim - 2, self.spacing, owner)
        # float32 throughout, also under autocast: float16/bfloat16 sums over a volume overflow or
        # lose the small contour terms
        with torch.autocast(device_type=_plain(input).device.type, enabled=False):
            prep = LF.prepare_target(
                input, target, to_onehot_y=self.to_onehot_y, sigmoid=self.sigmoid, need_one_hot=dice, owner=owner
            )
            weighted = ce and self.lambda_contour > 0
            if weighted or dice:
                attach_contours(
                    prep,
                    contour,
                    kernel_size=self.kernel_size,
                    iterations=self.iterations,
                    edge_is_contour=self.edge_is_contour,
                    need_own=(weighted and not prep.binary) or (dice and prep.index is not None),
                    need_class=prep.dense is not None and ((weighted and prep.binary) or (dice and prep.index is None)),
                    owner=owner,
                    contour_width_mm=self.contour_width_mm,
                    spacing=spacing,
                )
            ce_val = sdl_val = None
            if ce:
                mask = None
                if weighted:
                    mask = prep.class_contour if prep.binary else prep.own_contour
                ce_val = LF.contour_weighted_cross_entropy(
                    prep, mask, self.lambda_contour, self.class_weight, self.label_smoothing, self.batch
                )
            if dice:
                p, p_is_softmax = LF.activate(prep, self.sigmoid, self.softmax, self.other_act)
                dice_contour = prep.own_contour if prep.index is not None else prep.class_contour
                stats = LF.separable_dice_stats(prep, p, dice_contour, p_is_softmax, self.squared_pred)
                sdl_val = LF.separable_dice(
                    stats,
                    beta=self.beta,
                    include_background=self.include_background,
                    weight=self.class_weight,
                    pool_classes=self.pool_classes,
                    smooth_nr=self.smooth_nr,
                    smooth_dr=self.smooth_dr,
                    jaccard=self.jaccard,
                    batch=self.batch,
                )
        return ce_val, sdl_val
