"""Shared machinery of the monai-cwcd losses: argument checks, target and contour preparation, the
weighted cross-entropy and the separable Dice statistics, the reduction contract and the contour
hand-off API.

Every loss of this package runs the same code from here, so the checks, the error messages, the
``reduction`` contract and the numerics cannot drift apart between sibling classes.

Reduction contract (all losses of ``monai_cwcd.losses``): the loss is first computed per sample,
shape ``(B,)`` (classes and voxels already reduced); with ``batch=True`` the sums are taken over the
batch as well before any ratio, giving shape ``(1,)``. ``reduction="none"`` returns that tensor,
``"mean"`` its mean and ``"sum"`` its sum (0-dim tensors).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from monai.utils import LossReduction
from torch.nn.modules.loss import _Loss

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


def expand_class_weight(weight: torch.Tensor | None, num_classes: int, what: str) -> torch.Tensor | None:
    """``weight`` as a ``(num_classes,)`` tensor (a scalar is repeated), ``ValueError`` on a length
    mismatch; ``what`` names the classes counted (for the message)."""
    if weight is None:
        return None
    if weight.ndim == 0:
        return weight.expand(num_classes)
    if weight.shape[0] != num_classes:
        raise ValueError(
            f"The length of the `weight` sequence should be the same as the number of classes ({what}: "
            f"{num_classes}, background included), got {weight.shape[0]}."
        )
    return weight


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
# target and contour preparation


def _plain(x: torch.Tensor) -> torch.Tensor:
    """A plain ``torch.Tensor`` view of a MONAI ``MetaTensor`` (autograd is kept), else ``x``."""
    return x.as_tensor() if hasattr(x, "as_tensor") else x


def _foreground(x: torch.Tensor) -> torch.Tensor:
    """Boolean foreground of a binary map: nonzero, or > 0.5 for floating dtypes."""
    return x > 0.5 if x.is_floating_point() else x != 0


@dataclass
class Prepared:
    """Inputs of one forward call, validated and in the form the loss terms use.

    ``logits`` is float32 ``(B, C, *spatial)``. Exactly one of ``index`` (``(B, 1, *spatial)`` int64
    class indices of mutually exclusive classes) and ``dense`` (``(B, C, *spatial)`` float32 one-hot or
    multi-label target) is the target the terms read; ``dense`` may also be set next to ``index`` when
    a per-channel term needs it. ``binary`` selects per-channel BCE for the cross-entropy part.
    """

    logits: torch.Tensor
    index: torch.Tensor | None
    dense: torch.Tensor | None
    binary: bool
    spatial_dims: int
    own_contour: torch.Tensor | None = None  # (B, 1, *) bool: contour of each voxel's own class
    class_contour: torch.Tensor | None = None  # (B, C, *) bool: C_j, within the voxels of class j
    cache: dict = field(default_factory=dict)

    @property
    def num_classes(self) -> int:
        return self.logits.shape[1]

    def log_probs(self) -> torch.Tensor:
        """``log_softmax(logits, 1)``, computed once per forward call."""
        if "logp" not in self.cache:
            self.cache["logp"] = torch.log_softmax(self.logits, dim=1)
        return self.cache["logp"]

    def target_log_prob(self) -> torch.Tensor:
        """``(B, 1, *)`` log-probability of each voxel's target class (index targets), computed once."""
        if "logp_y" not in self.cache:
            self.cache["logp_y"] = self.log_probs().gather(1, self.index)
        return self.cache["logp_y"]


def prepare_target(
    input: torch.Tensor,
    target: torch.Tensor,
    *,
    to_onehot_y: bool,
    sigmoid: bool,
    need_one_hot: bool,
    owner: str,
) -> Prepared:
    """Validate ``input``/``target`` and build the :class:`Prepared` record (without contours).

    Args:
        input: logits ``(B, C, *spatial)``.
        target: ``(B, 1, *spatial)`` class indices or ``(B, C, *spatial)`` one-hot / multi-label.
        to_onehot_y: the loss's flag; a class-index target of a multi-channel input needs it whenever
            a term of the loss needs a one-hot target (``need_one_hot`` or per-channel BCE).
        sigmoid: per-channel BCE instead of softmax cross-entropy (also used when C == 1).
        need_one_hot: some term of the loss (Dice) needs a one-hot target.
        owner: the loss's class name, for messages.

    Raises:
        ValueError: shape mismatch, class-index values out of ``[0, C-1]`` or non-integral,
            class-index target without ``to_onehot_y`` where a one-hot target is needed, or a
            multi-channel target with ``to_onehot_y=True``.
    """
    input, target = _plain(input), _plain(target)
    if input.ndim < 3:
        raise ValueError(f"{owner}: input must have shape (B, C, *spatial), got {tuple(input.shape)}.")
    if (
        target.ndim != input.ndim
        or target.shape[0] != input.shape[0]
        or target.shape[2:] != input.shape[2:]
        or target.shape[1] not in (1, input.shape[1])
    ):
        raise ValueError(
            f"{owner}: target shape {tuple(target.shape)} does not match input shape {tuple(input.shape)}; "
            "expected (B, 1, *spatial) class indices or (B, C, *spatial) one-hot / multi-label, with the "
            "batch size and spatial shape of the input."
        )
    n_ch = input.shape[1]
    binary = bool(sigmoid) or n_ch == 1
    logits = input.float()
    if n_ch == 1:
        if to_onehot_y:
            warnings.warn("single channel prediction, `to_onehot_y=True` ignored.", stacklevel=3)
        return Prepared(logits, None, target.float(), binary, input.ndim - 2)
    if target.shape[1] == n_ch:
        if to_onehot_y:
            raise ValueError(
                f"{owner}: to_onehot_y=True expects a (B, 1, *spatial) class-index target, got target shape "
                f"{tuple(target.shape)} for input shape {tuple(input.shape)}."
            )
        return Prepared(logits, None, target.float(), binary, input.ndim - 2)
    # class-index target of a multi-channel input
    if (need_one_hot or binary) and not to_onehot_y:
        raise ValueError(
            f"{owner}: target shape {tuple(target.shape)} holds class indices but input shape "
            f"{tuple(input.shape)} has {n_ch} channels; set to_onehot_y=True (or pass a one-hot target)."
        )
    index = check_class_indices(target, n_ch, owner)
    dense = None
    if binary:  # per-channel BCE needs the one-hot target
        dense = torch.zeros_like(logits).scatter_(1, index, 1.0)
    return Prepared(logits, index, dense, binary, input.ndim - 2)


def check_class_indices(target: torch.Tensor, num_classes: int, owner: str) -> torch.Tensor:
    """``target`` as int64 class indices, ``ValueError`` for negative, too large or non-integral values."""
    if target.numel() == 0:
        return target.long()
    t = target.to(torch.uint8) if target.dtype == torch.bool else target
    lo, hi = torch.aminmax(t)
    checks = [lo.double(), hi.double()]
    if t.is_floating_point():
        checks.append((t != torch.round(t)).any().double())  # also catches NaN / inf
    vals = torch.stack(checks).tolist()  # one device sync for all checks
    if len(vals) == 3 and vals[2]:
        bad = t[t != torch.round(t)][0].item()
        raise ValueError(
            f"{owner}: target of shape {tuple(target.shape)} must hold integral class indices, "
            f"got non-integral value {bad}."
        )
    if vals[0] < 0:
        raise ValueError(
            f"{owner}: target holds negative label {vals[0]:g}; class indices must be in [0, {num_classes - 1}]."
        )
    if vals[1] >= num_classes:
        raise ValueError(
            f"{owner}: target holds label {vals[1]:g} but input has {num_classes} channels; class indices "
            f"must be in [0, {num_classes - 1}]."
        )
    return t.long()


def attach_contours(
    prep: Prepared,
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
# loss terms


def weighted_ce(
    prep: Prepared, voxel_weight: torch.Tensor | None, class_weight: torch.Tensor | None, batch: bool
) -> torch.Tensor:
    """Per-sample voxel-weighted cross-entropy from logits, shape (B,) or (1,) with ``batch``.

    Softmax cross-entropy (``prep.binary`` False)::

        sum_i v_i * cw_{y_i} * (-log p_{i, y_i})  /  sum_i cw_{y_i}

    with ``v`` the ``(B, 1, *)`` voxel weight and ``cw`` the class weights (the denominator is the voxel
    count without class weights, so ``v = 1`` gives ``torch.nn.functional.cross_entropy``'s weighted
    mean). Per-channel BCE (``prep.binary``): the mean over channels and voxels of ``v_ic *
    BCEWithLogits(x_ic, g_ic, pos_weight=cw_c)``, ``v`` broadcastable to ``(B, C, *)``.
    """
    x = prep.logits
    n_ch = x.shape[1]
    sdims = tuple(range(1, x.ndim))
    if prep.binary:
        pw = None if class_weight is None else expand_class_weight(class_weight, n_ch, "channels")
        if pw is not None:
            pw = pw.to(x).view(1, n_ch, *([1] * prep.spatial_dims))
        loss = F.binary_cross_entropy_with_logits(x, prep.dense, pos_weight=pw, reduction="none")
        if voxel_weight is not None:
            loss = loss * voxel_weight
        num = loss.sum(sdims)
        den = torch.full_like(num, float(loss[0].numel()))
    else:
        cw = None if class_weight is None else expand_class_weight(class_weight, n_ch, "channels").to(x)
        if prep.index is not None:
            nll = -prep.target_log_prob()
            vox_cw = None if cw is None else cw[prep.index]
        else:
            g = prep.dense if cw is None else prep.dense * cw.view(1, n_ch, *([1] * prep.spatial_dims))
            nll = -(prep.log_probs() * g).sum(1, keepdim=True)
            vox_cw = None if cw is None else g.sum(1, keepdim=True)
        if vox_cw is not None:
            nll = nll * vox_cw
        if voxel_weight is not None:
            nll = nll * voxel_weight
        num = nll.sum(sdims)
        if vox_cw is None:
            den = torch.full_like(num, float(nll[0].numel()))
        else:
            den = vox_cw.sum(sdims)
    if batch:
        num, den = num.sum(0, keepdim=True), den.sum(0, keepdim=True)
    return num / den


def dice_probs(
    prep: Prepared, sigmoid: bool, softmax: bool, other_act: Callable | None
) -> tuple[torch.Tensor, bool]:
    """The Dice part's prediction (activation of the logits, MONAI's order and warnings) and whether it
    is the softmax of the logits (then ``exp(log_softmax)`` is shared with the cross-entropy part)."""
    x = prep.logits
    if sigmoid:
        return torch.sigmoid(x), False
    if softmax:
        if x.shape[1] == 1:
            warnings.warn("single channel prediction, `softmax=True` ignored.", stacklevel=4)
        else:
            return prep.log_probs().exp(), True
    if other_act is not None:
        return other_act(x), False
    return x, False


def _flat_dot(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """``sum over spatial axes of a * b`` for ``(B, C, *)`` tensors, shape (B, C), without a temporary."""
    return torch.linalg.vecdot(a.flatten(2), b.flatten(2))


def separable_dice_stats(
    prep: Prepared, p: torch.Tensor, p_is_softmax: bool, squared_pred: bool
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Per-sample, per-class numerators and denominators of the contour and non-contour Dice terms
    (journal eqs. 13-14), each (B, C)::

        num_c = 2 sum_{C_j} p g          den_c = sum_{C_j} p^o + sum_{C_j} g^o
        num_n = 2 sum_{not C_j} p g      den_n = sum_{not C_j} p^o + sum_{not C_j} g^o

    ``o = 2`` with ``squared_pred`` else 1. The non-contour sums are the totals minus the contour sums
    (one pass over the prediction). For class-index targets ``C_j = g_j * w`` lies inside ``G_j``, so
    ``sum_{C_j} p g = sum_{C_j} p`` and ``sum_{C_j} g = |C_j|``: the contour sums need only the
    prediction at each voxel's own class (a gather) scattered into its class.
    """
    n_ch = p.shape[1]
    sdims = tuple(range(2, p.ndim))
    if prep.index is not None:
        bsz = p.shape[0]
        idx = prep.index.flatten(1)
        if p_is_softmax:
            p_y = prep.target_log_prob().exp()
        else:
            p_y = p.gather(1, prep.index)
        w = prep.own_contour.flatten(1).to(p.dtype)
        p_y = p_y.flatten(1)
        zeros = p.new_zeros(bsz, n_ch)
        inter = zeros.scatter_add(1, idx, p_y)
        inter_c = zeros.scatter_add(1, idx, p_y * w)
        with torch.no_grad():
            ones = torch.ones_like(w)
            g_sum = zeros.scatter_add(1, idx, ones)
            g_sum_c = zeros.scatter_add(1, idx, w)
        if squared_pred:
            p_sum = _flat_dot(p, p)
            p_sum_c = zeros.scatter_add(1, idx, p_y * p_y * w)
        else:
            p_sum = p.sum(sdims)
            p_sum_c = inter_c
    else:
        g = prep.dense
        cm = prep.class_contour.to(p.dtype)
        gc = g * cm
        inter = _flat_dot(p, g)
        inter_c = _flat_dot(p, gc)
        if squared_pred:
            p_sum, p_sum_c = _flat_dot(p, p), _flat_dot(p * p, cm)
            g_sum, g_sum_c = _flat_dot(g, g), _flat_dot(gc, gc)
        else:
            p_sum, p_sum_c = p.sum(sdims), _flat_dot(p, cm)
            g_sum, g_sum_c = g.sum(sdims), gc.sum(sdims)
    num_c = 2.0 * inter_c
    den_c = p_sum_c + g_sum_c
    num_n = 2.0 * (inter - inter_c)
    den_n = (p_sum - p_sum_c) + (g_sum - g_sum_c)
    return num_c, den_c, num_n, den_n


def separable_dice(
    stats: tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor],
    *,
    beta: float,
    include_background: bool,
    class_weight: torch.Tensor | None,
    pool_classes: bool,
    smooth_nr: float,
    smooth_dr: float,
    batch: bool,
) -> torch.Tensor:
    """``beta * L_c + (1 - beta) * L_noc`` per sample, (B,) or (1,) with ``batch`` (journal eq. 15).

    Per class ``L = 1 - (num + smooth_nr) / (den + smooth_dr)``, multiplied by the class weight, then
    averaged over classes (``class_weight`` has one entry per input channel, background included, as
    in DiceCELoss; the background entry is dropped with the background); with ``pool_classes`` the (weighted) numerators and denominators are summed
    over classes before the ratio. Background (channel 0) is dropped unless ``include_background``.
    """
    num_c, den_c, num_n, den_n = stats
    n_ch = num_c.shape[1]
    cw = None
    if class_weight is not None and n_ch != 1:  # as MONAI's DiceLoss: no weight for a single class
        cw = expand_class_weight(class_weight, n_ch, "channels").to(num_c)
    if not include_background:
        if n_ch == 1:
            warnings.warn("single channel prediction, `include_background=False` ignored.", stacklevel=4)
        else:
            num_c, den_c, num_n, den_n = num_c[:, 1:], den_c[:, 1:], num_n[:, 1:], den_n[:, 1:]
            cw = None if cw is None else cw[1:]  # as DiceCELoss: the Dice part uses weight[1:]
    if batch:
        num_c, den_c, num_n, den_n = (t.sum(0, keepdim=True) for t in (num_c, den_c, num_n, den_n))
    if pool_classes:
        if cw is not None:
            num_c, den_c, num_n, den_n = num_c * cw, den_c * cw, num_n * cw, den_n * cw
        f_c = 1.0 - (num_c.sum(1) + smooth_nr) / (den_c.sum(1) + smooth_dr)
        f_n = 1.0 - (num_n.sum(1) + smooth_nr) / (den_n.sum(1) + smooth_dr)
    else:
        f_c = 1.0 - (num_c + smooth_nr) / (den_c + smooth_dr)
        f_n = 1.0 - (num_n + smooth_nr) / (den_n + smooth_dr)
        if cw is not None:
            f_c, f_n = f_c * cw, f_n * cw
        f_c, f_n = f_c.mean(1), f_n.mean(1)
    return beta * f_c + (1.0 - beta) * f_n


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
        alpha: float = 0.5,
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
        self.alpha = check_unit_interval("alpha", alpha)
        self.beta = check_unit_interval("beta", beta)
        self.lambda_contour = check_non_negative("lambda_contour", lambda_contour)
        self.kernel_size = check_positive_int("kernel_size", kernel_size)
        self.iterations = check_positive_int("iterations", iterations)
        self.edge_is_contour = bool(edge_is_contour)
        self.pool_classes = bool(pool_classes)
        self.smooth_nr = float(smooth_nr)
        self.smooth_dr = float(smooth_dr)
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
            prep = prepare_target(
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
                    need_own=weighted and not prep.binary,
                    need_class=prep.dense is not None and ((weighted and prep.binary) or (dice and prep.index is None)),
                    owner=owner,
                    contour_width_mm=self.contour_width_mm,
                    spacing=spacing,
                )
            ce_val = sdl_val = None
            if ce:
                vox = None
                if weighted:
                    mask = prep.class_contour if prep.binary else prep.own_contour
                    vox = 1.0 + self.lambda_contour * mask.to(prep.logits.dtype)
                ce_val = weighted_ce(prep, vox, self.class_weight, self.batch)
            if dice:
                p, p_is_softmax = dice_probs(prep, self.sigmoid, self.softmax, self.other_act)
                stats = separable_dice_stats(prep, p, p_is_softmax, self.squared_pred)
                sdl_val = separable_dice(
                    stats,
                    beta=self.beta,
                    include_background=self.include_background,
                    class_weight=self.class_weight,
                    pool_classes=self.pool_classes,
                    smooth_nr=self.smooth_nr,
                    smooth_dr=self.smooth_dr,
                    batch=self.batch,
                )
        return ce_val, sdl_val
