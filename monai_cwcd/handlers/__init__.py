"""Ignite handlers the bundles add to MONAI's: the contour hand-off from batch to loss, atomic
checkpoints with best-metric bookkeeping, per-class Dice, training curves."""

from __future__ import annotations

from monai_cwcd.handlers.checkpoint import AtomicCheckpointSaver, load_checkpoint
from monai_cwcd.handlers.contour_handoff import ContourHandoff
from monai_cwcd.handlers.metrics import PerClassMeanDice, PresentStructureDiceMetric, StructureMetricsSaver
from monai_cwcd.handlers.training_curves import TrainingCurvePlotter
from monai_cwcd.handlers.utils import atomic_write, is_rank0

__all__ = [
    "AtomicCheckpointSaver",
    "ContourHandoff",
    "PerClassMeanDice",
    "PresentStructureDiceMetric",
    "StructureMetricsSaver",
    "TrainingCurvePlotter",
    "atomic_write",
    "is_rank0",
    "load_checkpoint",
]

# reliability: non-finite guard, resume (issue 5)
from monai_cwcd.handlers.guards import InputChannelsGuard, NonFiniteError, NonFiniteGuard  # noqa: E402

__all__ += ["InputChannelsGuard", "NonFiniteError", "NonFiniteGuard"]
from monai_cwcd.handlers.resume import ResumeCheckpointLoader, ResumeState  # noqa: E402

__all__ += ["ResumeCheckpointLoader", "ResumeState"]
from monai_cwcd.handlers.distributed import PaddedCaseMask  # noqa: E402

__all__ += ["PaddedCaseMask"]
