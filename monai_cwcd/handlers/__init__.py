"""Ignite handlers the bundles add to MONAI's: the contour hand-off from batch to loss, atomic
checkpoints with best-metric bookkeeping, per-class Dice, training curves."""

from __future__ import annotations

from monai_cwcd.handlers.checkpoint import AtomicCheckpointSaver
from monai_cwcd.handlers.contour_handoff import ContourHandoff
from monai_cwcd.handlers.metrics import PerClassMeanDice
from monai_cwcd.handlers.training_curves import TrainingCurvePlotter
from monai_cwcd.handlers.utils import atomic_write, is_rank0

__all__ = [
    "AtomicCheckpointSaver",
    "ContourHandoff",
    "PerClassMeanDice",
    "TrainingCurvePlotter",
    "atomic_write",
    "is_rank0",
]

# reliability: non-finite guard, resume (issue 5)
from monai_cwcd.handlers.guards import InputChannelsGuard, NonFiniteError, NonFiniteGuard  # noqa: E402

__all__ += ["InputChannelsGuard", "NonFiniteError", "NonFiniteGuard"]
from monai_cwcd.handlers.resume import ResumeCheckpointLoader, ResumeState  # noqa: E402

__all__ += ["ResumeCheckpointLoader", "ResumeState"]

# demo: run summary and validation overlay PNG (issue 9)
from monai_cwcd.handlers.overlay import ValidationOverlay  # noqa: E402
from monai_cwcd.handlers.summary import RunSummary  # noqa: E402

__all__ += ["RunSummary", "ValidationOverlay"]
