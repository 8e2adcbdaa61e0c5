"""Channel-wise attention module (CWAM) of the PDANet decoder."""

from __future__ import annotations

import torch
import torch.nn as nn
from monai.networks.blocks import ChannelSELayer, Convolution

__all__ = ["ChannelWiseAttention"]


class ChannelWiseAttention(nn.Module):
    """Adaptive fusion of encoder and decoder features followed by squeeze-and-excitation.

    Huang et al., journal paper Sec. II-C.3 and Fig. 2(b) (adaptive channel fusion as in ISA-Net,
    their ref. [1]; SE block of Hu et al., CVPR 2018). For encoder features :math:`F_e` and
    decoder features :math:`F_d` of the same shape:

    .. math::
        W = \\mathrm{softmax}_c\\big(\\mathrm{Conv}([F_e, F_d])\\big) \\in \\mathbb{R}^{2 \\times S},
        \\qquad O = \\mathrm{SE}(w_1 \\odot F_e + w_2 \\odot F_d)

    ``Conv`` is a plain ``kernel_size`` convolution (``2C -> 2``, with bias, no norm/act since the
    softmax follows) and ``SE`` is MONAI's :py:class:`~monai.networks.blocks.ChannelSELayer` with
    reduction ``min(se_reduction, C)`` (so at least one hidden unit).

    Shapes: ``enc`` and ``dec`` ``(B, C, *S)`` -> ``(B, C, *S)``.

    Example:
        >>> import torch
        >>> cwam = ChannelWiseAttention(spatial_dims=3, channels=8)
        >>> cwam(torch.rand(1, 8, 4, 4, 4), torch.rand(1, 8, 4, 4, 4)).shape
        torch.Size([1, 8, 4, 4, 4])

    Args:
        spatial_dims: number of spatial dimensions (2 or 3). Defaults to 3.
        channels: channels ``C`` of each input and of the output. Defaults to 16.
        kernel_size: kernel size of the weight-map convolution. Defaults to 3.
        se_reduction: SE reduction ratio ``r``. Defaults to 2 (MONAI ``ChannelSELayer`` default).
    """

    def __init__(self, spatial_dims: int = 3, channels: int = 16, kernel_size: int = 3, se_reduction: int = 2) -> None:
        super().__init__()
        self.weight_conv = Convolution(
            spatial_dims, 2 * channels, 2, kernel_size=kernel_size, conv_only=True, bias=True
        )
        self.se = ChannelSELayer(spatial_dims, channels, r=min(int(se_reduction), channels))

    def weights(self, enc: torch.Tensor, dec: torch.Tensor) -> torch.Tensor:
        """Fusion weight map ``W`` of shape ``(B, 2, *S)``; the two channels sum to 1."""
        return torch.softmax(self.weight_conv(torch.cat([enc, dec], dim=1)), dim=1)

    def forward(self, enc: torch.Tensor, dec: torch.Tensor) -> torch.Tensor:
        """
        Args:
            enc: encoder (skip) features :math:`F_e` of shape ``(B, C, *S)``.
            dec: upsampled decoder features :math:`F_d` of shape ``(B, C, *S)``.

        Returns:
            fused features of shape ``(B, C, *S)``.
        """
        w = self.weights(enc, dec)
        return self.se(w[:, 0:1] * enc + w[:, 1:2] * dec)
