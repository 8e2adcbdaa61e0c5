"""PDANet and its building blocks, built from MONAI layer factories and blocks."""

from __future__ import annotations

from monai_cwcd.networks.blocks import (
    ChannelWiseAttention,
    HolisticAttention,
    PartialDecoder,
    PartialDecoderModule,
    ReceptiveFieldBlock,
    gaussian_kernel,
)
from monai_cwcd.networks.nets import PDANet

__all__ = [
    "ChannelWiseAttention",
    "HolisticAttention",
    "PDANet",
    "PartialDecoder",
    "PartialDecoderModule",
    "ReceptiveFieldBlock",
    "gaussian_kernel",
]
