"""Stop a run at the first non-finite loss or input, naming the iteration and the cases of the batch."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import torch
from ignite.engine import Engine, Events
from monai.engines.utils import IterationEvents
from monai.utils import CommonKeys

__all__ = ["NonFiniteError", "NonFiniteGuard", "InputChannelsGuard"]


class NonFiniteError(ValueError):
    """A loss or an input batch holds NaN or Inf; the message names the iteration and the case ids."""


def _case_ids(batch: Any, case_key: str) -> list[str]:
    if isinstance(batch, dict) and case_key in batch:
        ids = batch[case_key]
        return [str(i) for i in ids] if isinstance(ids, (list, tuple)) else [str(ids)]
    return []


def _filenames(value: Any) -> list[str]:
    meta = getattr(value, "meta", None)
    if not isinstance(meta, dict) or "filename_or_obj" not in meta:
        return []
    names = meta["filename_or_obj"]
    return [str(n) for n in names] if isinstance(names, (list, tuple)) else [str(names)]


class NonFiniteGuard:
    """Raise :class:`NonFiniteError` at the first NaN/Inf loss (or input image) instead of letting a
    run continue with NaN weights (ignite's ``TerminateOnNan`` stops silently, after the optimizer
    step).

    - The loss is checked at MONAI's ``IterationEvents.LOSS_COMPLETED``, i.e. BEFORE ``backward`` and
      the optimizer step, so the weights (and every checkpoint written so far) stay finite and a
      resume from the last checkpoint is possible. Engines without that event (plain ignite,
      evaluators) are checked at ``ITERATION_COMPLETED``.
    - The input images of ``input_keys`` are checked at ``ITERATION_STARTED``: a NaN/Inf voxel in a
      case (``NormalizeIntensityd`` turns one into a whole NaN volume) is reported with its case id
      before it reaches the network. Attach the guard to the evaluator as well to check validation
      batches.

    The error message names the engine, epoch, iteration, the case ids of the batch
    (``batch[case_key]``, as the datalists of ``monai_cwcd.data`` provide) and, for inputs, how
    many voxels are NaN / Inf per case, plus the file names when the batch keeps metadata. Under
    DDP every rank checks its own batch; the first rank that raises exits and ``torchrun`` stops the
    others.

    Example:
        >>> guard = NonFiniteGuard()   # guard.attach(trainer), or list it in train#handlers
        >>> # NonFiniteError: non-finite loss nan at epoch 3, iteration 41 (SupervisedTrainer);
        >>> #   batch case ids: ['amos_0007', 'amos_0012']

    Args:
        input_keys: batch keys of floating-point inputs to check; empty disables the input check.
            Defaults to ``("image",)``.
        case_key: batch key of the case ids. Defaults to ``"case_id"``.
        check_loss: check ``engine.state.output["loss"]``. Defaults to True.
        loss_key: key of the loss in ``engine.state.output``. Defaults to ``"loss"``.
    """

    def __init__(
        self,
        input_keys: Sequence[str] = (CommonKeys.IMAGE,),
        case_key: str = "case_id",
        check_loss: bool = True,
        loss_key: str = CommonKeys.LOSS,
    ) -> None:
        self.input_keys = [input_keys] if isinstance(input_keys, str) else list(input_keys)
        self.case_key = case_key
        self.check_loss = check_loss
        self.loss_key = loss_key
        self.logger = logging.getLogger("monai_cwcd.guards")

    def attach(self, engine: Engine) -> None:
        """Register the input check on ``ITERATION_STARTED`` and the loss check on
        ``LOSS_COMPLETED`` (MONAI trainers) or ``ITERATION_COMPLETED`` (other engines)."""
        if self.input_keys and not engine.has_event_handler(self.check_inputs, Events.ITERATION_STARTED):
            engine.add_event_handler(Events.ITERATION_STARTED, self.check_inputs)
        if self.check_loss:
            has_loss_event = IterationEvents.LOSS_COMPLETED in getattr(engine, "_allowed_events", [])
            event = IterationEvents.LOSS_COMPLETED if has_loss_event else Events.ITERATION_COMPLETED
            if not engine.has_event_handler(self.check_output, event):
                engine.add_event_handler(event, self.check_output)

    def _where(self, engine: Engine) -> str:
        ids = _case_ids(engine.state.batch, self.case_key)
        cases = f"batch case ids: {ids}" if ids else f"the batch has no '{self.case_key}' key"
        return (
            f"at epoch {engine.state.epoch}, iteration {engine.state.iteration} ({type(engine).__name__}); {cases}"
        )

    def check_inputs(self, engine: Engine) -> None:
        """Raise when an input of the batch holds NaN or Inf."""
        batch = engine.state.batch
        if not isinstance(batch, dict):
            return
        for key in self.input_keys:
            value = batch.get(key)
            if not isinstance(value, torch.Tensor) or not value.is_floating_point():
                continue
            flat = value.detach().reshape(value.shape[0], -1) if value.ndim > 0 else value.detach().reshape(1, 1)
            finite = torch.isfinite(flat)
            if bool(finite.all()):
                continue
            nan = torch.isnan(flat).sum(1).tolist()
            inf = torch.isinf(flat).sum(1).tolist()
            ids = _case_ids(batch, self.case_key) or [f"#{i}" for i in range(len(nan))]
            bad = [f"{c}: {n} NaN, {i} Inf" for c, n, i in zip(ids, nan, inf) if n or i]
            files = _filenames(value)
            file_s = f"; files: {files}" if files else ""
            raise NonFiniteError(
                f"input '{key}' (shape {tuple(value.shape)}) holds non-finite voxels {self._where(engine)}; "
                f"per case: {bad}{file_s}. Fix or exclude these images (NaN/Inf voxels are not repaired)."
            )

    def check_output(self, engine: Engine) -> None:
        """Raise when the loss in ``engine.state.output`` is NaN or Inf."""
        output = engine.state.output
        loss = output.get(self.loss_key) if isinstance(output, dict) else output
        if not isinstance(loss, torch.Tensor):
            if isinstance(loss, float) and not torch.isfinite(torch.tensor(loss)):
                loss = torch.tensor(loss)
            else:
                return
        if bool(torch.isfinite(loss.detach()).all()):
            return
        value = loss.detach().float().flatten()[:4].tolist()
        raise NonFiniteError(
            f"non-finite loss {value if loss.numel() > 1 else value[0]} {self._where(engine)}. The optimizer "
            "step was not taken; the last checkpoint holds finite weights (resume from it after fixing the cause: "
            "bad input voxels, a too high learning rate, or float16 overflow without a GradScaler)."
        )


class InputChannelsGuard:
    """Raise ``ValueError`` at ``ITERATION_STARTED`` when the batch's input has another number of
    channels than the network expects, naming the case ids, the shape and the expected count
    (instead of the convolution's error deep inside the network, which names no case).

    Example:
        >>> guard = InputChannelsGuard(in_channels=4)   # BraTS: flair, t1, t1ce, t2

    Args:
        in_channels: channels the network expects (the config's ``network_def#in_channels``).
        key: batch key of the input. Defaults to ``"image"``.
        case_key: batch key of the case ids. Defaults to ``"case_id"``.

    Raises:
        ValueError: ``in_channels < 1``.
    """

    def __init__(self, in_channels: int, key: str = CommonKeys.IMAGE, case_key: str = "case_id") -> None:
        if int(in_channels) < 1:
            raise ValueError(f"in_channels must be >= 1, got {in_channels}.")
        self.in_channels = int(in_channels)
        self.key = key
        self.case_key = case_key

    def attach(self, engine: Engine) -> None:
        """Register on ``Events.ITERATION_STARTED``."""
        if not engine.has_event_handler(self, Events.ITERATION_STARTED):
            engine.add_event_handler(Events.ITERATION_STARTED, self)

    def __call__(self, engine: Engine) -> None:
        batch = engine.state.batch
        value = batch.get(self.key) if isinstance(batch, dict) else None
        if not isinstance(value, torch.Tensor) or value.ndim < 2 or value.shape[1] == self.in_channels:
            return
        ids = _case_ids(batch, self.case_key)
        files = _filenames(value)
        raise ValueError(
            f"input '{self.key}' has {value.shape[1]} channel(s) (batch shape {tuple(value.shape)}), the network expects "
            f"{self.in_channels}, at epoch {engine.state.epoch}, iteration {engine.state.iteration}; batch case ids: "
            f"{ids}{f'; files: {files}' if files else ''}. Check the image files of these cases (e.g. a 4D NIfTI, "
            "or the modality list)."
        )
