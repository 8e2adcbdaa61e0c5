"""Validation metric handler with one scalar Dice per class."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from monai.handlers import MeanDice

__all__ = ["PerClassMeanDice"]


class PerClassMeanDice(MeanDice):
    """MONAI ``MeanDice`` averaged over the batch and iterations per class, published as one scalar
    metric per class (``{prefix}{class_name}``) in ``engine.state.metrics``, so ``StatsHandler``,
    ``TensorBoardStatsHandler``, MLflow and ``TrainingCurvePlotter`` all see plain numbers.

    Input as ``MeanDice``: one-hot ``y_pred`` and ``y`` of shape (B, C, *spatial) (or lists of
    channel-first tensors). A class absent from every validation image gives NaN for that epoch.

    Example:
        >>> dice = PerClassMeanDice(["tc", "wt", "et"], include_background=True, prefix="val_dice_")
        >>> # add to validate#evaluator additional_metrics: {"val_class_dice": dice}

    Args:
        class_names: names of the scored channels (background excluded when
            ``include_background=False``), in channel order.
        include_background: whether channel 0 is scored. Defaults to False.
        prefix: prefix of the metric names. Defaults to ``"val_dice_"``.
        num_classes: number of channels including background when inputs are class indices.
            Defaults to None.
        output_transform: extracts ``(y_pred, y)`` from ``engine.state.output``. Defaults to identity.
        save_details: keep the per-image, per-class scores in ``engine.state.metric_details``.
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
        super().__init__(
            include_background=include_background,
            reduction="mean_batch",
            num_classes=num_classes,
            output_transform=output_transform,
            save_details=save_details,
            return_with_label=self.metric_names,
        )
        # publish only the per-class scalars, not the dict itself (TensorBoard would warn on it)
        self._metrics_result_mode = "flatten"

    def compute(self) -> Any:
        """Per-class Dice as ``{metric_name: value}``."""
        buffer = self.metric_fn.get_buffer()
        n = buffer.shape[-1] if hasattr(buffer, "shape") else None
        if n is not None and n != len(self.metric_names):
            raise ValueError(
                f"PerClassMeanDice got {len(self.metric_names)} class names {self.class_names} but the "
                f"prediction has {n} scored channels (include_background={self.metric_fn.include_background})."
            )
        return super().compute()
