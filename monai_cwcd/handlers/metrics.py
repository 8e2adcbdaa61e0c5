"""Validation metrics a person reads: one Dice per named structure (NaN for a structure absent from
both reference and prediction), and MONAI's ``MetricsSaver`` with structure names."""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from typing import Any

import torch
from ignite.engine import Engine
from monai.handlers import IgniteMetricHandler, MetricsSaver
from monai.handlers.utils import write_metrics_reports
from monai.metrics import DiceMetric
from monai.utils import string_list_all_gather
from monai.utils.enums import MetricReduction

__all__ = ["PresentStructureDiceMetric", "PerClassMeanDice", "StructureMetricsSaver", "nanmean_quiet"]

# numpy's warnings for NaN-only slices: a NaN result is the documented meaning ("absent"), not a problem
_NAN_SLICE_WARNINGS = ("Mean of empty slice", "All-NaN slice encountered", "Degrees of freedom <= 0",
                       "invalid value encountered")


def nanmean_quiet(x: torch.Tensor, dim: int = 0) -> torch.Tensor:
    """Mean over ``dim`` of the non-NaN entries; NaN where every entry is NaN (no warning).

    Args:
        x: floating tensor.
        dim: dimension to reduce. Defaults to 0.
    """
    nans = torch.isnan(x)
    count = (~nans).sum(dim)
    total = torch.where(nans, torch.zeros_like(x), x).sum(dim)
    return torch.where(count > 0, total / count.clamp(min=1), torch.full_like(total, float("nan")))


class PresentStructureDiceMetric(DiceMetric):
    """MONAI :class:`~monai.metrics.DiceMetric` whose per-image, per-structure value is NaN when the
    structure is absent from both the reference and the prediction ("not applicable"), and the
    usual Dice otherwise: 0 for a missed or a hallucinated structure (MONAI's ``ignore_empty=True``
    would give NaN to a hallucinated one too, ``ignore_empty=False`` 1.0 to an absent one).

    Input as ``DiceMetric``: binarised one-hot ``y_pred`` and ``y`` of shape (B, C, *spatial), or
    class indices (B, 1, *spatial) with ``num_classes``. Output (B, C') with C' = C, or C - 1
    without background.

    Args:
        include_background: whether channel 0 is scored. Defaults to True.
        reduction: MONAI metric reduction of :meth:`aggregate` (NaN entries are left out).
            Defaults to ``"mean"``.
        get_not_nans: also return the count of non-NaN entries. Defaults to False.
        num_classes: number of classes (with background) for class-index inputs. Defaults to None.
    """

    def __init__(
        self,
        include_background: bool = True,
        reduction: MetricReduction | str = MetricReduction.MEAN,
        get_not_nans: bool = False,
        num_classes: int | None = None,
    ) -> None:
        super().__init__(include_background=include_background, reduction=reduction, get_not_nans=get_not_nans,
                         ignore_empty=False, num_classes=num_classes)

    def _present(self, t: torch.Tensor) -> torch.Tensor:
        """(B, C') bool: the structure has at least one voxel."""
        if t.shape[1] == 1 and (self.num_classes or 0) > 1:  # class indices
            t = torch.nn.functional.one_hot(t[:, 0].long(), self.num_classes).movedim(-1, 1)
        if not self.include_background:
            t = t[:, 1:]
        return (t.reshape(t.shape[0], t.shape[1], -1) != 0).any(-1)

    def _compute_tensor(self, y_pred: torch.Tensor, y: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        dice = super()._compute_tensor(y_pred, y)
        absent = ~self._present(y_pred) & ~self._present(y)
        return torch.where(absent.to(dice.device), torch.full_like(dice, float("nan")), dice)


class PerClassMeanDice(IgniteMetricHandler):
    """Dice per named structure, averaged over the validation images where the structure is present
    (in the reference or the prediction), published as one scalar per structure
    (``{prefix}{class_name}``) in ``engine.state.metrics``, so ``StatsHandler``,
    ``TensorBoardStatsHandler``, MLflow and ``TrainingCurvePlotter`` all see plain numbers.

    Per image and structure the value is :class:`PresentStructureDiceMetric`'s: NaN when the
    structure is absent from both reference and prediction, else the Dice (0 for a missed or a
    hallucinated structure). The epoch value is the mean over the non-NaN images, and NaN (logged
    as ``nan``) when the structure was absent from every validation image: never a 0.0 that reads
    as a failure. The per-image values go to ``engine.state.metric_details[name]`` (B, C') for
    ``MetricsSaver`` / :class:`StructureMetricsSaver`.

    Input as MONAI's ``MeanDice``: one-hot ``y_pred`` and ``y`` of shape (B, C, *spatial) (or lists
    of channel-first tensors).

    Example:
        >>> dice = PerClassMeanDice(["tc", "wt", "et"], include_background=True, prefix="val_dice_")
        >>> # add to validate#evaluator additional_metrics: {"val_class_dice": dice}

    Args:
        class_names: names of the scored channels (background excluded when
            ``include_background=False``), in channel order, e.g. the dataset's label names.
        include_background: whether channel 0 is scored. Defaults to False.
        prefix: prefix of the metric names. Defaults to ``"val_dice_"``.
        num_classes: number of channels including background when inputs are class indices.
            Defaults to None.
        output_transform: extracts ``(y_pred, y)`` from ``engine.state.output``. Defaults to identity.
        save_details: keep the per-image, per-structure values in ``engine.state.metric_details``.
            Defaults to True.

    Raises:
        ValueError: when ``class_names`` is empty, or (at compute time) when its length differs
            from the number of scored channels.
    """

    def __init__(
        self,
        class_names: Sequence[str],
        include_background: bool = False,
        prefix: str = "val_dice_",
        num_classes: int | None = None,
        output_transform: Callable = lambda x: x,
        save_details: bool = True,
    ) -> None:
        if len(class_names) == 0:
            raise ValueError("PerClassMeanDice needs at least one class name.")
        self.class_names = [str(n) for n in class_names]
        self.metric_names = [f"{prefix}{n}" for n in self.class_names]
        metric_fn = PresentStructureDiceMetric(include_background=include_background, reduction="none",
                                               num_classes=num_classes)
        super().__init__(metric_fn=metric_fn, output_transform=output_transform, save_details=save_details)
        # publish only the per-class scalars, not the dict itself (TensorBoard would warn on it)
        self._metrics_result_mode = "flatten"

    def compute(self) -> dict[str, float]:
        """Per-structure Dice as ``{metric_name: value}`` (NaN: absent from every image)."""
        buffer = self.metric_fn.get_buffer()
        if not isinstance(buffer, torch.Tensor):
            raise ValueError("PerClassMeanDice was computed before any update.")
        if buffer.shape[-1] != len(self.metric_names):
            raise ValueError(
                f"PerClassMeanDice got {len(self.metric_names)} class names {self.class_names} but the "
                f"prediction has {buffer.shape[-1]} scored channels (include_background={self.metric_fn.include_background})."
            )
        self._is_reduced = True
        if self.save_details:
            if self._engine is None or self._name is None:
                raise RuntimeError("please call the attach() function to connect expected engine first.")
            self._engine.state.metric_details[self._name] = buffer
        means = nanmean_quiet(buffer.float().reshape(-1, buffer.shape[-1]), 0)
        return {name: float(v) for name, v in zip(self.metric_names, means)}


class StructureMetricsSaver(MetricsSaver):
    """MONAI :class:`~monai.handlers.MetricsSaver` whose reports name the structures.

    MONAI's handler labels the per-image report's columns and the summary's rows ``class0``,
    ``class1``, ... (so with ``include_background=False`` ``class0`` is the first organ), and its
    summary of a structure absent from every image floods numpy warnings (``Mean of empty slice``,
    ``All-NaN slice encountered``, ``Degrees of freedom <= 0``). This one passes ``class_names`` to
    MONAI's ``write_metrics_reports`` and computes the same summaries quietly: an absent structure
    is ``nan`` in the CSVs, and the per-image ``mean`` column is the mean over the present structures.

    Outputs in ``save_dir`` (MONAI's): ``metrics.csv`` (``metrics``), ``{name}_raw.csv`` (one row per
    image: filename, one column per structure, mean) and ``{name}_summary.csv`` (one row per
    structure: ``summary_ops``) for each of ``metric_details``.

    Example:
        >>> saver = StructureMetricsSaver("eval", class_names=["spleen", "liver"], metric_details=["val_class_dice"])
        >>> # add to validate#handlers of an evaluation config

    Args:
        save_dir: output folder.
        class_names: names of the scored channels of every ``metric_details`` entry, in order.
        metrics, metric_details, batch_transform, summary_ops, save_rank, delimiter, output_type:
            as MONAI's ``MetricsSaver``. Defaults to ``"*"``, None, identity, None, 0, ``","``, ``"csv"``.

    Raises:
        ValueError: (at the end of the epoch) a metric detail has another number of channels than
            ``class_names``.
    """

    def __init__(
        self,
        save_dir: str,
        class_names: Sequence[str],
        metrics: str | Sequence[str] | None = "*",
        metric_details: str | Sequence[str] | None = None,
        batch_transform: Callable = lambda x: x,
        summary_ops: str | Sequence[str] | None = None,
        save_rank: int = 0,
        delimiter: str = ",",
        output_type: str = "csv",
    ) -> None:
        super().__init__(save_dir=save_dir, metrics=metrics, metric_details=metric_details,
                         batch_transform=batch_transform, summary_ops=summary_ops, save_rank=save_rank,
                         delimiter=delimiter, output_type=output_type)
        self.class_names = [str(n) for n in class_names]

    def __call__(self, engine: Engine) -> None:
        import ignite.distributed as idist

        ws = idist.get_world_size()
        if self.save_rank >= ws:
            raise ValueError("target save rank is greater than the distributed group size.")
        images = string_list_all_gather(strings=self._filenames) if ws > 1 else self._filenames
        if idist.get_rank() != self.save_rank:
            return
        metrics: dict[str, Any] = {}
        if self.metrics is not None:
            metrics = {k: v for k, v in engine.state.metrics.items() if k in self.metrics or "*" in self.metrics}
        details: dict[str, Any] = {}
        if self.metric_details is not None:
            for k, v in getattr(engine.state, "metric_details", {}).items():
                if k in self.metric_details or "*" in self.metric_details:
                    n = v.shape[1] if getattr(v, "ndim", 0) >= 2 else 1
                    if n != len(self.class_names):
                        raise ValueError(
                            f"StructureMetricsSaver: metric detail '{k}' has {n} channel(s), but class_names has "
                            f"{len(self.class_names)} ({self.class_names})."
                        )
                    details[k] = v
        with warnings.catch_warnings():
            for message in _NAN_SLICE_WARNINGS:
                warnings.filterwarnings("ignore", message=message, category=RuntimeWarning)
            write_metrics_reports(
                save_dir=self.save_dir,
                images=images or None,
                metrics=metrics,
                metric_details=details,
                summary_ops=self.summary_ops,
                deli=self.deli,
                output_type=self.output_type,
                class_labels=self.class_names,
            )
