"""The loss mathematics of ``monai_cwcd.losses`` as pure functions on tensors.

Every loss module of the package calls these functions (there is no second copy of the math), so a
research training loop can use exactly the same terms without the module wrappers, as kornia pairs
``kornia.losses.dice_loss`` with ``kornia.losses.DiceLoss``::

    import torch
    from monai_cwcd.losses import functional as LF
    from monai_cwcd.transforms.functional import label_contour

    logits = torch.randn(2, 3, 16, 16, requires_grad=True)
    label = torch.randint(0, 3, (2, 1, 16, 16))
    prep = LF.prepare_target(logits, label, to_onehot_y=True)
    own = label_contour(prep.index, 2, kernel_size=3)                       # journal eq. 8
    ce = LF.contour_weighted_cross_entropy(prep, own, lambda_contour=2.0)   # eq. 11, shape (B,)
    p, p_is_softmax = LF.activate(prep, softmax=True)
    stats = LF.separable_dice_stats(prep, p, own, p_is_softmax=p_is_softmax)  # eqs. 13-14
    sdl = LF.separable_dice(stats, beta=0.5)                               # eq. 15, shape (B,)
    (0.5 * sdl + 0.5 * ce).mean().backward()                              # eq. 16

Shapes: ``B`` batch, ``C`` channels (classes), ``*spatial`` 1 to 3 spatial axes. Probabilities and
targets are unitless in [0, 1]; sums over voxels count voxels (each voxel has unit volume). The
paper is Huang et al., "Partial Decoder Attention Network with Contour Weighted Loss Function for
Data-Imbalance Medical Image Segmentation" (journal); equation numbers refer to it.

Numerical rules (the same in every loss, so no setting MONAI's own losses accept yields 0/0, inf or
NaN):

- A Dice (or Jaccard) ratio whose smoothed denominator is 0 (an empty contour or non-contour set,
  or an absent class, with ``smooth_dr=0``) is 1, i.e. a loss term of 0: the value MONAI's Dice
  gives an empty set under its default, equal smoothing (``1 - smooth_nr / smooth_dr = 0``).
- A cross-entropy whose weighted denominator is 0 (every voxel of the sample, or of the batch, has a
  class of weight 0) contributes 0 and is left out of the normalisation, as PyTorch's weighted
  ``cross_entropy`` leaves such voxels out of its batch mean.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F

__all__ = [
    "PreparedTarget",
    "prepare_target",
    "check_class_indices",
    "activate",
    "cross_entropy_stats",
    "normalise_cross_entropy",
    "contour_weighted_cross_entropy",
    "separable_dice_stats",
    "dice_ratio",
    "separable_dice",
    "expand_class_weight",
]


def _plain(x: torch.Tensor) -> torch.Tensor:
    """A plain ``torch.Tensor`` view of a MONAI ``MetaTensor`` (autograd is kept), else ``x``."""
    return x.as_tensor() if hasattr(x, "as_tensor") else x


def expand_class_weight(weight: torch.Tensor | None, num_classes: int, what: str = "channels") -> torch.Tensor | None:
    """``weight`` (0-dim or 1-dim) as a ``(num_classes,)`` tensor; a number is repeated.

    Args:
        weight: class weights, or None (returned as None).
        num_classes: the number of classes the weights must cover.
        what: names the classes counted, for the error message. Defaults to ``"channels"``.

    Raises:
        ValueError: a 1-dim ``weight`` whose length is not ``num_classes``.
    """
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


# ----------------------------------------------------------------------------------------------------
# target preparation


@dataclass
class PreparedTarget:
    """Inputs of one loss evaluation, validated and in the form the loss terms read.

    Attributes:
        logits: float32 ``(B, C, *spatial)``.
        index: ``(B, 1, *spatial)`` int64 class indices of mutually exclusive classes, or None.
        dense: ``(B, C, *spatial)`` float32 one-hot / multi-label target, or None. Exactly one of
            ``index`` and ``dense`` is what the terms read; ``dense`` is also set next to ``index``
            when the per-channel BCE path needs it.
        binary: the cross-entropy is per-channel BCE with logits (``sigmoid=True`` or ``C == 1``).
        spatial_dims: number of spatial axes.
        own_contour: ``(B, 1, *spatial)`` bool, the contour of each voxel's own class (set by the
            loss modules, or by the caller).
        class_contour: ``(B, C, *spatial)`` bool, the per-class contour ``C_j`` inside class ``j``.
        cache: per-evaluation cache (``log_softmax`` is computed once and shared by the CE and Dice
            terms).
    """

    logits: torch.Tensor
    index: torch.Tensor | None
    dense: torch.Tensor | None
    binary: bool
    spatial_dims: int
    own_contour: torch.Tensor | None = None
    class_contour: torch.Tensor | None = None
    cache: dict = field(default_factory=dict)

    @property
    def num_classes(self) -> int:
        """``C``, the number of input channels."""
        return self.logits.shape[1]

    def log_probs(self) -> torch.Tensor:
        """``log_softmax(logits, 1)``, ``(B, C, *spatial)``, computed once."""
        if "logp" not in self.cache:
            self.cache["logp"] = torch.log_softmax(self.logits, dim=1)
        return self.cache["logp"]

    def target_log_prob(self) -> torch.Tensor:
        """``(B, 1, *spatial)`` log-probability of each voxel's target class (index targets), computed once."""
        if "logp_y" not in self.cache:
            self.cache["logp_y"] = self.log_probs().gather(1, self.index)
        return self.cache["logp_y"]


def check_class_indices(target: torch.Tensor, num_classes: int, owner: str = "target") -> torch.Tensor:
    """``target`` as int64 class indices.

    Args:
        target: class indices of any shape and integer, bool or floating dtype.
        num_classes: the valid range is ``[0, num_classes - 1]``.
        owner: names the caller in messages. Defaults to ``"target"``.

    Raises:
        ValueError: negative, too large or non-integral (also NaN / inf) values.
    """
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


def prepare_target(
    input: torch.Tensor,
    target: torch.Tensor,
    *,
    to_onehot_y: bool = False,
    sigmoid: bool = False,
    need_one_hot: bool = False,
    owner: str = "prepare_target",
) -> PreparedTarget:
    """Validate ``input``/``target`` and bring them into the form the loss terms read.

    The logits become float32 (also for float16 / bfloat16 input: volume-sized sums neither overflow
    nor lose the small contour terms). A ``(B, 1, *)`` target of a multi-channel input is kept as
    int64 class indices (``index``; the softmax cross-entropy and the separable Dice statistics read
    them directly, no one-hot tensor is built); a ``(B, C, *)`` target is the float32 ``dense``
    one-hot / multi-label target. A single-channel input (or ``sigmoid=True``) selects per-channel
    BCE (``binary``), which needs ``dense``.

    Args:
        input: logits ``(B, C, *spatial)``.
        target: ``(B, 1, *spatial)`` class indices or ``(B, C, *spatial)`` one-hot / multi-label.
        to_onehot_y: the loss's flag; a class-index target of a multi-channel input needs it when a
            term needs a one-hot target (``need_one_hot`` or per-channel BCE). Defaults to False.
        sigmoid: per-channel BCE instead of softmax cross-entropy (also used when C == 1).
            Defaults to False.
        need_one_hot: some term of the loss (Dice) needs a one-hot target. Defaults to False.
        owner: names the caller in messages. Defaults to ``"prepare_target"``.

    Returns:
        a :class:`PreparedTarget` (without contours).

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
        return PreparedTarget(logits, None, target.float(), binary, input.ndim - 2)
    if target.shape[1] == n_ch:
        if to_onehot_y:
            raise ValueError(
                f"{owner}: to_onehot_y=True expects a (B, 1, *spatial) class-index target, got target shape "
                f"{tuple(target.shape)} for input shape {tuple(input.shape)}."
            )
        return PreparedTarget(logits, None, target.float(), binary, input.ndim - 2)
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
    return PreparedTarget(logits, index, dense, binary, input.ndim - 2)


def activate(
    prep: PreparedTarget, sigmoid: bool = False, softmax: bool = False, other_act: Callable | None = None
) -> tuple[torch.Tensor, bool]:
    """The Dice part's prediction ``p``, ``(B, C, *spatial)``: the activation of the logits, in
    MONAI ``DiceLoss``'s order and with its warnings.

    Args:
        prep: the prepared inputs.
        sigmoid: ``p = sigmoid(logits)``. Defaults to False.
        softmax: ``p = softmax(logits, 1)`` (ignored with a warning for one channel). Defaults to False.
        other_act: ``p = other_act(logits)``. Defaults to None (``p`` is the logits).

    Returns:
        ``(p, p_is_softmax)``; ``p_is_softmax`` says ``p`` is ``exp(prep.log_probs())``, whose
        values at the target classes :func:`separable_dice_stats` can then take from the cache.
    """
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


# ----------------------------------------------------------------------------------------------------
# contour-weighted cross-entropy (journal eq. 11)


def _sum_to_sample(x: torch.Tensor) -> torch.Tensor:
    return x.sum(tuple(range(1, x.ndim)))


def cross_entropy_stats(
    prep: PreparedTarget,
    voxel_weight: torch.Tensor | None = None,
    weight: torch.Tensor | None = None,
    label_smoothing: float = 0.0,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-sample numerator and normaliser of the voxel-weighted cross-entropy, each ``(B,)``.

    Softmax cross-entropy, class-index target ``y`` (``prep.index``), smoothing ``e``, ``C``
    classes, class weights ``cw`` (1 when None), voxel weight ``v`` (1 when None)::

        num = sum_i v_i [ (1 - e) cw_{y_i} (-log p_{i,y_i}) + (e / C) sum_c cw_c (-log p_{i,c}) ]
        den = sum_i cw_{y_i}

    Softmax cross-entropy, one-hot / probability target ``g`` (``prep.dense``), ``t = (1 - e) g +
    e / C``::

        num = sum_i v_i sum_c cw_c t_{i,c} (-log p_{i,c})          den = number of voxels

    Per-channel BCE with logits (``prep.binary``; ``cw`` is ``pos_weight`` per channel, ``v``
    broadcastable to ``(B, C, *)``, no label smoothing, as ``BCEWithLogitsLoss``)::

        num = sum_{i,c} v_{i,c} BCE(x_{i,c}, g_{i,c}; cw_c)          den = C * number of voxels

    With ``v = 1`` the normalisers are exactly those of ``torch.nn.functional.cross_entropy`` /
    ``binary_cross_entropy_with_logits`` with ``reduction="mean"`` (weighted for class indices, a
    voxel count for probability targets); :func:`normalise_cross_entropy` turns the pair into the
    loss. Journal eq. 11 is ``v = 1 + lambda * w`` (see :func:`contour_weighted_cross_entropy`).

    Args:
        prep: the prepared inputs.
        voxel_weight: ``(B, 1, *spatial)`` (or ``(B, C, *spatial)`` for BCE) weight of each voxel,
            >= 0. Defaults to None.
        weight: ``(C,)`` class weights >= 0 (or a 0-dim number). Defaults to None.
        label_smoothing: ``e`` in [0, 1], softmax cross-entropy only. Defaults to 0.0.

    Returns:
        ``(num, den)``, float32 ``(B,)`` each.
    """
    x = prep.logits
    n_ch = x.shape[1]
    bsz = x.shape[0]
    view = (1, n_ch, *([1] * prep.spatial_dims))
    if prep.binary:
        pw = expand_class_weight(weight, n_ch)
        pw = None if pw is None else pw.to(x).view(view)
        loss = F.binary_cross_entropy_with_logits(x, prep.dense, pos_weight=pw, reduction="none")
        if voxel_weight is not None:
            loss = loss * voxel_weight
        num = _sum_to_sample(loss)
        return num, torch.full_like(num, float(x[0].numel()))
    cw = expand_class_weight(weight, n_ch)
    cw = None if cw is None else cw.to(x)
    eps = float(label_smoothing)
    if prep.index is not None:
        nll = -prep.target_log_prob()  # (B, 1, *)
        vox_cw = None if cw is None else cw[prep.index]
        if vox_cw is not None:
            nll = nll * vox_cw
        if eps > 0.0:
            logp = prep.log_probs()
            smooth = -(logp.sum(1, keepdim=True) if cw is None else (logp * cw.view(view)).sum(1, keepdim=True))
            nll = (1.0 - eps) * nll + (eps / n_ch) * smooth
        if voxel_weight is not None:
            nll = nll * voxel_weight
        num = _sum_to_sample(nll)
        if vox_cw is None:
            den = torch.full_like(num, float(nll[0].numel()))
        else:
            den = _sum_to_sample(vox_cw)
        return num, den
    t = prep.dense
    if eps > 0.0:
        t = (1.0 - eps) * t + eps / n_ch
    if cw is not None:
        t = t * cw.view(view)
    nll = -(prep.log_probs() * t).sum(1, keepdim=True)
    if voxel_weight is not None:
        nll = nll * voxel_weight
    num = _sum_to_sample(nll)
    return num, num.new_full((bsz,), float(nll[0].numel()))


def normalise_cross_entropy(num: torch.Tensor, den: torch.Tensor, batch: bool = False) -> torch.Tensor:
    """The cross-entropy from :func:`cross_entropy_stats`: each sample's share of ONE normalised
    mean over the batch.

    ``batch=False``: ``L_b = num_b / mean_b' den_b'``, shape ``(B,)``; ``batch=True``: ``sum_b num_b
    / sum_b den_b``, shape ``(1,)``. Both have the same mean, which is the batch loss of
    ``torch.nn.functional.cross_entropy`` (and so of MONAI's ``DiceCELoss``) including its weighted
    normalisation over the whole batch; without class weights ``den_b`` is the voxel count and
    ``L_b`` is the sample's own mean. A normaliser of 0 (every voxel of the batch has weight 0)
    gives 0 instead of 0/0, and a sample with ``den_b = 0`` (and so ``num_b = 0`` without label
    smoothing) contributes 0 and nothing to the normaliser: it is left out of the mean.

    Args:
        num: ``(B,)`` numerators.
        den: ``(B,)`` normalisers, >= 0.
        batch: one value for the batch. Defaults to False.

    Returns:
        ``(B,)``, or ``(1,)`` with ``batch``.
    """
    if batch:
        num, den = num.sum(0, keepdim=True), den.sum(0, keepdim=True)
    else:
        den = den.mean(0, keepdim=True).expand_as(num)
    ok = den > 0
    return torch.where(ok, num / torch.where(ok, den, torch.ones_like(den)), torch.zeros_like(num))


def contour_weighted_cross_entropy(
    prep: PreparedTarget,
    contour: torch.Tensor | None,
    lambda_contour: float = 2.0,
    weight: torch.Tensor | None = None,
    label_smoothing: float = 0.0,
    batch: bool = False,
) -> torch.Tensor:
    """Contour-weighted cross-entropy (CWCE), journal eq. 11, per sample.

    For class indices (the normalisation of :func:`cross_entropy_stats` and
    :func:`normalise_cross_entropy`, the journal's constant ``1/M`` left out)::

        L_CWCE = sum_i cw_{y_i} (1 + lambda_contour * w_i) (-log softmax(x_i)_{y_i}) / sum_i cw_{y_i}

    with ``w`` the contour map (1 on the contour of the voxel's own class). ``lambda_contour = 0``
    (or an empty contour) is ``torch.nn.functional.cross_entropy(input, target, weight,
    label_smoothing=...)``.

    Args:
        prep: the prepared inputs.
        contour: ``(B, 1, *spatial)`` own-class contour (softmax CE), or ``(B, C, *spatial)``
            per-class contour (BCE), bool or 0/1; None is an empty contour.
        lambda_contour: extra weight of a contour voxel, >= 0. Defaults to 2.0.
        weight: ``(C,)`` class weights (``pos_weight`` for BCE). Defaults to None.
        label_smoothing: in [0, 1], softmax cross-entropy only. Defaults to 0.0.
        batch: one value for the batch. Defaults to False.

    Returns:
        ``(B,)``, or ``(1,)`` with ``batch``.
    """
    vox = None
    if contour is not None and lambda_contour > 0:
        vox = 1.0 + lambda_contour * contour.to(prep.logits.dtype)
    num, den = cross_entropy_stats(prep, vox, weight, label_smoothing)
    return normalise_cross_entropy(num, den, batch)


# ----------------------------------------------------------------------------------------------------
# separable Dice (journal eqs. 13-15)


def _flat_dot(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """``sum over spatial axes of a * b`` for ``(B, C, *)`` tensors, shape (B, C), without a temporary."""
    return torch.linalg.vecdot(a.flatten(2), b.flatten(2))


def separable_dice_stats(
    prep: PreparedTarget,
    p: torch.Tensor,
    contour: torch.Tensor,
    p_is_softmax: bool = False,
    squared_pred: bool = False,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Per-sample, per-class numerators and denominators of the contour and non-contour Dice terms
    (journal eqs. 13-14), each ``(B, C)``, in voxels::

        num_c = 2 sum_{C_j} p g          den_c = sum_{C_j} p^o + sum_{C_j} g^o
        num_n = 2 sum_{~C_j} p g         den_n = sum_{~C_j} p^o + sum_{~C_j} g^o

    ``o = 2`` with ``squared_pred`` else 1. The non-contour sums are the totals minus the contour
    sums (one pass over the prediction). For class-index targets ``C_j = g_j * w`` lies inside
    ``G_j``, so ``sum_{C_j} p g = sum_{C_j} p`` and ``sum_{C_j} g = |C_j|``: the contour sums need
    only the prediction at each voxel's own class (a gather) scattered into its class.

    Args:
        prep: the prepared inputs (``prep.index`` or ``prep.dense`` is the target ``g``).
        p: ``(B, C, *spatial)`` prediction, e.g. from :func:`activate`.
        contour: with ``prep.index``: ``(B, 1, *spatial)`` own-class contour ``w``; with
            ``prep.dense``: ``(B, C, *spatial)`` per-class contour ``C_j`` (inside class ``j``).
            Bool or 0/1.
        p_is_softmax: ``p`` is ``exp(prep.log_probs())`` (its values at the target classes are
            then taken from the cache). Defaults to False.
        squared_pred: squared ``p`` and ``g`` in the denominators. Defaults to False.

    Returns:
        ``(num_c, den_c, num_n, den_n)``, each ``(B, C)``.
    """
    n_ch = p.shape[1]
    sdims = tuple(range(2, p.ndim))
    if prep.index is not None:
        bsz = p.shape[0]
        idx = prep.index.flatten(1)
        p_y = prep.target_log_prob().exp() if p_is_softmax else p.gather(1, prep.index)
        w = contour.flatten(1).to(p.dtype)
        p_y = p_y.flatten(1)
        zeros = p.new_zeros(bsz, n_ch)
        inter = zeros.scatter_add(1, idx, p_y)
        inter_c = zeros.scatter_add(1, idx, p_y * w)
        with torch.no_grad():
            g_sum = zeros.scatter_add(1, idx, torch.ones_like(w))
            g_sum_c = zeros.scatter_add(1, idx, w)
        if squared_pred:
            p_sum = _flat_dot(p, p)
            p_sum_c = zeros.scatter_add(1, idx, p_y * p_y * w)
        else:
            p_sum = p.sum(sdims)
            p_sum_c = inter_c
    else:
        g = prep.dense
        cm = contour.to(p.dtype)
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


def dice_ratio(
    num: torch.Tensor, den: torch.Tensor, smooth_nr: float = 1e-5, smooth_dr: float = 1e-5, jaccard: bool = False
) -> torch.Tensor:
    """The smoothed Dice ratio ``(num + smooth_nr) / (den + smooth_dr)`` (1 minus it is the loss), or
    the Jaccard ratio with ``jaccard``: ``(num + smooth_nr) / (2 den - num + smooth_dr)`` (MONAI's
    ``DiceLoss(jaccard=True)``: ``2 tp / (2 (tp + fp + fn))``).

    A smoothed denominator of 0 (an empty set: no prediction and no target, with ``smooth_dr=0``;
    in practice below ``torch.finfo(dtype).tiny``, whose reciprocal would overflow) gives 1 (a loss of 0, MONAI's value for an empty set under equal smoothing) instead of 0/0 or
    x/0, with a zero gradient.

    Args:
        num: Dice numerators ``2 sum p g``, any shape.
        den: Dice denominators ``sum p^o + sum g^o``, the shape of ``num``.
        smooth_nr: added to the numerator. Defaults to 1e-5.
        smooth_dr: added to the denominator. Defaults to 1e-5.
        jaccard: Jaccard index (soft IoU) instead of Dice. Defaults to False.

    Returns:
        the ratio, the shape of ``num``.
    """
    if jaccard:
        den = 2.0 * den - num
    den = den + smooth_dr
    # a denominator below the smallest normal number of its dtype counts as empty: its reciprocal
    # (the gradient) would overflow
    ok = den.abs() >= torch.finfo(den.dtype).tiny
    safe = torch.where(ok, den, torch.ones_like(den))
    return torch.where(ok, (num + smooth_nr) / safe, torch.ones_like(den))


def separable_dice(
    stats: tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor],
    *,
    beta: float = 0.5,
    include_background: bool = False,
    weight: torch.Tensor | None = None,
    pool_classes: bool = False,
    smooth_nr: float = 1e-5,
    smooth_dr: float = 1e-5,
    jaccard: bool = False,
    batch: bool = False,
) -> torch.Tensor:
    """Separable Dice loss ``beta * L_c + (1 - beta) * L_noc`` (journal eq. 15) per sample.

    Per class ``L = 1 - dice_ratio(num, den)`` (:func:`dice_ratio`, smoothing and empty sets),
    multiplied by the class weight, then averaged over the classes (MONAI ``DiceLoss``'s class
    mean, zero-weight classes included); with ``pool_classes`` the (weighted) numerators and
    denominators are summed over the classes before the ratio (the papers' code release). With an
    empty contour (``kernel_size=1``) ``L_c = 0`` and the loss is ``(1 - beta)`` times MONAI's
    ``DiceLoss`` (so ``beta = 0`` with an empty contour is exactly ``DiceLoss``).

    Args:
        stats: ``(num_c, den_c, num_n, den_n)`` from :func:`separable_dice_stats`, ``(B, C)`` each.
        beta: weight of the contour term, in [0, 1]. Defaults to 0.5.
        include_background: keep channel 0 (ignored with a warning for one channel). Defaults to False.
        weight: ``(C,)`` class weights, background entry included (dropped with the background, as
            ``DiceCELoss`` does); not used for a single channel, as ``DiceLoss``. Defaults to None.
        pool_classes: sum over classes before the ratio. Defaults to False.
        smooth_nr: added to each numerator. Defaults to 1e-5.
        smooth_dr: added to each denominator. Defaults to 1e-5.
        jaccard: Jaccard (soft IoU) instead of Dice. Defaults to False.
        batch: sum the statistics over the batch before the ratio. Defaults to False.

    Returns:
        ``(B,)``, or ``(1,)`` with ``batch``.
    """
    num_c, den_c, num_n, den_n = stats
    n_ch = num_c.shape[1]
    cw = None
    if weight is not None and n_ch != 1:  # as MONAI's DiceLoss: no weight for a single class
        cw = expand_class_weight(weight, n_ch).to(num_c)
    if not include_background:
        if n_ch == 1:
            warnings.warn("single channel prediction, `include_background=False` ignored.", stacklevel=4)
        else:
            num_c, den_c, num_n, den_n = num_c[:, 1:], den_c[:, 1:], num_n[:, 1:], den_n[:, 1:]
            cw = None if cw is None else cw[1:]
    if batch:
        num_c, den_c, num_n, den_n = (t.sum(0, keepdim=True) for t in (num_c, den_c, num_n, den_n))
    ratio = dict(smooth_nr=smooth_nr, smooth_dr=smooth_dr, jaccard=jaccard)
    if pool_classes:
        if cw is not None:
            num_c, den_c, num_n, den_n = num_c * cw, den_c * cw, num_n * cw, den_n * cw
        f_c = 1.0 - dice_ratio(num_c.sum(1), den_c.sum(1), **ratio)
        f_n = 1.0 - dice_ratio(num_n.sum(1), den_n.sum(1), **ratio)
    else:
        f_c = 1.0 - dice_ratio(num_c, den_c, **ratio)
        f_n = 1.0 - dice_ratio(num_n, den_n, **ratio)
        if cw is not None:
            f_c, f_n = f_c * cw, f_n * cw
        f_c, f_n = f_c.mean(1), f_n.mean(1)
    if beta == 0.0:
        return f_n
    if beta == 1.0:
        return f_c
    return beta * f_c + (1.0 - beta) * f_n
