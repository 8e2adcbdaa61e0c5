"""Building blocks of PDANet: RFB, partial decoder (module), holistic attention, CWAM."""

from __future__ import annotations

from monai_cwcd.networks.blocks.convolutions import PaddedConvolution, same_pad_widths
from monai_cwcd.networks.blocks.cwam import ChannelWiseAttention
from monai_cwcd.networks.blocks.holistic_attention import HolisticAttention, gaussian_kernel
from monai_cwcd.networks.blocks.partial_decoder import PartialDecoder, PartialDecoderModule
from monai_cwcd.networks.blocks.rfb import ReceptiveFieldBlock

__all__ = [
    "ChannelWiseAttention",
    "HolisticAttention",
    "PaddedConvolution",
    "PartialDecoder",
    "PartialDecoderModule",
    "ReceptiveFieldBlock",
    "gaussian_kernel",
    "same_pad_widths",
]
