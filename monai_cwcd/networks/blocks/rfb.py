"""Receptive field block (RFB) of the partial decoder module."""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn as nn
from monai.networks.blocks import Convolution
from monai.networks.layers.utils import get_act_layer

from monai_cwcd.networks.blocks.convolutions import PaddedConvolution

__all__ = ["ReceptiveFieldBlock"]


class ReceptiveFieldBlock(nn.Module):
    """Multi-branch receptive field block with a residual path, for 2D and 3D.

    Follows the RFB of Wu et al., "Cascaded Partial Decoder for Fast and Accurate Salient Object
    Detection", CVPR 2019 (Sec. 3.2), used by PDANet's partial decoder module (Huang et al.,
    journal paper Sec. II-C.2, Fig. 2(d)). With branch outputs :math:`b_0, \\dots, b_K`:

    .. math::
        y = \\mathrm{act}\\big(\\mathrm{Conv}_{3}([b_0, b_1, \\dots, b_K]) + \\mathrm{Conv}_{1}(x)\\big)

    - branch 0: a 1-voxel (``1 x 1 [x 1]``) convolution;
    - branch ``i`` for each ``k`` in ``kernel_sizes``: a 1-voxel convolution, then one 1-D
      convolution of length ``k`` along each spatial axis in turn (in 2D exactly Wu et al.'s
      ``1 x k`` and ``k x 1``; in 3D ``k x 1 x 1``, ``1 x k x 1``, ``1 x 1 x k``), then a
      ``3 x 3 [x 3]`` convolution with dilation ``k``;
    - the concatenated branches are fused by a ``3 x 3 [x 3]`` convolution, a 1-voxel
      convolution of the input forms the residual path, and ``act`` follows their sum.

    Every convolution is MONAI's :py:class:`~monai.networks.blocks.Convolution` with ``norm`` and
    no activation (as in Wu et al.); all paddings keep the spatial size (zero padding). Kernels
    larger than one voxel are :py:class:`~monai_cwcd.networks.blocks.PaddedConvolution` (explicit
    padding, same result), which sidesteps NaN weight gradients of PyTorch's CPU bfloat16
    ``conv3d`` backward when a padded kernel is larger than the tiny PDM feature maps.

    Shapes: input ``(B, in_channels, *spatial)`` -> output ``(B, out_channels, *spatial)``.

    Example:
        >>> import torch
        >>> block = ReceptiveFieldBlock(spatial_dims=3, in_channels=8, out_channels=4)
        >>> block(torch.rand(2, 8, 8, 8, 8)).shape
        torch.Size([2, 4, 8, 8, 8])

    Args:
        spatial_dims: number of spatial dimensions (2 or 3). Defaults to 3.
        in_channels: number of input channels. Defaults to 1.
        out_channels: number of output channels (width of every branch). Defaults to 32
            (Wu et al.'s RFB width).
        kernel_sizes: odd 1-D kernel lengths / dilations of the multi-scale branches.
            Defaults to ``(3, 5, 7)`` (Wu et al.).
        norm: feature normalization type and arguments. Defaults to ``"batch"``.
        act: activation after the residual sum. Defaults to ``"relu"``.
        bias: whether the convolutions have a bias term. Defaults to True.

    Raises:
        ValueError: when ``kernel_sizes`` is empty or holds an even or non-positive size.
    """

    def __init__(
        self,
        spatial_dims: int = 3,
        in_channels: int = 1,
        out_channels: int = 32,
        kernel_sizes: Sequence[int] = (3, 5, 7),
        norm: str | tuple = "batch",
        act: str | tuple = "relu",
        bias: bool = True,
    ) -> None:
        super().__init__()
        kernel_sizes = tuple(int(k) for k in kernel_sizes)
        if not kernel_sizes or any(k < 1 or k % 2 == 0 for k in kernel_sizes):
            raise ValueError(f"kernel_sizes must be a non-empty sequence of odd positive ints, got {kernel_sizes}.")

        def conv(c_in: int, c_out: int, kernel_size: int | Sequence[int], dilation: int = 1) -> Convolution:
            if all(k == 1 for k in ((kernel_size,) if isinstance(kernel_size, int) else kernel_size)):
                return Convolution(spatial_dims, c_in, c_out, kernel_size=kernel_size, act=None, norm=norm, bias=bias)
            return PaddedConvolution(
                spatial_dims, c_in, c_out, kernel_size=kernel_size, dilation=dilation, act=None, norm=norm, bias=bias
            )

        branches = [conv(in_channels, out_channels, 1)]
        for k in kernel_sizes:
            layers = [conv(in_channels, out_channels, 1)]
            for axis in range(spatial_dims):
                layers.append(conv(out_channels, out_channels, [k if d == axis else 1 for d in range(spatial_dims)]))
            layers.append(conv(out_channels, out_channels, 3, dilation=k))
            branches.append(nn.Sequential(*layers))
        self.branches = nn.ModuleList(branches)
        self.fuse = conv(out_channels * len(branches), out_channels, 3)
        self.residual = conv(in_channels, out_channels, 1)
        self.act = get_act_layer(act)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """
        Args:
            x: input of shape ``(B, in_channels, *spatial)``.

        Returns:
            tensor of shape ``(B, out_channels, *spatial)``.
        """
        outs: list[torch.Tensor] = []
        for branch in self.branches:
            outs.append(branch(x))
        return self.act(self.fuse(torch.cat(outs, dim=1)) + self.residual(x))
