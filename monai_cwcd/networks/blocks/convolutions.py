"""Convolution with explicit zero padding, for the low-resolution blocks of PDANet."""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from monai.networks.blocks import Convolution
from monai.utils import ensure_tuple_rep

__all__ = ["PaddedConvolution", "same_pad_widths"]


def same_pad_widths(kernel_size: Sequence[int], dilation: Sequence[int]) -> list[int]:
    """``torch.nn.functional.pad`` widths (last axis first) that keep the spatial size.

    Args:
        kernel_size: odd kernel length per spatial axis.
        dilation: dilation per spatial axis.

    Returns:
        ``[before_last, after_last, ..., before_first, after_first]``.

    Raises:
        ValueError: for an even kernel length (no symmetric "same" padding exists).
    """
    widths: list[int] = []
    for k, d in zip(reversed(tuple(kernel_size)), reversed(tuple(dilation))):
        if int(k) % 2 == 0:
            raise ValueError(f"same_pad_widths needs odd kernel sizes, got kernel_size={tuple(kernel_size)}.")
        half = int(d) * (int(k) - 1) // 2
        widths += [half, half]
    return widths


class PaddedConvolution(Convolution):
    """MONAI :py:class:`~monai.networks.blocks.Convolution` that zero-pads its input explicitly.

    The output equals ``Convolution(..., padding=same)`` voxel for voxel; the convolution itself
    runs unpadded on the zero-padded input. Why: on CPU, PyTorch 2.13's oneDNN ``conv3d``
    backward under ``torch.autocast(dtype=torch.bfloat16)`` intermittently returns NaN weight
    gradients when a padded kernel is larger than the input (for example a ``3 x 3 x 3`` kernel
    on the ``2 x 2 x 2`` level of PDANet's partial decoder module); with the padding done
    beforehand the same kernel never produced one in our checks (``tests/networks``). Use it in
    blocks that run on tiny feature maps; state-dict keys are those of ``Convolution``.

    Shapes: ``(B, in_channels, *spatial)`` -> ``(B, out_channels, *spatial)``.

    Example:
        >>> import torch
        >>> conv = PaddedConvolution(3, 4, 8, kernel_size=3, dilation=2)
        >>> conv(torch.rand(1, 4, 2, 2, 2)).shape
        torch.Size([1, 8, 2, 2, 2])

    Args:
        spatial_dims: number of spatial dimensions.
        in_channels: number of input channels.
        out_channels: number of output channels.
        kernel_size: odd kernel length, one per axis or a single int. Defaults to 3.
        dilation: dilation, one per axis or a single int. Defaults to 1.
        kwargs: any other argument of MONAI's ``Convolution`` except ``padding``, ``strides``
            and ``is_transposed`` (stride 1, not transposed).
    """

    def __init__(
        self,
        spatial_dims: int,
        in_channels: int,
        out_channels: int,
        kernel_size: Sequence[int] | int = 3,
        dilation: Sequence[int] | int = 1,
        **kwargs,
    ) -> None:
        for bad in ("padding", "strides", "is_transposed", "output_padding"):
            if bad in kwargs:
                raise ValueError(f"PaddedConvolution does not take '{bad}' (it pads to keep the spatial size).")
        kernel = ensure_tuple_rep(kernel_size, spatial_dims)
        dil = ensure_tuple_rep(dilation, spatial_dims)
        pad_widths = same_pad_widths(kernel, dil)
        super().__init__(
            spatial_dims, in_channels, out_channels, kernel_size=kernel, dilation=dil, padding=0, **kwargs
        )
        self.pad_widths: list[int] = pad_widths

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """
        Args:
            x: input of shape ``(B, in_channels, *spatial)``.

        Returns:
            tensor of shape ``(B, out_channels, *spatial)``.
        """
        if any(w > 0 for w in self.pad_widths):
            x = F.pad(x, self.pad_widths)
        for module in self:
            x = module(x)
        return x
