"""PDANet: encoder-decoder with a partial decoder module (Huang et al., journal paper Sec. II-C)."""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F
from monai.networks.blocks import ChannelSELayer, UpSample
from monai.networks.layers.factories import Conv, Pool
from monai.networks.nets.basic_unet import TwoConv

from monai_cwcd.networks.blocks.cwam import ChannelWiseAttention
from monai_cwcd.networks.blocks.partial_decoder import PartialDecoderModule

__all__ = ["PDANet"]


class _ConcatFusion(nn.Module):
    """U-Net skip connection: ``[F_e, F_d]`` along channels (used when ``use_cwam=False``)."""

    def forward(self, enc: torch.Tensor, dec: torch.Tensor) -> torch.Tensor:
        return torch.cat([enc, dec], dim=1)


class _DecoderLevel(nn.Module):
    """One decoder level: 2x transposed-conv upsampling, skip fusion (CWAM or concat), conv module."""

    def __init__(self, up: nn.Module, fuse: nn.Module, conv: nn.Module) -> None:
        super().__init__()
        self.up = up
        self.fuse = fuse
        self.conv = conv

    def forward(self, x: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        return self.conv(self.fuse(skip, self.up(x)))


class PDANet(nn.Module):
    """PDANet, the partial-decoder attention network of Huang et al. (journal paper, Sec. II-C).

    A U-shaped network with ``len(features) - 1`` 2x down/up-sampling steps (three in the paper),
    built from MONAI blocks, one implementation for 2D and 3D:

    - **Encoder level** ``i``: a convolutional module (MONAI ``TwoConv``: two ``3 x 3 [x 3]``
      ``Convolution`` blocks with ``norm``, ``dropout``, ``act``) to ``features[i]`` channels,
      then a squeeze-and-excitation block (MONAI ``ChannelSELayer``, Hu et al. CVPR 2018) when
      ``use_se``; levels are joined by 2x max-pooling (as U-Net).
    - **Partial decoder module** on the deepest features when ``use_pdm``
      (:py:class:`~monai_cwcd.networks.blocks.PartialDecoderModule`: RFB cascade with 2x
      max-pooling between RFBs, partial decoder, holistic attention of eq. 17, second RFB cascade
      and partial decoder; Wu et al. CVPR 2019); otherwise a plain ``TwoConv`` bottleneck.
    - **Decoder level** ``i``: 2x transposed convolution (MONAI ``UpSample``, ``deconv``) to
      ``features[i]`` channels, fusion with the encoder features of the same level by a
      :py:class:`~monai_cwcd.networks.blocks.ChannelWiseAttention` (CWAM) when ``use_cwam``,
      otherwise by concatenation as in U-Net, then a ``TwoConv`` to ``features[i]`` channels.
    - **Head**: a 1-voxel convolution to ``out_channels`` raw logits.

    The ablation models of Table III: Model 1 ``use_se=False, use_pdm=False, use_cwam=False``;
    Model 2 ``use_se=True`` only; Model 3 ``use_se=True, use_pdm=True``; Model 4 (PDANet,
    default) all three. ``use_se`` switches the encoder SE blocks only; CWAM always contains
    its own SE block.

    **Stride rule.** Every spatial size must be a multiple of :py:attr:`required_multiple`
    ``= 2 ** (len(features) - 1) * (4 if use_pdm else 1)`` (32 for the paper's network: three
    encoder down-samplings and the PDM's two pooling levels). Otherwise ``forward`` raises a
    ``ValueError``, unless ``pad_input=True``: then the input is padded symmetrically
    (``pad_mode``) up to the next multiple and the logits are cropped back, so the output always
    has the input's spatial size.

    Shapes: ``(B, in_channels, *spatial)`` -> ``(B, out_channels, *spatial)``.

    Example:
        >>> import torch
        >>> net = PDANet(spatial_dims=3, in_channels=1, out_channels=3, features=(4, 8, 16, 32))
        >>> net.required_multiple
        32
        >>> net(torch.rand(2, 1, 32, 32, 32)).shape
        torch.Size([2, 3, 32, 32, 32])

    Args:
        spatial_dims: number of spatial dimensions, 2 or 3. Defaults to 3.
        in_channels: number of input channels. Defaults to 1.
        out_channels: number of output channels (classes). Defaults to 2.
        features: encoder widths, one per level, at least two (paper: 16 doubling per level,
            three down-samplings). Defaults to ``(16, 32, 64, 128)``.
        norm: normalization type and arguments, as MONAI's ``Convolution``. Defaults to ``"batch"``.
        act: activation type and arguments, as MONAI's ``Convolution``. Defaults to ``"relu"``.
        dropout: dropout ratio of the encoder/decoder convolutional modules. Defaults to 0.0.
        bias: whether convolutions have a bias term. Defaults to True.
        use_se: squeeze-and-excitation after every encoder level. Defaults to True.
        use_pdm: partial decoder module in the bottleneck (else a ``TwoConv``). Defaults to True.
        use_cwam: CWAM skip fusion in the decoder (else concatenation). Defaults to True.
        pad_input: pad inputs to :py:attr:`required_multiple` and crop the output back, instead
            of raising. Defaults to False.
        pdm_channels: width of the RFBs and partial decoders inside the PDM. Defaults to 32
            (Wu et al.'s width); ``pdm_channels=99`` gives 31.32M parameters at the paper's
            AMOS configuration, near the paper's 31.48M (see ``docs/pdanet.md``).
        rfb_kernel_sizes: kernel sizes / dilations of the RFB branches. Defaults to ``(3, 5, 7)``.
        se_reduction: reduction ratio of every SE block, capped at the block's width.
            Defaults to 2 (MONAI ``ChannelSELayer``; SENet's own choice is 16).
        cwam_kernel_size: kernel size of the CWAM weight-map convolution. Defaults to 3.
        pad_mode: ``torch.nn.functional.pad`` mode used when ``pad_input=True``. Defaults to
            ``"constant"`` (zeros).

    Raises:
        ValueError: when ``spatial_dims`` is not 2 or 3, ``features`` has fewer than two entries
            or a non-positive width, or ``pad_mode`` is unknown; in ``forward``, when a spatial
            size is not a multiple of :py:attr:`required_multiple` and ``pad_input=False``.
    """

    def __init__(
        self,
        spatial_dims: int = 3,
        in_channels: int = 1,
        out_channels: int = 2,
        features: Sequence[int] = (16, 32, 64, 128),
        norm: str | tuple = "batch",
        act: str | tuple = "relu",
        dropout: float = 0.0,
        bias: bool = True,
        use_se: bool = True,
        use_pdm: bool = True,
        use_cwam: bool = True,
        pad_input: bool = False,
        pdm_channels: int = 32,
        rfb_kernel_sizes: Sequence[int] = (3, 5, 7),
        se_reduction: int = 2,
        cwam_kernel_size: int = 3,
        pad_mode: str = "constant",
    ) -> None:
        super().__init__()
        if spatial_dims not in (2, 3):
            raise ValueError(f"spatial_dims must be 2 or 3, got {spatial_dims}.")
        features = tuple(int(f) for f in features)
        if len(features) < 2 or any(f < 1 for f in features):
            raise ValueError(f"features must hold at least two positive widths, got {features}.")
        if pad_mode not in ("constant", "reflect", "replicate", "circular"):
            raise ValueError(f"pad_mode must be one of constant, reflect, replicate, circular, got {pad_mode!r}.")
        self.spatial_dims = spatial_dims
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.use_se = use_se
        self.use_pdm = use_pdm
        self.use_cwam = use_cwam
        self.pad_input = pad_input
        self.pad_mode = pad_mode
        self.required_multiple = 2 ** (len(features) - 1) * (PartialDecoderModule.required_multiple if use_pdm else 1)

        def conv_module(c_in: int, c_out: int) -> TwoConv:
            return TwoConv(spatial_dims, c_in, c_out, act=act, norm=norm, bias=bias, dropout=dropout)

        encoder = []
        c_in = in_channels
        for f in features:
            se = ChannelSELayer(spatial_dims, f, r=min(int(se_reduction), f)) if use_se else nn.Identity()
            encoder.append(nn.Sequential(conv_module(c_in, f), se))
            c_in = f
        self.encoder = nn.ModuleList(encoder)
        self.pool = Pool[Pool.MAX, spatial_dims](kernel_size=2, stride=2)

        deepest = features[-1]
        self.bottleneck: nn.Module
        if use_pdm:
            self.bottleneck = PartialDecoderModule(
                spatial_dims, deepest, deepest, pdm_channels, rfb_kernel_sizes, norm=norm, act=act, bias=bias
            )
        else:
            self.bottleneck = conv_module(deepest, deepest)

        decoder = []
        for i in range(len(features) - 2, -1, -1):
            up = UpSample(spatial_dims, features[i + 1], features[i], scale_factor=2, mode="deconv", bias=bias)
            if use_cwam:
                fuse: nn.Module = ChannelWiseAttention(spatial_dims, features[i], cwam_kernel_size, se_reduction)
                conv = conv_module(features[i], features[i])
            else:
                fuse = _ConcatFusion()
                conv = conv_module(2 * features[i], features[i])
            decoder.append(_DecoderLevel(up, fuse, conv))
        self.decoder = nn.ModuleList(decoder)
        self.head = Conv[Conv.CONV, spatial_dims](features[0], out_channels, kernel_size=1, bias=True)

    def _forward_divisible(self, x: torch.Tensor) -> torch.Tensor:
        skips: list[torch.Tensor] = []
        for i, level in enumerate(self.encoder):
            if i > 0:
                skips.append(x)
                x = self.pool(x)
            x = level(x)
        x = self.bottleneck(x)
        for i, level in enumerate(self.decoder):
            x = level(x, skips[len(skips) - 1 - i])
        return self.head(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """
        Args:
            x: input of shape ``(B, in_channels, *spatial)``; every spatial size a multiple of
                :py:attr:`required_multiple` unless ``pad_input=True``.

        Returns:
            raw logits of shape ``(B, out_channels, *spatial)``.

        Raises:
            ValueError: when a spatial size is not a multiple of :py:attr:`required_multiple` and
                ``pad_input=False``.
        """
        spatial = x.shape[2:]
        m = self.required_multiple
        n = len(spatial)
        pads: list[int] = []
        for d in range(n - 1, -1, -1):  # F.pad order: last axis first
            total = (m - spatial[d] % m) % m
            pads.append(total // 2)
            pads.append(total - total // 2)
        if sum(pads) == 0:
            return self._forward_divisible(x)
        if not self.pad_input:
            raise ValueError(
                f"PDANet input spatial size {spatial} is not divisible by required_multiple={m} "
                "(2 ** number of down-samplings, x4 with the partial decoder module); "
                "pad or crop the input, or construct PDANet(..., pad_input=True)."
            )
        y = self._forward_divisible(F.pad(x, pads, mode=self.pad_mode))
        for d in range(n):
            y = y.narrow(d + 2, pads[2 * (n - 1 - d)], spatial[d])
        return y
