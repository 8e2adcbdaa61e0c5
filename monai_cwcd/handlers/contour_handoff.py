"""Hand the batch's precomputed contour map to the loss for the coming training step."""

from __future__ import annotations

import torch
from ignite.engine import Engine, Events

__all__ = ["ContourHandoff"]


class ContourHandoff:
    """Ignite handler that passes ``engine.state.batch[contour_key]`` to ``loss.set_contour`` at
    ``Events.ITERATION_STARTED``, so a loss called as ``loss(pred, label)`` (what MONAI's
    ``SupervisedTrainer`` does) uses the contour map computed by
    ``monai_cwcd.transforms.ContourWeightMapd`` in the data pipeline (in the bundles: the last random
    transform, so the map is the contour of the augmented patch).

    The map never reaches the network, the trainer's output or the post-transforms: only the loss
    sees it, once (the loss clears it after its next forward call and reports
    ``loss.last_contour_source == "handed_over"``). A loss without ``set_contour`` (any MONAI loss)
    is left alone, so swapping the loss in a bundle needs no other change; a batch without the key
    is skipped and the CWCD loss then computes the contour on the fly.

    Put it at the front of ``train#handlers``, never among the last two: the model-zoo multi-GPU
    pattern drops the last two train handlers on ranks > 0.

    Example:
        >>> from monai_cwcd.losses import CWCDLoss
        >>> loss = CWCDLoss(to_onehot_y=True, softmax=True)
        >>> handler = ContourHandoff(loss)   # then handler.attach(trainer), or list it in train#handlers

    Args:
        loss: the loss function of the trainer.
        contour_key: batch key of the contour map, shape (B, 1, *spatial) or (B, C, *spatial).
            Defaults to ``"contour_label"`` (the default output key of ``ContourWeightMapd(keys="label")``).
        device: device for the map; None uses ``engine.state.device`` (MONAI workflows), else the
            map's own device. Defaults to None.
        non_blocking: passed to ``Tensor.to``. Defaults to False.
    """

    def __init__(
        self,
        loss: torch.nn.Module,
        contour_key: str = "contour_label",
        device: torch.device | str | None = None,
        non_blocking: bool = False,
    ) -> None:
        self.loss = loss
        self.contour_key = contour_key
        self.device = device
        self.non_blocking = non_blocking
        self.enabled = callable(getattr(loss, "set_contour", None))
        self.handed_over = 0

    def attach(self, engine: Engine) -> None:
        """Register ``self`` on ``Events.ITERATION_STARTED`` of ``engine`` (a no-op for losses
        without ``set_contour``)."""
        if self.enabled and not engine.has_event_handler(self, Events.ITERATION_STARTED):
            engine.add_event_handler(Events.ITERATION_STARTED, self)

    def __call__(self, engine: Engine) -> None:
        """Move the batch's contour map to the device and hand it to the loss."""
        batch = engine.state.batch
        if not isinstance(batch, dict) or self.contour_key not in batch:
            return
        device = self.device if self.device is not None else getattr(engine.state, "device", None)
        contour = batch[self.contour_key]
        if not isinstance(contour, torch.Tensor):
            contour = torch.as_tensor(contour)
        if device is not None:
            contour = contour.to(device=device, non_blocking=self.non_blocking)
        self.loss.set_contour(contour)
        self.handed_over += 1
