from __future__ import annotations

import numpy as np
import pytest
import torch
from monai.networks.blocks import ChannelSELayer, Convolution
from scipy import ndimage
from scipy.signal.windows import gaussian

from monai_cwcd.networks.blocks import (
    ChannelWiseAttention,
    HolisticAttention,
    PaddedConvolution,
    PartialDecoder,
    PartialDecoderModule,
    ReceptiveFieldBlock,
    gaussian_kernel,
    same_pad_widths,
)


@pytest.fixture(autouse=True)
def _one_thread():
    # tiny convolutions on a shared 2-core machine run much faster without OpenMP contention
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _conv_weights(module: torch.nn.Module) -> list[tuple[int, ...]]:
    return [tuple(m.conv.weight.shape[2:]) for m in module.modules() if isinstance(m, Convolution)]


@pytest.mark.parametrize(
    "dims, kernel, dilation", [(2, 3, 1), (3, 3, 2), (3, (1, 5, 1), 1), (3, (7, 1, 1), 1), (2, (3, 5), (2, 1))]
)
def test_padded_convolution_equals_padded_monai_convolution(dims, kernel, dilation):
    torch.manual_seed(0)
    ref = Convolution(dims, 3, 4, kernel_size=kernel, dilation=dilation, norm="instance", act="prelu")
    conv = PaddedConvolution(dims, 3, 4, kernel_size=kernel, dilation=dilation, norm="instance", act="prelu")
    assert conv.state_dict().keys() == ref.state_dict().keys()
    conv.load_state_dict(ref.state_dict())
    assert all(p == 0 for p in conv.conv.padding)
    x = torch.randn(2, 3, *([5] * dims))
    torch.testing.assert_close(conv(x), ref(x))
    assert torch.jit.script(conv)(x).shape == ref(x).shape


def test_padded_convolution_arguments():
    assert same_pad_widths((1, 5, 3), (1, 1, 2)) == [2, 2, 2, 2, 0, 0]  # last axis first, like F.pad
    with pytest.raises(ValueError, match="odd"):
        PaddedConvolution(2, 1, 1, kernel_size=2)
    with pytest.raises(ValueError, match="padding"):
        PaddedConvolution(2, 1, 1, padding=1)


def test_padded_convolution_bf16_backward_on_tiny_maps():
    """PyTorch 2.13's CPU bf16 conv3d backward gives NaN weight gradients now and then (roughly 1
    in 15 trials on our machine, more on AVX2-only ones) for a padded 3^3 kernel on a 2^3 map; the
    explicitly padded convolution must give finite gradients in every one of 96 trials."""
    torch.manual_seed(0)
    bad = []
    for channels in (16, 24, 32, 48, 64, 96):
        for trial in range(16):
            conv = PaddedConvolution(3, channels, channels, kernel_size=3, conv_only=True)
            x = torch.randn(2, channels, 2, 2, 2, requires_grad=True)
            with torch.autocast("cpu", dtype=torch.bfloat16):
                y = conv(x)
            y.float().square().sum().backward()
            if not (torch.isfinite(conv.conv.weight.grad).all() and torch.isfinite(x.grad).all()):
                bad.append((channels, trial))
    assert bad == []


@pytest.mark.parametrize("dims", [2, 3])
def test_rfb_shape_and_branches(dims):
    block = ReceptiveFieldBlock(dims, in_channels=3, out_channels=4, kernel_sizes=(3, 5))
    x = torch.rand(2, 3, *([8] * dims))
    assert block(x).shape == (2, 4, *([8] * dims))
    assert len(block.branches) == 3  # 1-voxel branch + one per kernel size
    # branch for k=5: 1-voxel conv, one 1-D conv of length 5 per axis, 3^N conv with dilation 5
    branch = block.branches[2]
    kernels = _conv_weights(branch)
    expected_1d = [tuple(5 if d == a else 1 for d in range(dims)) for a in range(dims)]
    assert kernels == [(1,) * dims, *expected_1d, (3,) * dims]
    assert branch[-1].conv.dilation == (5,) * dims
    assert tuple(block.residual.conv.weight.shape[2:]) == (1,) * dims
    assert block.fuse.conv.in_channels == 12


def test_rfb_residual_path():
    # with every branch silenced the block reduces to act(residual(x))
    block = ReceptiveFieldBlock(2, 2, 2, kernel_sizes=(3,), norm=None).eval()
    with torch.no_grad():
        block.fuse.conv.weight.zero_()
        block.fuse.conv.bias.zero_()
    x = torch.randn(1, 2, 6, 6)
    torch.testing.assert_close(block(x), torch.relu(block.residual(x)))


@pytest.mark.parametrize("sizes", [(), (4,), (0,)])
def test_rfb_bad_kernel_sizes(sizes):
    with pytest.raises(ValueError, match="kernel_sizes"):
        ReceptiveFieldBlock(3, 2, 2, kernel_sizes=sizes)


@pytest.mark.parametrize("dims", [2, 3])
@pytest.mark.parametrize("out_channels", [1, 5])
def test_partial_decoder_shape(dims, out_channels):
    pd = PartialDecoder(dims, channels=3, out_channels=out_channels)
    s = 8
    y = pd(torch.rand(2, 3, *([s] * dims)), torch.rand(2, 3, *([s // 2] * dims)), torch.rand(2, 3, *([s // 4] * dims)))
    assert y.shape == (2, out_channels, *([s] * dims))


@pytest.mark.parametrize("dims", [2, 3])
def test_partial_decoder_module(dims):
    pdm = PartialDecoderModule(dims, in_channels=6, out_channels=5, channels=3)
    assert PartialDecoderModule.required_multiple == 4
    assert len(pdm.rfb1) == 3 and len(pdm.rfb2) == 3
    assert isinstance(pdm.attention, HolisticAttention)
    x = torch.rand(2, 6, *([8] * dims))
    assert pdm(x).shape == (2, 5, *([8] * dims))
    assert pdm.saliency(x).shape == (2, 1, *([8] * dims))


def test_gaussian_kernel_reference():
    ref1 = gaussian(11, std=2.0)
    for dims in (1, 2, 3):
        ref = ref1
        for _ in range(dims - 1):
            ref = np.multiply.outer(ref, ref1)
        ref = ref / ref.sum()
        k = gaussian_kernel(dims, 11, 2.0)
        assert k.shape == (11,) * dims
        np.testing.assert_allclose(k.numpy(), ref, rtol=1e-6, atol=1e-9)
    with pytest.raises(ValueError, match="kernel_size"):
        gaussian_kernel(3, 4, 2.0)
    with pytest.raises(ValueError, match="sigma"):
        gaussian_kernel(3, 11, 0.0)


def test_holistic_attention_kernel_is_a_fixed_buffer():
    ha = HolisticAttention(3)
    assert list(ha.parameters()) == []
    assert "kernel" in dict(ha.named_buffers()) and "kernel" in ha.state_dict()
    assert ha.kernel.shape == (1, 1, 11, 11, 11) and not ha.kernel.requires_grad
    np.testing.assert_allclose(ha.kernel[0, 0].numpy(), gaussian_kernel(3, 11, 2.0).numpy())
    assert ha.to(torch.float64).kernel.dtype == torch.float64


@pytest.mark.parametrize("dims", [2, 3])
def test_holistic_attention_matches_eq17(dims):
    # eq. 17 with scipy: zero-padded Gaussian (sigma 2, radius 5), min-max per sample, max with S_i
    ha = HolisticAttention(dims)
    g = torch.Generator().manual_seed(0)
    s = torch.rand(2, 1, *([16] * dims), generator=g) ** 4
    out = ha.soft_attention(s).numpy()
    for b in range(2):
        blurred = ndimage.gaussian_filter(s[b, 0].double().numpy(), sigma=2.0, truncate=2.5, mode="constant")
        normed = (blurred - blurred.min()) / (blurred.max() - blurred.min())
        np.testing.assert_allclose(out[b, 0], np.maximum(normed, s[b, 0].numpy()), atol=1e-5)
    x = torch.rand(2, 4, *([16] * dims), generator=g)
    torch.testing.assert_close(ha(s, x), x * ha.soft_attention(s))
    assert out.min() >= 0.0 and out.max() <= 1.0 + 1e-6 and (out >= s.numpy() - 1e-7).all()


def test_holistic_attention_gradient_flows_to_saliency_only():
    ha = HolisticAttention(2)
    s = torch.rand(1, 1, 12, 12, requires_grad=True)
    x = torch.rand(1, 3, 12, 12, requires_grad=True)
    ha(s, x).sum().backward()
    assert s.grad is not None and s.grad.abs().sum() > 0 and x.grad is not None
    assert ha.kernel.grad is None


@pytest.mark.parametrize("dims", [2, 3])
def test_cwam(dims):
    cwam = ChannelWiseAttention(dims, channels=4).eval()
    assert isinstance(cwam.se, ChannelSELayer)
    assert cwam.weight_conv.conv.in_channels == 8 and cwam.weight_conv.conv.out_channels == 2
    enc, dec = torch.rand(2, 4, *([6] * dims)), torch.rand(2, 4, *([6] * dims))
    w = cwam.weights(enc, dec)
    assert w.shape == (2, 2, *([6] * dims))
    torch.testing.assert_close(w.sum(1), torch.ones(2, *([6] * dims)))
    assert cwam(enc, dec).shape == enc.shape
    # the two weights sum to one, so identical inputs pass through to the SE block unchanged
    torch.testing.assert_close(cwam(enc, enc), cwam.se(enc))
    expected = cwam.se(w[:, :1] * enc + w[:, 1:] * dec)
    torch.testing.assert_close(cwam(enc, dec), expected)


def test_cwam_se_reduction_capped():
    cwam = ChannelWiseAttention(3, channels=2, se_reduction=16)
    assert cwam.se.fc[0].out_features == 1
