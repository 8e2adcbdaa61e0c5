"""Partial decoder aggregation and the partial decoder module (PDM) of PDANet."""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn as nn
from monai.networks.blocks import Convolution, UpSample
from monai.networks.layers.factories import Conv, Pool

from monai_cwcd.networks.blocks.convolutions import PaddedConvolution
from monai_cwcd.networks.blocks.holistic_attention import HolisticAttention
from monai_cwcd.networks.blocks.rfb import ReceptiveFieldBlock

__all__ = ["PartialDecoder", "PartialDecoderModule"]


class PartialDecoder(nn.Module):
    """Three-level partial decoder aggregation (upsample, multiply, concatenate).

    Follows the aggregation of Wu et al., "Cascaded Partial Decoder", CVPR 2019 (Sec. 3.2), in
    N-D. With :math:`x_1` the finest and :math:`x_3` the coarsest level (each level half the
    size of the previous one), :math:`U` a 2x linear upsampling and every :math:`c_j` a
    ``3 x 3 [x 3]`` MONAI ``Convolution`` (conv, ``norm``, ``act``; explicitly padded, see
    :py:class:`~monai_cwcd.networks.blocks.PaddedConvolution`):

    .. math::
        x_2' &= c_1(U x_3) \\odot x_2, \\qquad
        x_1' = c_2(U U x_3) \\odot c_3(U x_2) \\odot x_1 \\\\
        x_2'' &= c_6([x_2', c_4(U x_3)]), \\qquad
        x_1'' = c_7([x_1', c_5(U x_2'')]) \\\\
        y &= \\mathrm{Conv}_{1}(c_8(x_1''))

    Shapes: ``x1`` ``(B, C, *S)``, ``x2`` ``(B, C, *S/2)``, ``x3`` ``(B, C, *S/4)`` ->
    ``(B, out_channels, *S)``.

    Example:
        >>> import torch
        >>> pd = PartialDecoder(spatial_dims=2, channels=4, out_channels=1)
        >>> pd(torch.rand(1, 4, 16, 16), torch.rand(1, 4, 8, 8), torch.rand(1, 4, 4, 4)).shape
        torch.Size([1, 1, 16, 16])

    Args:
        spatial_dims: number of spatial dimensions (2 or 3). Defaults to 3.
        channels: channels ``C`` of each input level. Defaults to 32.
        out_channels: channels of the output (1 for a saliency map). Defaults to 1.
        norm: feature normalization type and arguments. Defaults to ``"batch"``.
        act: activation type and arguments. Defaults to ``"relu"``.
        bias: whether the convolutions have a bias term. Defaults to True.
        interp_mode: upsampling interpolation, ``"linear"`` picks bi/trilinear from
            ``spatial_dims`` (MONAI's ``UpSample``). Defaults to ``"linear"``.
    """

    def __init__(
        self,
        spatial_dims: int = 3,
        channels: int = 32,
        out_channels: int = 1,
        norm: str | tuple = "batch",
        act: str | tuple = "relu",
        bias: bool = True,
        interp_mode: str = "linear",
    ) -> None:
        super().__init__()
        c = channels

        def conv(c_in: int, c_out: int) -> Convolution:
            # explicit padding: see PaddedConvolution (bf16 CPU backward on the tiny PDM levels)
            return PaddedConvolution(spatial_dims, c_in, c_out, kernel_size=3, act=act, norm=norm, bias=bias)

        align = None if interp_mode == "nearest" else True
        self.upsample = UpSample(
            spatial_dims, scale_factor=2, mode="nontrainable", interp_mode=interp_mode, align_corners=align
        )
        self.conv_up1 = conv(c, c)
        self.conv_up2 = conv(c, c)
        self.conv_up3 = conv(c, c)
        self.conv_up4 = conv(c, c)
        self.conv_up5 = conv(2 * c, 2 * c)
        self.conv_cat2 = conv(2 * c, 2 * c)
        self.conv_cat3 = conv(3 * c, 3 * c)
        self.conv_out = conv(3 * c, 3 * c)
        self.head = Conv[Conv.CONV, spatial_dims](3 * c, out_channels, kernel_size=1, bias=True)

    def forward(self, x1: torch.Tensor, x2: torch.Tensor, x3: torch.Tensor) -> torch.Tensor:
        """
        Args:
            x1: finest level ``(B, C, *S)``.
            x2: middle level ``(B, C, *S/2)``.
            x3: coarsest level ``(B, C, *S/4)``.

        Returns:
            tensor of shape ``(B, out_channels, *S)``.
        """
        x3_up = self.upsample(x3)
        x2_1 = self.conv_up1(x3_up) * x2
        x1_1 = self.conv_up2(self.upsample(x3_up)) * self.conv_up3(self.upsample(x2)) * x1
        x2_2 = self.conv_cat2(torch.cat([x2_1, self.conv_up4(x3_up)], dim=1))
        x1_2 = self.conv_cat3(torch.cat([x1_1, self.conv_up5(self.upsample(x2_2))], dim=1))
        return self.head(self.conv_out(x1_2))


class PartialDecoderModule(nn.Module):
    """Partial decoder module (PDM) of PDANet: two RFB cascades joined by holistic attention.

    Huang et al., journal paper Sec. II-C.2 and Fig. 2(c); building blocks from Wu et al.
    (CVPR 2019). The input ``x`` (the encoder's deepest features) passes

    1. a cascade of three :py:class:`ReceptiveFieldBlock` with a 2x max-pooling before the second
       and the third, giving levels :math:`x_1, x_2, x_3` at sizes ``S, S/2, S/4``;
    2. a :py:class:`PartialDecoder` whose 1-channel output, after a sigmoid, is the saliency map
       :math:`S_i`;
    3. :py:class:`HolisticAttention`: :math:`x_1 \\leftarrow x_1 \\odot S_o` (eq. 17);
    4. a second RFB cascade on the refined :math:`x_1` and a second partial decoder with
       ``out_channels`` outputs: the PDM output.

    Both passes have their own weights (as Wu et al.'s two branches). The spatial size must be a
    multiple of 4 (:py:attr:`required_multiple`).

    Shapes: ``(B, in_channels, *S)`` -> ``(B, out_channels, *S)``.

    Example:
        >>> import torch
        >>> pdm = PartialDecoderModule(spatial_dims=3, in_channels=16, out_channels=16, channels=8)
        >>> pdm(torch.rand(2, 16, 8, 8, 8)).shape
        torch.Size([2, 16, 8, 8, 8])

    Args:
        spatial_dims: number of spatial dimensions (2 or 3). Defaults to 3.
        in_channels: input channels. Defaults to 128.
        out_channels: output channels. Defaults to 128.
        channels: width of every RFB and of the partial decoders. Defaults to 32 (Wu et al.).
        kernel_sizes: RFB branch kernel sizes / dilations. Defaults to ``(3, 5, 7)``.
        norm: feature normalization type and arguments. Defaults to ``"batch"``.
        act: activation type and arguments. Defaults to ``"relu"``.
        bias: whether the convolutions have a bias term. Defaults to True.
        ha_kernel_size: holistic attention Gaussian size. Defaults to 11.
        ha_sigma: holistic attention Gaussian standard deviation. Defaults to 2.0.
    """

    required_multiple: int = 4

    def __init__(
        self,
        spatial_dims: int = 3,
        in_channels: int = 128,
        out_channels: int = 128,
        channels: int = 32,
        kernel_sizes: Sequence[int] = (3, 5, 7),
        norm: str | tuple = "batch",
        act: str | tuple = "relu",
        bias: bool = True,
        ha_kernel_size: int = 11,
        ha_sigma: float = 2.0,
    ) -> None:
        super().__init__()

        def rfb(c_in: int) -> ReceptiveFieldBlock:
            return ReceptiveFieldBlock(spatial_dims, c_in, channels, kernel_sizes, norm=norm, act=act, bias=bias)

        self.pool = Pool[Pool.MAX, spatial_dims](kernel_size=2, stride=2)
        self.rfb1 = nn.ModuleList([rfb(in_channels), rfb(channels), rfb(channels)])
        self.decoder1 = PartialDecoder(spatial_dims, channels, 1, norm=norm, act=act, bias=bias)
        self.attention = HolisticAttention(spatial_dims, ha_kernel_size, ha_sigma)
        self.rfb2 = nn.ModuleList([rfb(channels), rfb(channels), rfb(channels)])
        self.decoder2 = PartialDecoder(spatial_dims, channels, out_channels, norm=norm, act=act, bias=bias)

    def saliency(self, x: torch.Tensor) -> torch.Tensor:
        """First-pass saliency logits ``(B, 1, *S)`` (before the sigmoid), for inspection."""
        x1 = self.rfb1[0](x)
        x2 = self.rfb1[1](self.pool(x1))
        x3 = self.rfb1[2](self.pool(x2))
        return self.decoder1(x1, x2, x3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """
        Args:
            x: input of shape ``(B, in_channels, *S)``, ``S`` a multiple of 4.

        Returns:
            tensor of shape ``(B, out_channels, *S)``.
        """
        x1 = self.rfb1[0](x)
        x2 = self.rfb1[1](self.pool(x1))
        x3 = self.rfb1[2](self.pool(x2))
        refined = self.attention(torch.sigmoid(self.decoder1(x1, x2, x3)), x1)
        y1 = self.rfb2[0](refined)
        y2 = self.rfb2[1](self.pool(y1))
        y3 = self.rfb2[2](self.pool(y2))
        return self.decoder2(y1, y2, y3)
