"""Networks of monai-cwcd."""

from __future__ import annotations

from monai_cwcd.networks.nets.pdanet import PDANet

__all__ = ["PDANet"]
