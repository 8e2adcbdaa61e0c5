"""Leave the padding cases of a distributed evaluation out of the metrics."""

from __future__ import annotations

import logging
from typing import Any

import torch
from ignite.engine import Engine, Events
from monai.config import KeysCollection
from monai.engines.utils import IterationEvents
from monai.utils import ensure_tuple

__all__ = ["PaddedCaseMask"]


class PaddedCaseMask:
    """Empty the prediction and the ground truth of the padding cases of a
    :class:`DistributedEvalSampler <monai_cwcd.data.DistributedEvalSampler>`, so that they take part
    in the evaluation epoch (every rank must reach the metric all-gather) but contribute nothing to
    the reduced metric.

    Attach it to the evaluator (in ``val_handlers``). At ``IterationEvents.MODEL_COMPLETED``, after
    MONAI's decollate and ``postprocessing`` and before the metrics update, it sets ``keys`` of every
    padding case in ``engine.state.output`` to zeros. A case whose prediction and ground truth are
    both empty scores NaN in every channel in MONAI's Dice (``MeanDice`` / ``DiceMetric`` with
    ``ignore_empty=True``, MONAI's default), ``HausdorffDistanceMetric`` and
    ``SurfaceDistanceMetric``, and in our ``PerClassMeanDice`` (a structure absent from both), and
    their reductions leave NaN out of the mean. The padding rows stay in
    ``engine.state.metric_details`` as all-NaN rows.

    Which cases are padding: the last ``sampler.num_padding`` cases this rank iterates in an epoch.
    With a sampler that pads nothing (or a plain loader, single process) the handler does nothing.

    Requirements: ``keys`` hold one channel per class (one-hot or multi-label, as after
    ``AsDiscreted(argmax=..., to_onehot=...)``); a metric that scores an empty prediction and ground
    truth as a number (``DiceMetric(ignore_empty=False)`` gives 1, confusion-matrix metrics count
    true negatives) would count the padding case.

    Example:
        >>> sampler = DistributedEvalSampler(val_ds)
        >>> evaluator = SupervisedEvaluator(..., val_data_loader=DataLoader(val_ds, sampler=sampler),
        ...                                 val_handlers=[PaddedCaseMask()])

    Args:
        keys: keys of ``engine.state.output`` to empty (prediction and ground truth). Defaults to
            ``("pred", "label")``.
        sampler: the sampler whose padding to mask; None uses the attached engine's
            ``data_loader.sampler``. Defaults to None.

    Raises:
        KeyError: (at the first padding case) a key is not in the evaluator's output.
    """

    def __init__(self, keys: KeysCollection = ("pred", "label"), sampler: Any = None) -> None:
        self.keys = ensure_tuple(keys)
        self.sampler = sampler
        self.logger = logging.getLogger("monai_cwcd.distributed")
        self._seen = 0
        self.masked = 0

    def attach(self, engine: Engine) -> None:
        """Register on ``EPOCH_STARTED`` (reset the count) and ``IterationEvents.MODEL_COMPLETED``."""
        if self.sampler is None:
            self.sampler = getattr(getattr(engine, "data_loader", None), "sampler", None)
        engine.add_event_handler(Events.EPOCH_STARTED, self._epoch_started)
        engine.add_event_handler(IterationEvents.MODEL_COMPLETED, self)

    def _epoch_started(self, engine: Engine) -> None:
        self._seen = 0
        self.masked = 0

    def _empty(self, item: dict, index: int | None = None) -> None:
        for key in self.keys:
            if key not in item:
                raise KeyError(f"PaddedCaseMask: key '{key}' not in the evaluator output (keys {sorted(item)}).")
            if index is None:
                item[key] = torch.zeros_like(item[key])
            else:
                item[key][index] = 0

    def __call__(self, engine: Engine) -> None:
        """Empty ``keys`` of the padding cases of this iteration."""
        num_padding = int(getattr(self.sampler, "num_padding", 0) or 0)
        output = engine.state.output
        if isinstance(output, dict):  # decollate=False: one batch-first dict
            size = len(next(iter(output.values())))
        else:
            size = len(output)
        first, self._seen = self._seen, self._seen + size
        if not num_padding:
            return
        num_real = len(self.sampler) - num_padding
        for i in range(max(num_real - first, 0), size):
            if isinstance(output, dict):
                self._empty(output, i)
            else:
                self._empty(output[i])
            self.masked += 1
