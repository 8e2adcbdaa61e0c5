"""Contour-weighted losses (CWCD and its parts) and the baselines the papers compare against, as
MONAI ``_Loss`` subclasses.

All losses share one ``reduction`` contract: the loss is computed per sample, shape ``(B,)``
(``(1,)`` with ``batch=True``); ``reduction="none"`` returns that, ``"mean"``/``"sum"`` reduce it
(details in ``monai_cwcd.losses._utils``). The mathematics is the public functional API
``monai_cwcd.losses.functional``, which every loss calls.
"""

from __future__ import annotations

from monai_cwcd.losses import functional
from monai_cwcd.losses.baselines import DistanceWeightedCELoss, RegionWiseLoss
from monai_cwcd.losses.contour_ce import ContourWeightedCELoss
from monai_cwcd.losses.cwcd import CWCDLoss
from monai_cwcd.losses.separable_dice import SeparableDiceLoss

__all__ = [
    "CWCDLoss",
    "ContourWeightedCELoss",
    "SeparableDiceLoss",
    "DistanceWeightedCELoss",
    "RegionWiseLoss",
    "functional",
]
