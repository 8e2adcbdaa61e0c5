"""Holistic attention: a fixed Gaussian that enlarges a saliency map (eq. 17)."""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

__all__ = ["HolisticAttention", "gaussian_kernel"]


def gaussian_kernel(spatial_dims: int, kernel_size: int = 11, sigma: float = 2.0) -> torch.Tensor:
    """Sampled, sum-normalised N-D Gaussian kernel.

    :math:`g(\\mathbf{x}) \\propto \\prod_d \\exp(-x_d^2 / (2\\sigma^2))` for integer offsets
    :math:`x_d \\in [-(k-1)/2, (k-1)/2]`, scaled so that the kernel sums to 1.

    Example:
        >>> gaussian_kernel(2, 3, 1.0).shape
        torch.Size([3, 3])

    Args:
        spatial_dims: number of spatial dimensions (required; no default).
        kernel_size: odd kernel length per axis. Defaults to 11.
        sigma: standard deviation in voxels. Defaults to 2.0.

    Raises:
        ValueError: when ``kernel_size`` is not a positive odd int or ``sigma`` is not positive.
    """
    if kernel_size < 1 or kernel_size % 2 == 0:
        raise ValueError(f"kernel_size must be a positive odd int, got {kernel_size}.")
    if sigma <= 0:
        raise ValueError(f"sigma must be positive, got {sigma}.")
    x = torch.arange(kernel_size, dtype=torch.float64) - (kernel_size - 1) / 2
    g1 = torch.exp(-(x**2) / (2 * sigma**2))
    g = g1
    for _ in range(spatial_dims - 1):
        g = g.unsqueeze(-1) * g1
    return (g / g.sum()).float()


class HolisticAttention(nn.Module):
    """Holistic attention of Wu et al. (CVPR 2019, Sec. 3.3), eq. 17 of the PDANet paper.

    For a saliency map :math:`S_i \\in [0, 1]` and features :math:`x`:

    .. math::
        S_o = \\max\\big(f_{norm}(\\mathrm{Conv}_g(S_i, k)), S_i\\big), \\qquad y = x \\odot S_o

    where :math:`\\mathrm{Conv}_g` is a convolution with a fixed Gaussian kernel (size 11, std 2,
    zero bias, zero padding), :math:`f_{norm}` is a min-max normalisation to [0, 1] per sample and
    channel (0 for a constant map), and the maximum is element-wise. The Gaussian is a registered buffer, not a
    parameter: it is saved in the state dict, follows ``.to(device)``, and is never trained.

    Shapes: ``attention`` ``(B, 1 or C, *spatial)`` in [0, 1], ``x`` ``(B, C, *spatial)`` ->
    ``(B, C, *spatial)``.

    Example:
        >>> import torch
        >>> ha = HolisticAttention(spatial_dims=3)
        >>> ha(torch.rand(1, 1, 16, 16, 16), torch.rand(1, 8, 16, 16, 16)).shape
        torch.Size([1, 8, 16, 16, 16])

    Args:
        spatial_dims: number of spatial dimensions (1, 2 or 3). Defaults to 3.
        kernel_size: Gaussian kernel length per axis. Defaults to 11 (Wu et al.; paper Sec. II-C.2).
        sigma: Gaussian standard deviation in voxels. Defaults to 2.0 (paper Sec. II-C.2).
        eps: added to the min-max range; raised to ``torch.finfo(dtype).tiny`` (the smallest
            normal number) where it does not exist in the map's dtype (float16: 6.1e-5). A constant
            map (range 0, e.g. a saturated saliency map) normalises to 0 with a zero gradient, in
            every dtype. Defaults to 1e-8.

    Raises:
        ValueError: when ``kernel_size`` is not a positive odd int or ``sigma`` is not positive.
    """

    def __init__(self, spatial_dims: int = 3, kernel_size: int = 11, sigma: float = 2.0, eps: float = 1e-8) -> None:
        super().__init__()
        self.spatial_dims = int(spatial_dims)
        self.padding = int(kernel_size) // 2
        self.eps = float(eps)
        self._eps_half = max(self.eps, torch.finfo(torch.float16).tiny)  # for TorchScript (no torch.finfo)
        self.register_buffer("kernel", gaussian_kernel(self.spatial_dims, int(kernel_size), float(sigma))[None, None])

    def _eps(self, dtype: torch.dtype) -> float:
        """``eps`` raised to the smallest normal number of ``dtype`` where it does not exist in it
        (1e-8 is 0 in float16)."""
        if torch.jit.is_scripting():
            return self._eps_half if dtype == torch.float16 else self.eps
        return max(self.eps, torch.finfo(dtype).tiny)

    def soft_attention(self, attention: torch.Tensor) -> torch.Tensor:
        """Enlarged saliency map :math:`S_o` of eq. 17.

        Args:
            attention: saliency map :math:`S_i` of shape ``(B, C, *spatial)``, values in [0, 1].

        Returns:
            :math:`S_o` with the shape and dtype of ``attention``.
        """
        channels = attention.shape[1]
        weight = self.kernel.to(attention.dtype).expand([channels, 1] + list(self.kernel.shape[2:]))
        d = self.spatial_dims
        # explicit zero padding (same result): see PaddedConvolution, bf16 CPU backward on tiny maps
        padded = F.pad(attention, [self.padding] * (2 * d))
        blurred = torch.convolution(padded, weight, None, [1] * d, [0] * d, [1] * d, False, [0] * d, channels)
        dims = list(range(2, blurred.dim()))
        low = torch.amin(blurred, dim=dims, keepdim=True)
        high = torch.amax(blurred, dim=dims, keepdim=True)
        span = high - low
        # a constant (e.g. saturated) map normalises to 0 with a zero gradient: no 0/0, and no 1/eps
        # amplification that overflows float16 in the backward pass
        flat = span <= 0
        safe = torch.where(flat, torch.ones_like(span), span + self._eps(blurred.dtype))
        normed = torch.where(flat, torch.zeros_like(blurred), (blurred - low) / safe)
        return torch.maximum(normed, attention)

    def forward(self, attention: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """
        Args:
            attention: saliency map :math:`S_i` of shape ``(B, 1 or C, *spatial)`` in [0, 1].
            x: features of shape ``(B, C, *spatial)``.

        Returns:
            ``x * S_o`` of shape ``(B, C, *spatial)``.
        """
        return x * self.soft_attention(attention)
