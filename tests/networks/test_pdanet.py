from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from monai.bundle import ckpt_export, verify_net_in_out
from monai.networks.blocks import ChannelSELayer
from monai.networks.nets.basic_unet import TwoConv

from monai_cwcd.networks.blocks import ChannelWiseAttention, HolisticAttention, PartialDecoderModule
from monai_cwcd.networks.nets import PDANet

TINY = {"features": (4, 8, 16, 32), "pdm_channels": 4}
PYTHON = sys.executable


@pytest.fixture(autouse=True)
def _one_thread():
    # tiny convolutions on a shared 2-core machine run much faster without OpenMP contention
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _count(net: torch.nn.Module, kind: type) -> int:
    return sum(isinstance(m, kind) for m in net.modules())


@pytest.mark.parametrize(
    "dims, in_channels, out_channels, shape",
    [(2, 1, 2, (64, 32)), (2, 4, 5, (32, 96)), (3, 1, 3, (32, 32, 64)), (3, 4, 16, (32, 64, 32))],
)
def test_shapes(dims, in_channels, out_channels, shape):
    net = PDANet(dims, in_channels, out_channels, **TINY)
    y = net(torch.rand(1, in_channels, *shape))
    assert y.shape == (1, out_channels, *shape) and y.dtype == torch.float32


def test_required_multiple():
    assert PDANet(**TINY).required_multiple == 32
    assert PDANet(use_pdm=False, **TINY).required_multiple == 8
    assert PDANet(features=(4, 8, 16), pdm_channels=4).required_multiple == 16
    assert PDANet(2, features=(4, 8), use_pdm=False).required_multiple == 2


def test_default_parameter_count_pinned():
    # paper configuration (AMOS: 1 input channel, 16 classes, features 16..128, 3D); see docs/pdanet.md
    net = PDANet(3, 1, 16)
    assert sum(p.numel() for p in net.parameters()) == 4_465_063
    assert sum(p.numel() for p in PDANet(3, 1, 16, pdm_channels=99).parameters()) == 31_322_281


@pytest.mark.parametrize(
    "model, use_se, use_pdm, use_cwam",
    [(1, False, False, False), (2, True, False, False), (3, True, True, False), (4, True, True, True)],
)
def test_ablation_structure(model, use_se, use_pdm, use_cwam):
    """Table III: Model 1 (none), 2 (SE), 3 (SE + PDM), 4 (SE + PDM + CWAM)."""
    net = PDANet(3, 1, 3, use_se=use_se, use_pdm=use_pdm, use_cwam=use_cwam, **TINY)
    levels = len(TINY["features"])
    # encoder: TwoConv then SE (or identity) at every level
    for level in net.encoder:
        assert isinstance(level[0], TwoConv)
        assert isinstance(level[1], ChannelSELayer if use_se else torch.nn.Identity)
    # bottleneck: PDM (with holistic attention) or a plain TwoConv
    assert isinstance(net.bottleneck, PartialDecoderModule if use_pdm else TwoConv)
    assert _count(net, HolisticAttention) == int(use_pdm)
    # decoder: CWAM fusion feeding a C -> C conv, or U-Net concatenation feeding a 2C -> C conv
    assert _count(net, ChannelWiseAttention) == (levels - 1) * use_cwam
    for level, width in zip(net.decoder, reversed(TINY["features"][:-1])):
        assert isinstance(level.fuse, ChannelWiseAttention) == use_cwam
        assert level.conv.conv_0.conv.in_channels == (width if use_cwam else 2 * width)
    # SE blocks: one per encoder level with use_se, one inside every CWAM
    assert _count(net, ChannelSELayer) == levels * use_se + (levels - 1) * use_cwam
    y = net(torch.rand(2, 1, 32, 32, 32))
    assert y.shape == (2, 3, 32, 32, 32)


@pytest.mark.parametrize("dims, shape", [(2, (128, 96)), (3, (32, 32, 32))])
def test_gradients_reach_every_parameter(dims, shape):
    torch.manual_seed(0)
    net = PDANet(dims, 2, 3, bias=False, **TINY)
    x = torch.randn(2, 2, *shape)
    target = torch.randint(0, 3, (2, *shape))
    F.cross_entropy(net(x), target).backward()
    trainable = [(n, p) for n, p in net.named_parameters() if p.requires_grad]
    assert trainable and all(not b.requires_grad for b in net.buffers())
    assert [n for n, p in trainable if p.grad is None or not torch.isfinite(p.grad).all()] == []
    if dims == 2:
        # the coarsest PDM level is 4 x 3 here; at 1 x 1 x 1 (the 3D case) a norm bias feeding the
        # next BatchNorm only shifts every voxel equally and its gradient is exactly zero
        assert [n for n, p in trainable if p.grad.abs().sum() == 0] == []


@pytest.mark.parametrize("dims, shape", [(3, (20, 37, 33)), (2, (45, 31))])
def test_pad_input_crops_back(dims, shape):
    torch.manual_seed(0)
    net = PDANet(dims, 1, 2, pad_input=True, **TINY).eval()
    x = torch.rand(1, 1, *shape)
    with torch.no_grad():
        y = net(x)
        assert y.shape == (1, 2, *shape)
        # identical to padding symmetrically by hand, running the unpadded path, and cropping
        pads = []
        for s in reversed(shape):
            total = -s % 32
            pads += [total // 2, total - total // 2]
        full = net(F.pad(x, pads))
        for d, s in enumerate(shape):
            full = full.narrow(d + 2, pads[2 * (dims - 1 - d)], s)
        torch.testing.assert_close(y, full)
        # divisible inputs take the unpadded path unchanged
        x32 = torch.rand(1, 1, *([32] * dims))
        plain = PDANet(dims, 1, 2, **TINY).eval()
        plain.load_state_dict(net.state_dict())
        torch.testing.assert_close(net(x32), plain(x32))


def test_pad_input_pads_only_to_the_next_multiple():
    # PENGWIN crops are 64 x 300 x 400 (in-plane 300 x 400): padded to 320 x 416 with the PDM, 304 x 400 without
    for use_pdm, expected in ((True, (320, 416)), (False, (304, 400))):
        net = PDANet(2, 1, 2, pad_input=True, use_pdm=use_pdm, **TINY).eval()
        seen = []
        net.encoder[0].register_forward_hook(lambda m, i, o: seen.append(tuple(i[0].shape[2:])))
        with torch.no_grad():
            assert net(torch.rand(1, 1, 300, 400)).shape == (1, 2, 300, 400)
        assert seen == [expected]


def test_not_divisible_error():
    net = PDANet(3, 1, 2, **TINY)
    with pytest.raises(ValueError, match=r"\[64, 300, 400\].*required_multiple=32.*pad_input=True"):
        net(torch.rand(1, 1, 64, 300, 400))
    with pytest.raises(ValueError, match="required_multiple=8"):
        PDANet(2, 1, 2, use_pdm=False, **TINY)(torch.rand(1, 1, 12, 16))


@pytest.mark.parametrize(
    "kwargs, match",
    [({"spatial_dims": 1}, "spatial_dims"), ({"features": (8,)}, "features"), ({"features": (8, 0)}, "features"),
     ({"pad_mode": "wrap"}, "pad_mode")],
)
def test_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        PDANet(**kwargs)


@pytest.mark.parametrize("pdm_channels, shape", [(32, (32, 32, 32)), (4, (32, 32, 30))])
def test_autocast_bfloat16(pdm_channels, shape):
    # (32, 32^3) once gave NaN weight gradients in a 1 x 7 x 1 RFB conv on the 2^3 PDM level (PyTorch bf16 backward)
    torch.manual_seed(0)
    net = PDANet(3, 1, 3, features=(4, 8, 16, 32), pdm_channels=pdm_channels, pad_input=True)
    x = torch.randn(2, 1, *shape)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        y = net(x)
    assert y.shape == (2, 3, *shape) and y.dtype == torch.bfloat16
    assert torch.isfinite(y.float()).all()
    F.cross_entropy(y.float(), (x[:, 0] > 0.5).long()).backward()
    bad = [n for n, p in net.named_parameters() if p.grad is None or not torch.isfinite(p.grad).all()]
    assert bad == []


def test_eval_determinism():
    torch.manual_seed(1)
    net = PDANet(3, 1, 3, dropout=0.2, **TINY)
    net(torch.rand(2, 1, 32, 32, 32))  # update running statistics
    net.eval()
    x = torch.rand(1, 1, 32, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(net(x), net(x), rtol=0, atol=0)
    torch.manual_seed(7)
    a = PDANet(3, 1, 3, **TINY).eval()
    torch.manual_seed(7)
    b = PDANet(3, 1, 3, **TINY).eval()
    with torch.no_grad():
        torch.testing.assert_close(a(x), b(x), rtol=0, atol=0)


def test_trace():
    torch.manual_seed(0)
    net = PDANet(2, 1, 2, pad_input=True, **TINY).eval()
    odd = torch.rand(1, 1, 30, 33)
    with torch.no_grad():
        traced = torch.jit.trace(net, odd, check_trace=False)  # fixed to the traced spatial size
        torch.testing.assert_close(traced(odd), net(odd))
        torch.testing.assert_close(traced(odd + 1), net(odd + 1))


def _write_bundle(tmp_path, pad_input: bool) -> tuple[str, str]:
    net_def = {"_target_": "monai_cwcd.networks.nets.PDANet", "spatial_dims": 3, "in_channels": 1, "out_channels": 3,
               "features": [4, 8, 16, 32], "pdm_channels": 4, "pad_input": pad_input}
    config = {"imports": ["$import monai_cwcd"], "network_def": net_def, "network": "$@network_def.to('cpu')"}
    shape = ["*", "*", "*"] if pad_input else ["32*n", "32*n", "32*n"]
    meta = {"network_data_format": {
        "inputs": {"image": {"type": "image", "format": "hounsfield", "num_channels": 1, "spatial_shape": shape,
                             "dtype": "float32", "value_range": [0, 1], "is_patch_data": True}},
        "outputs": {"pred": {"type": "image", "format": "segmentation", "num_channels": 3, "spatial_shape": shape,
                             "dtype": "float32", "value_range": [], "is_patch_data": True}}}}
    config_file, meta_file = tmp_path / "inference.json", tmp_path / "metadata.json"
    config_file.write_text(json.dumps(config))
    meta_file.write_text(json.dumps(meta))
    return str(config_file), str(meta_file)


def _run(args: list[str], cwd) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2]), "OMP_NUM_THREADS": "1"}
    return subprocess.run([PYTHON, "-m", "monai.bundle", *args], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=600)


def test_bundle_verify_net_in_out_command_pad_input(tmp_path):
    """The real CLI on the PENGWIN-style pad_input network with an odd ("*" -> 37) input size."""
    config_file, meta_file = _write_bundle(tmp_path, pad_input=True)
    proc = _run(["verify_net_in_out", "network_def", "--meta_file", meta_file, "--config_file", config_file,
                 "--device", "cpu", "--any", "37"], tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "verified with no error" in proc.stdout + proc.stderr


@pytest.mark.slow
def test_bundle_verify_net_in_out_command_divisible(tmp_path):
    config_file, meta_file = _write_bundle(tmp_path, pad_input=False)
    proc = _run(["verify_net_in_out", "network_def", "--meta_file", meta_file, "--config_file", config_file,
                 "--device", "cpu", "--n", "1"], tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_bundle_verify_net_in_out_divisible(tmp_path):
    """Same MONAI entry point in-process (saves a subprocess start-up)."""
    config_file, meta_file = _write_bundle(tmp_path, pad_input=False)
    verify_net_in_out(net_id="network_def", meta_file=meta_file, config_file=config_file, device="cpu", n=1)
    with pytest.raises(ValueError, match="required_multiple=32"):
        verify_net_in_out(net_id="network_def", meta_file=meta_file, config_file=config_file, device="cpu", n=1,
                          **{"_meta_#network_data_format#inputs#image#spatial_shape": [32, 32, 20]})


def test_bundle_ckpt_export_script(tmp_path):
    """MONAI's ckpt_export (TorchScript scripting by default): the padding stays dynamic after export."""
    config_file, meta_file = _write_bundle(tmp_path, pad_input=True)
    torch.manual_seed(0)
    net = PDANet(3, 1, 3, pad_input=True, **TINY).eval()
    torch.save(net.state_dict(), tmp_path / "model.pt")
    ts = tmp_path / "model.ts"
    ckpt_export(net_id="network_def", filepath=str(ts), ckpt_file=str(tmp_path / "model.pt"), meta_file=meta_file,
                config_file=config_file)
    exported = torch.jit.load(str(ts)).eval()
    with torch.no_grad(), torch.jit.optimized_execution(False):
        for shape in ((36, 30, 33), (32, 32, 32)):
            x = torch.rand(1, 1, *shape)
            torch.testing.assert_close(exported(x), net(x))


@pytest.mark.slow
def test_bundle_ckpt_export_command_trace(tmp_path):
    config_file, meta_file = _write_bundle(tmp_path, pad_input=True)
    torch.manual_seed(0)
    net = PDANet(3, 1, 3, pad_input=True, **TINY).eval()
    torch.save(net.state_dict(), tmp_path / "model.pt")
    ts = tmp_path / "model.ts"
    proc = _run(["ckpt_export", "network_def", "--filepath", str(ts), "--ckpt_file", str(tmp_path / "model.pt"),
                 "--meta_file", meta_file, "--config_file", config_file, "--use_trace", "True",
                 "--input_shape", "[1, 1, 36, 30, 33]"], tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    x = torch.rand(1, 1, 36, 30, 33)
    with torch.no_grad():
        torch.testing.assert_close(torch.jit.load(str(ts))(x), net(x))
    with pytest.raises(Exception, match="required_multiple=32"):
        torch.jit.script(PDANet(3, 1, 2, **TINY))(x)


def test_overfit_one_volume_with_cwcd_loss():
    from monai_cwcd.losses import CWCDLoss

    torch.manual_seed(0)
    # one synthetic volume with 3 classes (two nested boxes); 32 x 32 x 64 keeps two voxels at the
    # coarsest PDM level, which BatchNorm needs in training with a batch of one
    label = torch.zeros(1, 1, 32, 32, 64, dtype=torch.long)
    label[..., 8:24, 8:24, 8:24] = 1
    label[..., 12:20, 12:20, 12:20] = 2
    image = label.float() / 2 + 0.1 * torch.randn(label.shape)
    net = PDANet(3, 1, 3, **TINY)
    loss_fn = CWCDLoss(to_onehot_y=True, softmax=True)
    opt = torch.optim.Adam(net.parameters(), lr=3e-2)
    losses = []
    for _ in range(25):
        opt.zero_grad()
        loss = loss_fn(net(image), label)
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.5 * losses[0], losses
